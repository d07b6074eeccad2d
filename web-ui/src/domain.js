// The hospital's vocabularies and the constants the browser shares with the services, as
// services/healthguard/domain.py defines them. Every page takes them from here;
// tests/test_domain_lists.py fails when the two differ. What a user may do to an incident is never
// decided here: the server answers it per user (allowed_actions), and pages show exactly that.

// Most severe first: the order of lists, filters and the dashboard.
export const SEVERITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW"];

// In lifecycle order. RESOLVED is the only status an incident does not leave.
export const INCIDENT_STATUSES = ["OPEN", "ASSIGNED", "ACKNOWLEDGED", "REASSIGNED", "IN_PROGRESS", "RESOLVED"];
export const ACTIVE_INCIDENT_STATUSES = INCIDENT_STATUSES.filter((status) => status !== "RESOLVED");
// Waiting for the assignee to acknowledge (and escalated when they do not in time).
export const UNACKNOWLEDGED_STATUSES = ["ASSIGNED", "REASSIGNED"];
// The assignee has taken the alarm on: only a supervisor takes it away from them.
export const TAKEN_ON_STATUSES = ["ACKNOWLEDGED", "IN_PROGRESS"];

// What a clinician says of themselves: AWAY takes them out of assignment while signed in.
export const AVAILABILITIES = ["AVAILABLE", "AWAY"];

// Notification events that page their incident's assignee, for a notification that does not say
// whom it pages (data.paged).
export const ALERTING_EVENTS = ["INCIDENT_ASSIGNED", "INCIDENT_REASSIGNED", "INCIDENT_ESCALATED", "INCIDENT_REPAGED"];

// WebSocket close codes of the notification service (services/notification/WEBSOCKET.md).
export const WS_CLOSE_SESSION_ENDED = 4401; // the session was signed out or expired: sign in again
export const WS_CLOSE_TOO_MANY_SOCKETS = 4409; // the session opened more sockets than the server keeps

// The types of the WebSocket's frames (WEBSOCKET.md, "Frames") that the page sends or acts on.
export const WS_FRAME_NOTIFICATION = "notification"; // a stored notification of mine
export const WS_FRAME_INCIDENT_UPDATED = "incident_updated"; // some incident changed
export const WS_FRAME_MORE = "more"; // after a replay page: older ones remain
export const WS_FRAME_PING = "ping"; // both ways: answered with a pong
export const WS_FRAME_PONG = "pong";
export const WS_FRAME_RESUME = "resume"; // mine: replay what was stored since last_id

// The actions the server may offer (allowed_actions), in its order, with their words below.
export const ACTION_NAMES = ["acknowledge", "decline", "start", "resolve", "claim", "reassign", "note"];

// --- Words for people ------------------------------------------------------------------------
// Every name a clinician reads for a code is written here, once: roles, statuses, what happened.
// The maps are not exported (tests/test_domain_lists.py compares this module's exported lists with
// the services'); pages call the functions below, which fall back to the code in plain case.

function plain(code) {
  if (!code) return "";
  const words = String(code).replaceAll("_", " ").toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

const ROLE_WORDS = {
  NURSE: "Nurse",
  EMERGENCY_DOCTOR: "Emergency doctor",
  CARDIOLOGIST: "Cardiologist",
  SURGEON: "Surgeon",
  PULMONOLOGIST: "Lung specialist (pulmonologist)",
  NEUROLOGIST: "Neurologist",
  PSYCHIATRIST: "Psychiatrist",
  OBSTETRICIAN: "Obstetrician",
  ENDOCRINOLOGIST: "Endocrinologist",
  INFECTIOUS_DISEASE_SPECIALIST: "Infection specialist",
  BIOMEDICAL_ENGINEER: "Biomedical engineer",
};

export function roleName(role) {
  return ROLE_WORDS[role] ?? plain(role);
}

const STATUS_WORDS = {
  OPEN: "Unassigned",
  ASSIGNED: "Assigned",
  ACKNOWLEDGED: "Acknowledged",
  REASSIGNED: "Reassigned",
  IN_PROGRESS: "In progress",
  RESOLVED: "Resolved",
};

// The status as a person says it. An alarm escalated to its assignee keeps the status REASSIGNED
// (or ASSIGNED) on the server; how it got there (assignment_reason) makes it "Escalated".
export function statusName(status, assignmentReason) {
  if (UNACKNOWLEDGED_STATUSES.includes(status)) {
    if (assignmentReason === "ESCALATION") return "Escalated";
    if (assignmentReason === "DECLINE") return "Passed on";
  }
  return STATUS_WORDS[status] ?? plain(status);
}

const SEVERITY_WORDS = { CRITICAL: "Critical", HIGH: "High", MEDIUM: "Medium", LOW: "Low" };

export function severityName(severity) {
  return SEVERITY_WORDS[severity] ?? plain(severity);
}

const AVAILABILITY_WORDS = { AVAILABLE: "Available", AWAY: "Away" };

export function availabilityName(availability) {
  return AVAILABILITY_WORDS[availability] ?? plain(availability);
}

// What a button says for an action the server offers.
const ACTION_WORDS = {
  acknowledge: "Acknowledge",
  decline: "I can't take this",
  start: "Start work",
  resolve: "Resolve incident",
  claim: "Claim (take over)",
  reassign: "Reassign",
  note: "Add note",
};

export function actionName(action) {
  return ACTION_WORDS[action] ?? plain(action);
}

// The audit trail's entries (incident_history.action).
const HISTORY_WORDS = {
  CREATED: "Alarm raised",
  ASSIGNED: "Assigned",
  ACKNOWLEDGED: "Acknowledged",
  STARTED: "Work started",
  RESOLVED: "Resolved",
  REASSIGNED: "Reassigned",
  ESCALATED: "Escalated",
  CLAIMED: "Taken over",
  DECLINED: "Declined (could not take it)",
  NOTE_ADDED: "Note added",
  REPAGED: "Reminded to start",
  ALERT_CORRELATED: "Alarm sounded again",
};

export function historyName(action) {
  return HISTORY_WORDS[action] ?? plain(action);
}

// Why an assignment began (incident_assignments.reason).
const ASSIGNMENT_WORDS = {
  AUTO: "routed by the rota",
  CLAIM: "took it over",
  REASSIGN: "handed over by a supervisor",
  ESCALATION: "escalated",
  DECLINE: "passed on after a decline",
};

export function assignmentReasonName(reason) {
  return ASSIGNMENT_WORDS[reason] ?? plain(reason).toLowerCase();
}

// What a notification says happened, in a few words: by the event's reason (data.reason) where
// the server gives one, else by its type.
const REASON_WORDS = {
  ASSIGNED: "Assigned to you",
  UNOWNED: "Nobody available",
  ESCALATED: "Escalated",
  NOT_ACKNOWLEDGED: "Not acknowledged in time",
  LAST_RESORT: "Nobody has taken it: all paged",
  UNOWNED_REPAGE: "Still nobody: paged again",
  TAKEN: "Taken by a colleague",
  CLAIMED: "Taken over",
  TAKEN_BY_SUPERVISOR: "Taken by a supervisor",
  REASSIGNED: "Reassigned",
  DECLINED: "Passed on",
  ACKNOWLEDGED: "Acknowledged",
  STARTED: "Work started",
  RESOLVED: "Resolved",
  NOTE_ADDED: "Note added",
  REPAGED: "Reminder: not started",
  ALERT_CORRELATED: "Alarm sounded again",
};

export function eventName(notification) {
  const reason = notification?.data?.reason;
  if (reason && REASON_WORDS[reason]) return REASON_WORDS[reason];
  const type = String(notification?.event_type ?? "").replace("INCIDENT_", "");
  if (type === "CREATED") return REASON_WORDS.UNOWNED;
  return REASON_WORDS[type] ?? plain(type);
}

// Who an alarm is sounding for now (pop-up, sound, title). The server says it (`paged`, on the
// incident and on every event); from a server that does not, the assignee while unacknowledged.
export function pagedFor(incident) {
  if (!incident) return [];
  if (Array.isArray(incident.paged)) return incident.paged;
  return UNACKNOWLEDGED_STATUSES.includes(incident.status) && incident.assigned_to ? [incident.assigned_to] : [];
}
