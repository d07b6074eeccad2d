// The signed-in session of this browser tab. Only the opaque token matters to the server (it
// decides who the caller is); the employee record is kept to show a name before /auth/me answers.
// sessionStorage: the session ends with the tab and is never shared with other tabs or sites.
const KEY = "healthguard.session";

export function loadSession() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(KEY) || "null");
    return stored && typeof stored.token === "string" && stored.token ? stored : null;
  } catch {
    return null;
  }
}

export function saveSession(session) {
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

export function clearSession() {
  sessionStorage.removeItem(KEY);
}

export function currentToken() {
  return loadSession()?.token ?? null;
}
