"""Announcing a change of an incident: its event (healthguard.incident_events, the contract with
the notification service) goes on the `notifications` queue through the outbox, in the same
transaction as the change it announces."""
from typing import NamedTuple

from healthguard.incident_events import IncidentEvent, incident_event
from healthguard.outbox import enqueue


class Announcement(NamedTuple):
    """One change to announce (announce_many): the incident as the change left it, the event
    type, the incident_history row recording the change, who is told, what they read, and what
    incident_event() takes besides (reason, paged, actor_id, previous_assignee)."""
    incident: dict
    type: str
    history: dict
    recipients: list
    message: str
    said: dict = {}  # noqa: RUF012 (never mutated: passed on as keyword arguments)


def announce(cur, incident: dict, *, type: str, history: dict, recipients, message: str,
             **said) -> IncidentEvent:
    """`said`: what incident_event() takes besides (reason, paged, actor_id, previous_assignee)."""
    event = incident_event(incident, type=type, history=history, recipients=recipients, message=message,
                           **said)
    enqueue(cur, [event.outbox_row()])
    return event


def announce_many(cur, announcements: list[Announcement]) -> None:
    """announce() of several changes (a batch) in one outbox statement, in the order they
    happened."""
    enqueue(cur, [incident_event(a.incident, type=a.type, history=a.history, recipients=a.recipients,
                                 message=a.message, **a.said).outbox_row()
                  for a in announcements])
