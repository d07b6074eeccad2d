import { createContext, useCallback, useContext, useEffect, useMemo, useState } from "react";
import { Navigate, useLocation, useNavigate } from "react-router";

import { api, onUnauthorized } from "./api.js";
import { clearSession, loadSession, saveSession } from "./session.js";

const AuthContext = createContext(null);

export function AuthProvider({ children }) {
  const navigate = useNavigate();
  const [session, setSession] = useState(loadSession);
  // Why the login page is showing again ("your session ended"), shown there once.
  const [notice, setNotice] = useState(null);

  const forget = useCallback(() => {
    clearSession();
    setSession(null);
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
    const answer = await api("/auth/login", {
      method: "POST",
      body: { login: loginId, password },
      authenticated: false,
    });
    const next = { token: answer.token, expiresAt: answer.expires_at, employee: answer.employee };
    saveSession(next);
    setSession(next);
    setNotice(null);
    return next;
  }, []);

  const logout = useCallback(async () => {
    try {
      await api("/auth/logout", { method: "POST" });
    } catch {
      // Signed out here regardless: the token is dropped even when the server is unreachable.
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
      const next = { ...current, employee: answer.employee, timeZone: answer.timezone };
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

  const token = session?.token ?? null;
  useEffect(() => {
    // eslint-disable-next-line react-hooks/set-state-in-effect -- the employee as the server knows it now
    if (token) refreshMe().catch(() => {});
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
