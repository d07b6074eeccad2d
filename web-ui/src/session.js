// The signed-in session of this browser, shared by all its tabs: one sign-in for a shift.
//
// The session itself is an HttpOnly, SameSite=Strict cookie set by the server: no script of this
// page (nor one injected into it) can read it, and the browser sends it only with this site's own
// requests. What the page keeps here, in localStorage (shared by the tabs, kept across reloads),
// is what a script may know anyway: the session's CSRF token (any request that changes something
// must send it back, which a page of another site cannot), when the session ends, and the
// employee to show a name before /auth/me answers. The server decides who the caller is.
//
// localStorage also carries sign-in and sign-out between tabs: writing or removing the entry
// fires a `storage` event in every other tab of this origin (README, "Sessions in the browser").
const KEY = "healthguard.session";

function parse(text) {
  try {
    const stored = JSON.parse(text || "null");
    return stored && typeof stored.csrfToken === "string" && stored.csrfToken ? stored : null;
  } catch {
    return null;
  }
}

export function loadSession() {
  try {
    return parse(localStorage.getItem(KEY));
  } catch {
    return null; // storage refused (a locked-down profile): the tab asks /auth/me instead
  }
}

export function saveSession(session) {
  try {
    localStorage.setItem(KEY, JSON.stringify(session));
  } catch {
    // Without storage this tab still works; other tabs find the session through /auth/me.
  }
}

export function clearSession() {
  try {
    localStorage.removeItem(KEY);
  } catch {
    // nothing stored
  }
}

export function csrfToken() {
  return loadSession()?.csrfToken ?? null;
}

// Calls listener(session or null) when another tab signs in, updates or signs out. Returns the
// unsubscribe function.
export function onSessionChange(listener) {
  const changed = (event) => {
    if (event.storageArea === localStorage && (event.key === KEY || event.key === null)) {
      listener(parse(event.newValue));
    }
  };
  window.addEventListener("storage", changed);
  return () => window.removeEventListener("storage", changed);
}
