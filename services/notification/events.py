"""The events the incident service puts on the `notifications` queue, checked on arrival.

    {"event_id": "...", "type": "INCIDENT_ASSIGNED", "recipients": ["D01"], "incident_id": 42,
     "title": "...", "message": "...", "severity": "CRITICAL",
     "data": {"status": ..., "patient_id": ..., "room": ..., "alert_type": ..., "assigned_to": ...},
     "occurred_at": "2026-02-01T10:00:00+00:00"}

An event that can never be stored (wrong shape, unknown type) raises PermanentMessageError, so it
goes to the dead-letter queue with the reason instead of looping.
"""
from dataclasses import dataclass
from datetime import datetime

from healthguard.broker import PermanentMessageError
from healthguard.incident_events import INCIDENT_EVENT_TYPES

EVENT_TYPES = frozenset(INCIDENT_EVENT_TYPES)
SEVERITIES = frozenset({"CRITICAL", "HIGH", "MEDIUM", "LOW"})
MAX_RECIPIENTS = 500
MAX_TEXT = 4000
BIGINT_MAX = 2**63 - 1


@dataclass(frozen=True)
class IncidentEvent:
    event_id: str
    type: str
    recipients: tuple[str, ...]
    incident_id: int | None
    title: str
    message: str
    severity: str | None
    data: dict
    occurred_at: str | None


def _text(message: dict, name: str, *, limit: int = MAX_TEXT) -> str:
    value = message.get(name)
    if not isinstance(value, str) or not value.strip():
        raise PermanentMessageError(f"event field {name!r} must be a non-empty string")
    if len(value) > limit:
        raise PermanentMessageError(f"event field {name!r} is longer than {limit} characters")
    return value


def parse_event(message: dict) -> IncidentEvent:
    event_id = _text(message, "event_id", limit=200)
    event_type = _text(message, "type", limit=64)
    if event_type not in EVENT_TYPES:
        raise PermanentMessageError(f"unknown event type {event_type!r}")
    recipients = message.get("recipients")
    if not isinstance(recipients, list) or not all(isinstance(r, str) and r for r in recipients):
        raise PermanentMessageError("event field 'recipients' must be a list of employee ids")
    if len(recipients) > MAX_RECIPIENTS:
        raise PermanentMessageError(f"an event may name at most {MAX_RECIPIENTS} recipients")
    incident_id = message.get("incident_id")
    if incident_id is not None and (isinstance(incident_id, bool) or not isinstance(incident_id, int)
                                    or not 0 < incident_id <= BIGINT_MAX):
        raise PermanentMessageError("event field 'incident_id' must be a positive integer or null")
    severity = message.get("severity")
    if severity is not None and severity not in SEVERITIES:
        raise PermanentMessageError(f"unknown severity {severity!r}")
    data = message.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PermanentMessageError("event field 'data' must be an object")
    occurred_at = message.get("occurred_at")
    if occurred_at is not None:
        try:
            datetime.fromisoformat(occurred_at)
        except (TypeError, ValueError) as exc:
            raise PermanentMessageError("event field 'occurred_at' must be an ISO 8601 timestamp") from exc
    return IncidentEvent(
        event_id=event_id, type=event_type, recipients=tuple(dict.fromkeys(recipients)),
        incident_id=incident_id, title=_text(message, "title"), message=_text(message, "message"),
        severity=severity, data=data, occurred_at=occurred_at,
    )
