"""The contract between incident management, which announces every change of an incident on the
`notifications` queue (through the outbox), and the notification service, which stores the event
per recipient and pushes it to the browsers:

    {"schema_version": 1, "event_id": "incident-42-assigned-7", "type": "INCIDENT_ASSIGNED",
     "recipients": ["D01"], "incident_id": 42, "title": "...", "message": "...", "severity": "CRITICAL",
     "data": {"status", "patient_id", "room", "alert_type", "assigned_to", "alert_count"},
     "occurred_at": "2026-02-01T10:00:00+00:00"}

`recipients` are told personally (stored notifications); every event also reaches every
signed-in dashboard as an `incident_updated` frame (`incident_update`). The event is one model
(IncidentEvent): building it (`incident_event`), checking it on arrival (`IncidentEvent.parse`)
and projecting it for the dashboards live here only, so the two sides cannot drift.
"""
from typing import ClassVar

from pydantic import Field, StrictInt, StrictStr, field_validator

from .broker import NOTIFICATIONS_QUEUE
from .db import BIGINT_MAX
from .domain import UNACKNOWLEDGED_STATUSES
from .messages import QueueMessage, iso_timestamp, known_severity
from .outbox import OutboxRow

INCIDENT_EVENT_TYPES = (
    "INCIDENT_CREATED",       # nobody could be assigned: supervisors are told, dashboards show it
    "INCIDENT_ASSIGNED",
    "INCIDENT_ACKNOWLEDGED",
    "INCIDENT_STARTED",
    "INCIDENT_RESOLVED",
    "INCIDENT_REASSIGNED",
    "INCIDENT_ESCALATED",
    "INCIDENT_REPAGED",       # acknowledged but not started in time: the owner is paged again
    "INCIDENT_NOTE_ADDED",
    "INCIDENT_ALERT_CORRELATED",  # a repeat of its alarm attached (no page unless more severe)
    # The silence holding it ended: offered for assignment now (the dashboards drop the mark).
    "INCIDENT_SILENCE_ENDED",
    # Not an incident (incident_id null): an account administrator reset the recipient's password
    # (oncall.accounts); the only way a clinician hears of it, so it travels the same path.
    "PASSWORD_RESET",
    # Not an incident either: a handover of patients ("take over N02's patients",
    # incident_management/care_teams.py); both the giver and the receiver are told.
    "CARE_TEAM_HANDOVER",
)
# What happened, said by every event (data.reason): the type's own word, or one of these for
# the changes of owner, which the browser words differently ("escalated because not
# acknowledged", "taken by a supervisor", "declined").
OWNERSHIP_REASONS = (
    "UNOWNED",              # nobody available: supervisors told (INCIDENT_CREATED)
    "ESCALATED",            # not acknowledged in time: moved to the next candidate
    "NOT_ACKNOWLEDGED",     # not acknowledged in time, nobody else available: stays, told again
    "LAST_RESORT",          # out of escalation levels: every last-resort clinician on duty paged
    "UNOWNED_REPAGE",       # still nobody took it: paged again at the policy's interval
    "TAKEN",                # one of those paged took it: the others' alarms stop
    "CLAIMED",              # a clinician took it over
    "TAKEN_BY_SUPERVISOR",  # a supervisor took it from someone who had taken it on
    "DECLINED",             # its assignee could not take it: moved to the next candidate
    "SILENCED",             # a new alarm a silence holds (INCIDENT_CREATED): shown, paging nobody
)
REASONS = tuple(t.removeprefix("INCIDENT_") for t in INCIDENT_EVENT_TYPES) + OWNERSHIP_REASONS
MAX_RECIPIENTS = 500
MAX_TEXT = 4000


# --- Building (incident management) -------------------------------------------------------------

def unowned_since(incident: dict):
    """Since when nobody owns the alarm, or None: an OPEN incident since its creation (nobody
    could be assigned), one that ran out of escalation levels unacknowledged since its last step
    paged every last-resort clinician (incidents.unowned_since, until someone takes it)."""
    if incident["status"] == "OPEN":
        return incident["created_at"]
    return incident.get("unowned_since")


def paged_now(incident: dict) -> list[str]:
    """Whom the alarm is sounding for now (pop-up, sound): its assignee until they acknowledge,
    and at the last step every last-resort clinician paged, until someone takes it."""
    if incident["status"] not in UNACKNOWLEDGED_STATUSES or not incident["assigned_to"]:
        return []
    extra = (incident.get("last_resort_paged") or []) if incident.get("unowned_since") else []
    return list(dict.fromkeys([incident["assigned_to"], *extra]))


def incident_event(incident: dict, *, type: str, history: dict, recipients, message: str,
                   reason: str | None = None, paged=None, actor_id: str | None = None,
                   previous_assignee: str | None = None) -> "IncidentEvent":
    """The event announcing the change recorded by `history` (its incident_history row): one
    history row, one event, so the event id is stable across a redelivery of the same change.

    `reason` says what happened (REASONS; by default the type's own word), `paged` whom this
    event alarms (pop-up, sound, title; by default nobody): the browser alarms exactly those and
    drops a pop-up of anyone an event about the incident no longer pages."""
    if type not in INCIDENT_EVENT_TYPES:
        raise ValueError(f"unknown notification event type {type}")
    suffix = type.removeprefix("INCIDENT_").lower()
    reason = reason or type.removeprefix("INCIDENT_")
    if reason not in REASONS:
        raise ValueError(f"unknown event reason {reason}")
    since = unowned_since(incident)
    return IncidentEvent(
        event_id=f"incident-{incident['incident_id']}-{suffix}-{history['history_id']}",
        type=type,
        recipients=[r for r in recipients if r],
        incident_id=incident["incident_id"],
        title=incident["title"],
        message=message,
        severity=incident["severity"],
        data={
            "status": incident["status"],
            "patient_id": incident["patient_id"],
            "room": incident["room"],
            "alert_type": incident["alert_type"],
            "assigned_to": incident["assigned_to"],
            # How often its alarm has sounded (repeats correlated into it), for the dashboards.
            "alert_count": incident.get("alert_count", 1),
            "reason": reason,
            "paged": list(dict.fromkeys(p for p in (paged or ()) if p)),
            "unowned_since": since.isoformat() if since else None,
            "assignment_reason": incident.get("assignment_reason"),
            # The silence holding it (stored and shown, paging nobody), or None.
            "silenced_by": incident.get("silenced_by"),
            "previous_assignee": previous_assignee,
            "actor_id": actor_id,
        },
        occurred_at=history["created_at"].isoformat(),
    )


# --- What people read -------------------------------------------------------------------------
# Every sentence a clinician reads about an incident is written here, for a person: names and
# roles in words ("Dr. Michael Brooks (emergency doctor)"), never enum values.

def role_in_words(role: str | None) -> str:
    return (role or "clinician").replace("_", " ").lower()


def person(who) -> str:
    """"Dr. Michael Brooks (emergency doctor)" from an employees row or a Clinician (name, role)."""
    if not who:
        return "nobody"
    if not isinstance(who, dict):
        who = {"name": who.name, "role": who.role}
    return f"{who.get('name') or who.get('employee_id')} ({role_in_words(who.get('role'))})"


def whose(incident: dict) -> str:
    """The alarm's title and its patient; a device's own alarm (no patient) names the device and
    ward in its title already."""
    if incident["patient_id"] is None:
        return incident["title"]
    return f"{incident['title']} (patient {incident['patient_id']})"


def assigned_message(incident: dict) -> str:
    return f"{whose(incident)} is assigned to you."


def unowned_message(incident: dict) -> str:
    return (f"{whose(incident)}: nobody on duty is available to "
            f"take it. It will go to the first suitable clinician who signs in.")


def silenced_message(incident: dict) -> str:
    return (f"{incident['title']} (patient {incident['patient_id']}) is held by silence "
            f"{incident['silenced_by']}: shown, paging nobody.")


def silence_ended_message(incident: dict) -> str:
    return (f"{incident['title']} (patient {incident['patient_id']}): its silence ended; it goes to the "
            f"first suitable clinician now.")


def escalated_message(incident: dict, *, level: int, lapsed: dict | None, to: dict) -> str:
    return (f"{incident['title']} was not acknowledged in time by {person(lapsed)} and is escalated to "
            f"{person(to)} (escalation level {level}).")


def escalated_away_message(incident: dict, *, to: dict) -> str:
    """To the clinician an escalation took the alarm from: they did not take it over, it moved on."""
    return (f"{incident['title']} was not acknowledged in time and was escalated to {person(to)}; "
            f"it is no longer yours.")


def last_resort_taken_message(incident: dict, *, by: dict) -> str:
    return f"{person(by)} took {incident['title']}; you no longer need to respond."


def declined_message(incident: dict, *, by: dict, reason: str | None) -> str:
    because = f" ({reason[:200]})" if reason else ""
    return f"{person(by)} could not take {incident['title']}{because}: it is assigned to you."


def still_unacknowledged_message(incident: dict, *, assignee: dict | None) -> str:
    return (f"{incident['title']} is still not acknowledged by {person(assignee)} and nobody else is "
            f"available to take it.")


def last_level_message(incident: dict, *, assignee: dict | None, role: str) -> str:
    return (f"{incident['title']} is still not acknowledged by {person(assignee)} after every "
            f"escalation level: every {role_in_words(role)} on duty is paged. The first to acknowledge "
            f"takes it.")


def unowned_repage_message(incident: dict, *, minutes: int, role: str) -> str:
    return (f"{incident['title']} has had no owner for {minutes} min: every {role_in_words(role)} on duty "
            f"is paged again. The first to acknowledge takes it.")


def not_started_message(incident: dict) -> str:
    return (f"{whose(incident)} was acknowledged but work has "
            f"not started: please start it or hand it over.")


def claimed_message(incident: dict, *, by: dict, previous: dict | None, supervisor: bool = False) -> str:
    source = f" from {person(previous)}" if previous else ""
    who = f"{person(by)}, a supervisor," if supervisor else person(by)
    return f"{who} took over {incident['title']}{source}."


def reassigned_message(incident: dict, *, by: dict, to: dict) -> str:
    return f"{person(by)} reassigned {incident['title']} to {person(to)}."


# --- The event (built by incident management, checked on arrival by notification) ----------------

Text = StrictStr


class IncidentEvent(QueueMessage):
    """An event on the `notifications` queue. One that can never be stored (wrong shape, unknown
    type, newer version) is refused by parse() with the reason, so it is dead-lettered instead
    of looping."""
    kind: ClassVar[str] = "incident event"

    event_id: Text = Field(max_length=200)
    type: Text = Field(max_length=64)
    recipients: tuple[Text, ...] = Field(max_length=MAX_RECIPIENTS)
    incident_id: StrictInt | None = None
    title: Text = Field(max_length=MAX_TEXT)
    message: Text = Field(max_length=MAX_TEXT)
    severity: Text | None = None
    data: dict | None = None
    occurred_at: Text | None = None

    @field_validator("event_id", "type", "title", "message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be a non-empty string")
        return value

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in INCIDENT_EVENT_TYPES:
            raise ValueError(f"unknown event type {value!r}")
        return value

    @field_validator("recipients")
    @classmethod
    def _employee_ids(cls, value: tuple) -> tuple:
        if not all(value):
            raise ValueError("must be a list of employee ids")
        return tuple(dict.fromkeys(value))  # unique, in order

    @field_validator("incident_id")
    @classmethod
    def _positive(cls, value: int | None) -> int | None:
        if value is not None and not 0 < value <= BIGINT_MAX:
            raise ValueError("must be a positive integer or null")
        return value

    check_severity = field_validator("severity")(known_severity)

    @field_validator("data")
    @classmethod
    def _data(cls, value: dict | None) -> dict:
        return {} if value is None else value

    check_occurred_at = field_validator("occurred_at")(iso_timestamp)

    def outbox_row(self) -> OutboxRow:
        return OutboxRow(NOTIFICATIONS_QUEUE, self.event_id, self.payload())


def patients_named(data: dict | None) -> list[str]:
    """The patients whose identifying data an event's (or a stored notification's) `data` carries:
    an incident's patient, a handover's patients. For the PHI access log (healthguard.phi_access)."""
    data = data or {}
    named = [data.get("patient_id"), *(data.get("patients") or ())]
    return list(dict.fromkeys(p for p in named if isinstance(p, str) and p))


# --- The dashboards' projection (incident_updated frames) ---------------------------------------

def incident_update(event: IncidentEvent) -> dict | None:
    """What every signed-in dashboard needs to refresh its incident lists, without a reload:
    the body of an `incident_updated` WebSocket frame (services/notification/WEBSOCKET.md)."""
    if event.incident_id is None:
        return None
    data = event.data
    return {
        "incident_id": event.incident_id,
        "event_id": event.event_id,
        "event_type": event.type,
        "status": data.get("status"),
        "severity": event.severity,
        "title": event.title,
        "assigned_to": data.get("assigned_to"),
        "patient_id": data.get("patient_id"),
        "room": data.get("room"),
        "alert_type": data.get("alert_type"),
        "alert_count": data.get("alert_count"),
        "reason": data.get("reason"),
        "paged": data.get("paged") or [],
        "unowned_since": data.get("unowned_since"),
        "assignment_reason": data.get("assignment_reason"),
        "silenced_by": data.get("silenced_by"),
        "occurred_at": event.occurred_at,
    }
