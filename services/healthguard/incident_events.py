"""The contract between incident management (which announces changes of incidents on the
`notifications` queue) and the notification service (which stores and pushes them):

    {"event_id", "type", "recipients", "incident_id", "title", "message", "severity",
     "data": {"status", "patient_id", "room", "alert_type", "assigned_to"}, "occurred_at"}

`recipients` are told personally (stored notifications); every event also reaches every
signed-in dashboard as an incident_updated frame.
"""
INCIDENT_EVENT_TYPES = (
    "INCIDENT_CREATED",       # nobody could be assigned: supervisors are told, dashboards show it
    "INCIDENT_ASSIGNED",
    "INCIDENT_ACKNOWLEDGED",
    "INCIDENT_STARTED",
    "INCIDENT_RESOLVED",
    "INCIDENT_REASSIGNED",
    "INCIDENT_ESCALATED",
    "INCIDENT_NOTE_ADDED",
)
