// Every call to the services goes through here: same origin (nginx proxies /api/v1/...), the
// session as the browser's own HttpOnly cookie (never seen here), the session's CSRF token on
// every request that may change something, JSON in and out, and errors as ApiError carrying the
// JSON `message` the service wrote. A 401 on an authenticated call means the session is gone.
import { csrfToken } from "./session.js";

// Requests that change nothing: the cookie alone is enough for them (session.js).
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || body?.error || (status ? `Request failed (HTTP ${status})` : "Request failed"));
    this.name = "ApiError";
    this.status = status;
    this.body = body || {};
  }
}

let unauthorizedHandler = () => {};

// The auth provider registers what a 401 does (sign out locally and show the login page).
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
  return () => {
    if (unauthorizedHandler === handler) unauthorizedHandler = () => {};
  };
}

function queryString(query) {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === "" || value === false) continue;
    params.set(name, Array.isArray(value) ? value.join(",") : String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

export async function api(path, { method = "GET", body, query, signal, authenticated = true } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const csrf = authenticated && !SAFE_METHODS.has(method.toUpperCase()) ? csrfToken() : null;
  if (csrf) headers["X-CSRF-Token"] = csrf;
  let response;
  try {
    response = await fetch(`/api/v1${path}${queryString(query)}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      credentials: "same-origin", // the session cookie, to this site only
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { message: "Cannot reach HealthGuard Ops. Check your connection and try again." });
  }
  let payload = null;
  const text = await response.text();
  if (text) {
    try {
      payload = JSON.parse(text);
    } catch {
      payload = { message: `Unexpected answer from the server (HTTP ${response.status})` };
    }
  }
  if (!response.ok) {
    if (response.status === 401 && authenticated) unauthorizedHandler();
    throw new ApiError(response.status, payload);
  }
  return payload;
}
