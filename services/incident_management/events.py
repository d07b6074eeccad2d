"""Announcing a change of an incident: its event (healthguard.incident_events, the contract with
the notification service) goes on the `notifications` queue through the outbox, in the same
transaction as the change it announces."""
from healthguard.broker import NOTIFICATIONS_QUEUE
from healthguard.incident_events import incident_event
from healthguard.outbox import enqueue, enqueue_many


def announce(cur, incident: dict, *, type: str, history: dict, recipients, message: str, **said) -> dict:
    """`said`: what incident_event() takes besides (reason, paged, actor_id, previous_assignee)."""
    event = incident_event(incident, type=type, history=history, recipients=recipients, message=message,
                           **said)
    enqueue(cur, queue=NOTIFICATIONS_QUEUE, message_id=event["event_id"], payload=event)
    return event


def announce_many(cur, announcements) -> None:
    """announce() of several changes (a batch) in one outbox statement: each announcement is
    (incident, type, history, recipients, message), optionally with a sixth item, a dict of what
    announce() takes as `said`, in the order they happened."""
    events = [incident_event(incident, type=type, history=entry, recipients=recipients, message=message,
                             **(said[0] if said else {}))
              for incident, type, entry, recipients, message, *said in announcements]
    enqueue_many(cur, [(NOTIFICATIONS_QUEUE, event["event_id"], event) for event in events])
