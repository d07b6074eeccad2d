// The four services, as nginx exposes their readiness (/ready) endpoints. The
// status page shows readiness, not liveness: whether each service can do its
// job now, with the part that is down (database, broker) named in the body.
export const SERVICES = [
  { id: "alert-ingestion", label: "Alert Ingestion" },
  { id: "incident-management", label: "Incident Management" },
  { id: "oncall", label: "On-Call" },
  { id: "notification", label: "Notification" },
];

const TIMEOUT_MS = 5000;

// A service is "up" when /ready answers 200, "degraded" when it answers 200
// with status "degraded" (alert ingestion without its broker still accepts
// alarms); any other answer, a timeout or an unreachable backend (nginx
// 502/504) is "down", and the JSON body (naming the failing part) is kept.
export async function checkService(id) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  try {
    const response = await fetch(`/ready/${id}`, {
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
    const state = !response.ok ? "down" : body.status === "degraded" ? "degraded" : "up";
    return { state, httpStatus: response.status, body };
  } catch (error) {
    const reason = error.name === "AbortError" ? `no answer within ${TIMEOUT_MS} ms` : error.message;
    return { state: "down", httpStatus: null, body: { error: reason } };
  } finally {
    clearTimeout(timer);
  }
}
