"""Notification events for the `notifications` queue, written through the outbox in the same
transaction as the change they announce. The notification service stores them per recipient and
pushes an incident_updated frame to every dashboard.

The shape is a contract with the notification service:
    {"event_id", "type", "recipients", "incident_id", "title", "message", "severity",
     "data": {"status", "patient_id", "room", "alert_type", "assigned_to"}, "occurred_at"}
"""
from healthguard.broker import NOTIFICATIONS_QUEUE
from healthguard.incident_events import INCIDENT_EVENT_TYPES
from healthguard.outbox import enqueue


def incident_event(incident: dict, *, type: str, history: dict, recipients, message: str) -> dict:
    """The event announcing the change recorded by `history` (its incident_history row): one
    history row, one event, so the event id is stable across a redelivery of the same change."""
    if type not in INCIDENT_EVENT_TYPES:
        raise ValueError(f"unknown notification event type {type}")
    suffix = type.removeprefix("INCIDENT_").lower()
    return {
        "event_id": f"incident-{incident['incident_id']}-{suffix}-{history['history_id']}",
        "type": type,
        "recipients": list(dict.fromkeys(r for r in recipients if r)),  # unique, in order
        "incident_id": incident["incident_id"],
        "title": incident["title"],
        "message": message,
        "severity": incident["severity"],
        "data": {
            "status": incident["status"],
            "patient_id": incident["patient_id"],
            "room": incident["room"],
            "alert_type": incident["alert_type"],
            "assigned_to": incident["assigned_to"],
        },
        "occurred_at": history["created_at"].isoformat(),
    }


def announce(cur, incident: dict, *, type: str, history: dict, recipients, message: str) -> dict:
    event = incident_event(incident, type=type, history=history, recipients=recipients, message=message)
    enqueue(cur, queue=NOTIFICATIONS_QUEUE, message_id=event["event_id"], payload=event)
    return event
