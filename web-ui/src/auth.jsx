import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState } from "react";
import { Navigate, useLocation, useNavigate } from "react-router";

import { api, onUnauthorized } from "./api.js";
import { clearSession, loadSession, onSessionChange, saveSession } from "./session.js";

const AuthContext = createContext(null);

// While signed in, each open page tells the server every few minutes that this browser is still
// here (GET /auth/me): the session's idle limit (SESSION_IDLE_MINUTES, 30 by default) ends it
// only once every page of the browser is closed, never under a console left open for alarms.
// The same call notices a session ended elsewhere (401: back to the login page).
const STILL_HERE_MS = 5 * 60 * 1000;

function fromAnswer(answer, current) {
  return {
    csrfToken: answer.csrf_token ?? answer.session?.csrf_token ?? current?.csrfToken,
    expiresAt: answer.expires_at ?? answer.session?.expires_at ?? current?.expiresAt ?? null,
    employee: answer.employee,
    timeZone: answer.timezone ?? current?.timeZone ?? null,
  };
}

export function AuthProvider({ children }) {
  const navigate = useNavigate();
  const [session, setSession] = useState(loadSession);
  // Why the login page is showing again ("your session ended"), shown there once.
  const [notice, setNotice] = useState(null);

  const forget = useCallback(() => {
    clearSession(); // the other tabs hear of it (session.js) and sign out too
    setSession(null);
  }, []);

  // Another tab signed in, refreshed the employee, or signed out: this one follows.
  const signedIn = useRef(session !== null);
  useEffect(() => {
    signedIn.current = session !== null;
  }, [session]);
  useEffect(
    () =>
      onSessionChange((next) => {
        const wasSignedIn = signedIn.current;
        signedIn.current = next !== null;
        setSession(next);
        if (wasSignedIn && !next) {
          setNotice("You are signed out.");
          navigate("/login", { replace: true });
        }
      }),
    [navigate],
  );

  // A tab opened with nothing stored (storage refused or cleared) may still share the browser's
  // session cookie: ask the server once.
  useEffect(() => {
    if (loadSession()) return;
    api("/auth/me", { authenticated: false })
      .then((answer) => {
        if (!answer?.session?.csrf_token) return;
        const next = fromAnswer(answer, null);
        saveSession(next);
        setSession(next);
      })
      .catch(() => {}); // not signed in: the login page stays
  }, []);

  // The server no longer accepts this token (a 401, or the socket closed for a signed-out
  // session): back to the login page, saying why.
  const endSession = useCallback(() => {
    if (!loadSession()) return;
    forget();
    setNotice("Your session has ended. Please sign in again.");
    navigate("/login", { replace: true });
  }, [forget, navigate]);

  useEffect(() => onUnauthorized(endSession), [endSession]);

  const login = useCallback(async (loginId, password) => {
    // session_cookie: the server keeps the session in an HttpOnly cookie shared by every tab
    // and answers with its CSRF token only.
    const answer = await api("/auth/login", {
      method: "POST",
      body: { login: loginId, password, session_cookie: true },
      authenticated: false,
    });
    const next = fromAnswer(answer, null);
    saveSession(next);
    setSession(next);
    setNotice(null);
    return next;
  }, []);

  const logout = useCallback(async () => {
    try {
      await api("/auth/logout", { method: "POST" });
    } catch {
      // Signed out here regardless, in every tab; the server ends the session by its idle limit
      // if it could not be told now.
    }
    forget();
    setNotice("You are signed out.");
    navigate("/login", { replace: true });
  }, [forget, navigate]);

  // The server's view of who is signed in (role, availability, supervisor) replaces the copy
  // kept from the login answer.
  const refreshMe = useCallback(async () => {
    const answer = await api("/auth/me");
    setSession((current) => {
      if (!current) return current;
      const next = fromAnswer(answer, current);
      saveSession(next);
      return next;
    });
    return answer.employee;
  }, []);

  const updateEmployee = useCallback((employee) => {
    setSession((current) => {
      if (!current) return current;
      const next = { ...current, employee: { ...current.employee, ...employee } };
      saveSession(next);
      return next;
    });
  }, []);

  // Not the session (an HttpOnly cookie no script reads) but a key of it: set while signed in,
  // and a new value for each new session, so what lives for a session (the live socket)
  // starts again with it.
  const token = session?.csrfToken ?? null;
  useEffect(() => {
    if (!token) return undefined;
    // eslint-disable-next-line react-hooks/set-state-in-effect -- the employee as the server knows it now
    refreshMe().catch(() => {});
    const timer = setInterval(() => refreshMe().catch(() => {}), STILL_HERE_MS);
    const shown = () => {
      if (document.visibilityState === "visible") refreshMe().catch(() => {});
    };
    document.addEventListener("visibilitychange", shown);
    return () => {
      clearInterval(timer);
      document.removeEventListener("visibilitychange", shown);
    };
  }, [token, refreshMe]);

  const value = useMemo(
    () => ({
      token,
      employee: session?.employee ?? null,
      timeZone: session?.timeZone ?? null,
      login,
      logout,
      endSession,
      refreshMe,
      updateEmployee,
      notice,
      clearNotice: () => setNotice(null),
    }),
    [token, session, login, logout, endSession, refreshMe, updateEmployee, notice],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth() {
  return useContext(AuthContext);
}

// The hospital's time zone (HOSPITAL_TZ, from /auth/me): every time on a signed-in page is shown
// in it, whatever the browser's zone. Null until the server has said.
export function useTimeZone() {
  return useContext(AuthContext)?.timeZone ?? null;
}

export function RequireAuth({ children }) {
  const { token } = useAuth();
  const location = useLocation();
  if (!token) return <Navigate to="/login" replace state={{ from: location.pathname + location.search }} />;
  return children;
}
