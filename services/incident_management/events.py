"""Announcing a change of an incident: its event (healthguard.incident_events, the contract with
the notification service) goes on the `notifications` queue through the outbox, in the same
transaction as the change it announces."""
from healthguard.broker import NOTIFICATIONS_QUEUE
from healthguard.incident_events import incident_event
from healthguard.outbox import enqueue


def announce(cur, incident: dict, *, type: str, history: dict, recipients, message: str) -> dict:
    event = incident_event(incident, type=type, history=history, recipients=recipients, message=message)
    enqueue(cur, queue=NOTIFICATIONS_QUEUE, message_id=event["event_id"], payload=event)
    return event
