"""Least busy first: the one definition of the order in which clinicians are offered an alarm.
The on-call service answers "who is available" in this order, and incident management re-ranks
with it under its assignment lock as a batch assigns (incident_management/routing.py).

Fewest active incidents first (clinician_workload, db/migrations 0004 and 0013), then idle
longest: never assigned before anyone, then the earliest last assignment. Ties keep the order
given (sorted() is stable), so callers decide the last word (by id, or the on-call answer's)."""
import datetime

NEVER = datetime.datetime.min.replace(tzinfo=datetime.UTC)


def least_busy_key(active_incidents: int, last_assigned_at: datetime.datetime | None) -> tuple:
    return active_incidents, last_assigned_at is not None, last_assigned_at or NEVER
