// The dashboard's incidents, kept current from the WebSocket's incident_updated frames (their
// dashboard projection, healthguard/incident_events.py incident_update) instead of fetching the
// lists again for every change. Pure functions over a Map incident_id -> incident row, so they
// can be tested without a browser.

// The fields a frame carries that a row shows. Anything else (names, timestamps) comes from the
// incident's own answer, fetched once for a row the page has not seen.
const PROJECTED = [
  "status",
  "severity",
  "title",
  "assigned_to",
  "patient_id",
  "room",
  "alert_type",
  // Who it pages and whether anyone owns it (the ownership fields of every event).
  "paged",
  "unowned_since",
  "assignment_reason",
  // Held by a silence (shown, paging nobody), or null once it ended.
  "silenced_by",
];

// Applies one frame. Answers the new map and whether the row must be fetched (a new incident, a
// new assignee whose name the page does not know, or a new status, which changes what the user may
// do to it).
export function applyIncidentFrame(incidents, frame) {
  const id = frame.incident_id;
  if (id === undefined || id === null) return { incidents, fetch: false };
  const known = incidents.get(id);
  const next = new Map(incidents);
  if (frame.status === "RESOLVED") {
    next.delete(id);
    return { incidents: next, fetch: false };
  }
  if (!frame.status) {
    // A notification names only the incident: what changed comes from the server.
    return { incidents, fetch: true };
  }
  const update = Object.fromEntries(PROJECTED.filter((name) => frame[name] !== undefined).map((name) => [name, frame[name]]));
  if (!known) {
    next.set(id, {
      incident_id: id,
      created_at: frame.occurred_at,
      patient_name: frame.patient_id,
      provisional: true,
      ...update,
    });
    return { incidents: next, fetch: true };
  }
  // What the user may do (allowed_actions) is the server's answer for them, and a change of
  // status or owner changes it: none are offered until the row is fetched again.
  const changed = known.assigned_to !== frame.assigned_to || known.status !== frame.status;
  next.set(id, changed ? { ...known, ...update, allowed_actions: [] } : { ...known, ...update });
  return { incidents: next, fetch: changed };
}

// The row as the server answered it replaces the provisional or stale one (unless resolved).
export function applyIncidentRow(incidents, row) {
  const next = new Map(incidents);
  if (row.status === "RESOLVED") next.delete(row.incident_id);
  else next.set(row.incident_id, row);
  return next;
}

export function incidentMap(...lists) {
  return new Map(lists.flat().map((incident) => [incident.incident_id, incident]));
}
