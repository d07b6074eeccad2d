// The four services, as nginx exposes their /health endpoints.
export const SERVICES = [
  { id: "alert-ingestion", label: "Alert Ingestion" },
  { id: "incident-management", label: "Incident Management" },
  { id: "oncall", label: "On-Call" },
  { id: "notification", label: "Notification" },
];

const TIMEOUT_MS = 5000;

// A service is "up" only when /health answers 200; any other answer, a
// timeout or an unreachable backend (nginx 502/504) is "down", and the JSON
// body (which names the failing part) is kept as the reason.
export async function checkService(id) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  try {
    const response = await fetch(`/health/${id}`, {
      headers: { Accept: "application/json" },
      signal: controller.signal,
    });
    const text = await response.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON (e.g. an HTML error page): the status line is the useful part.
      body = { error: `HTTP ${response.status} ${response.statusText}`.trim() };
    }
    return { up: response.ok, httpStatus: response.status, body };
  } catch (error) {
    const reason = error.name === "AbortError" ? `no answer within ${TIMEOUT_MS} ms` : error.message;
    return { up: false, httpStatus: null, body: { error: reason } };
  } finally {
    clearTimeout(timer);
  }
}
