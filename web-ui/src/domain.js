// The hospital's vocabularies, as the services define them in services/healthguard/domain.py.
// Every page takes its lists from here; tests/test_domain_lists.py fails when the two differ.

// Most severe first: the order of lists, filters and the dashboard.
export const SEVERITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW"];

// In lifecycle order. RESOLVED is the only status an incident does not leave.
export const INCIDENT_STATUSES = ["OPEN", "ASSIGNED", "ACKNOWLEDGED", "REASSIGNED", "IN_PROGRESS", "RESOLVED"];
export const ACTIVE_INCIDENT_STATUSES = INCIDENT_STATUSES.filter((status) => status !== "RESOLVED");
// Waiting for the assignee to acknowledge (and escalated when they do not in time).
export const UNACKNOWLEDGED_STATUSES = ["ASSIGNED", "REASSIGNED"];

// What a clinician says of themselves: AWAY takes them out of assignment while signed in.
export const AVAILABILITIES = ["AVAILABLE", "AWAY"];
