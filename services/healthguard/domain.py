"""The hospital's vocabularies and the rules written on them, once for every service: statuses,
severities, what each status allows, which statuses carry a deadline, and the constants services
and the browser agree on (WebSocket close codes and frame types, the notification events that page,
the broker's queue and exchange names).

The browser has the same names in web-ui/src/domain.js; tests/test_domain_lists.py fails when the
two differ, and when the database's copies differ: its CHECK constraints (the last line of
defence), next_deadline() (0006_escalation_deadlines.sql: the deadline rule stays in SQL, where
every UPDATE that moves an incident computes it) and its NOTIFY channels."""
from typing import Literal

# Most severe first: the order of lists, filters and the dashboard.
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")

# In lifecycle order. RESOLVED is the only status an incident does not leave.
INCIDENT_STATUSES = ("OPEN", "ASSIGNED", "ACKNOWLEDGED", "REASSIGNED", "IN_PROGRESS", "RESOLVED")
ACTIVE_INCIDENT_STATUSES = tuple(status for status in INCIDENT_STATUSES if status != "RESOLVED")
# Waiting for the assignee to acknowledge (and escalated when they do not in time).
UNACKNOWLEDGED_STATUSES = ("ASSIGNED", "REASSIGNED")
# The assignee has taken the alarm on: only a supervisor takes it away from them (reassign, or a
# claim) while they are signed in.
TAKEN_ON_STATUSES = ("ACKNOWLEDGED", "IN_PROGRESS")

# The statuses that carry a deadline (incidents.ack_deadline), with the escalation policy's
# column that sets it: unacknowledged, escalated past ack_timeout_seconds; acknowledged but not
# started, re-paged past start_timeout_seconds. Every other status has none.
DEADLINE_TIMEOUTS = {
    "ASSIGNED": "ack_timeout_seconds",
    "REASSIGNED": "ack_timeout_seconds",
    "ACKNOWLEDGED": "start_timeout_seconds",
}
DEADLINE_STATUSES = tuple(DEADLINE_TIMEOUTS)

# The lifecycle: action -> the statuses it may be taken from. Who may take it (the assignee, a
# supervisor, a clinician of a routed role) is incident_management/lifecycle.py's, which answers
# each caller's actions (allowed_actions) by the same checks that refuse them.
#   OPEN -> ASSIGNED -> ACKNOWLEDGED -> IN_PROGRESS -> RESOLVED; a claim or a reassignment makes
#   it REASSIGNED, from where the new assignee acknowledges or starts work.
ACTIONS = {
    "acknowledge": UNACKNOWLEDGED_STATUSES,
    "decline": UNACKNOWLEDGED_STATUSES,  # the assignee cannot take it: it moves to the next candidate
    "start": ("ACKNOWLEDGED", "REASSIGNED"),
    "resolve": ("IN_PROGRESS",),
    "claim": ACTIVE_INCIDENT_STATUSES,
    "reassign": ACTIVE_INCIDENT_STATUSES,
    "note": INCIDENT_STATUSES,
}

# How often the simulator raises each severity, relative to the others: most alarms are minor.
SEVERITY_WEIGHTS = {"CRITICAL": 1, "HIGH": 3, "MEDIUM": 5, "LOW": 8}

# What a clinician says of themselves: AWAY takes them out of assignment while signed in.
AVAILABILITIES = ("AVAILABLE", "AWAY")

# Notification events that page their incident's assignee, for a notification that does not say
# whom it pages (data.paged).
ALERTING_EVENTS = ("INCIDENT_ASSIGNED", "INCIDENT_REASSIGNED", "INCIDENT_ESCALATED", "INCIDENT_REPAGED")

# WebSocket close codes of the notification service (notification/WEBSOCKET.md), which the
# browser acts on: sign in again, or do not reconnect in a loop.
WS_CLOSE_SESSION_ENDED = 4401      # the session was signed out or expired
WS_CLOSE_TOO_MANY_SOCKETS = 4409   # the session opened more sockets than an instance keeps for it

# The type of every WebSocket frame of the notification service (notification/WEBSOCKET.md, its
# "Frames"). Server to client:
WS_FRAME_NOTIFICATION = "notification"          # a stored notification of this clinician
WS_FRAME_INCIDENT_UPDATED = "incident_updated"  # any incident event, to every signed-in socket
WS_FRAME_MORE = "more"                          # after a replay page: older ones remain
WS_FRAME_ERROR = "error"                        # a client frame the server does not understand
# Both ways: a ping is answered with a pong (a browser cannot see protocol pings).
WS_FRAME_PING = "ping"
WS_FRAME_PONG = "pong"
# Client to server: replay what was stored since last_id.
WS_FRAME_RESUME = "resume"

# RabbitMQ (healthguard/broker/topology.py declares them; services only, not the browser).
# Notification events, one durable queue shared by the notification workers:
NOTIFICATIONS_QUEUE = "notifications"
# Stored notifications announced to every web process of the notification service (a fanout
# exchange: each process binds its own queue and pushes to the sockets it holds):
PUSH_EXCHANGE = "notifications.push"


# Alarms travel in one queue per severity ("lanes"), most severe first, and incident management
# drains a higher lane before it takes a message of a lower one: a cardiac arrest never waits
# behind a flood of low-battery alarms. Separate queues rather than one queue with x-max-priority,
# which classic queues have and quorum queues do not. The outbox row names its lane, and the relay
# publishes it with that routing key (the default exchange routes a key to the queue of that name).
def alert_lane(severity: str) -> str:
    """The queue an alert of this severity travels in (the one rule naming a lane)."""
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}")
    return f"alerts.{severity.lower()}"


ALERT_LANES = tuple(alert_lane(severity) for severity in SEVERITIES)

# PostgreSQL NOTIFY channels that wake a waiting worker (services only, not the browser).
OUTBOX_WAKE_CHANNEL = "outbox"          # rows in the outbox for the relay to publish
HL7_STATUS_WAKE_CHANNEL = "hl7_status"  # HL7 status reports to send (0009's trigger sends it)
CLINICIAN_AVAILABLE_CHANNEL = "clinician_available"  # someone may take unowned alarms (0006)

# The same lists as types, for the request and response models (healthguard.api).
Severity = Literal[SEVERITIES]
IncidentStatus = Literal[INCIDENT_STATUSES]
Availability = Literal[AVAILABILITIES]
