"""Consumer of the durable `notifications` queue: store, then announce to every instance.

Competing consumers (the worker process of every instance) share the queue, so each event is
stored by one of them. After the commit, the storing process publishes the stored rows to the
`notifications.push` fanout exchange; every web worker of every instance receives them and pushes
them to the sockets it holds (hub.py). The message is acknowledged only after both, so a crash
in between redelivers it: the unique key stores nothing twice, the stored rows are announced
again, and each socket drops the ids it already has.

Ordering. All storing is serialized on one advisory lock, held from before the insert until the
announcement is confirmed. Notification ids are therefore committed AND announced in increasing
order across all instances, which is what makes a client's "last id I saw" a complete cursor:
when it reconnects with last_id=N, nothing below N can still be on its way.
"""
import time

from healthguard.fanout import FanoutPublisher
from healthguard.incident_events import incident_update, parse_event

from . import metrics
from .service import as_json, store_event_notifications

PUSH_EXCHANGE = "notifications.push"
STORE_ORDER_LOCK = 0x4847_0004  # "HG" + 4: the advisory lock storing notifications queues on


def store_and_announce(message: dict, *, db, fanout: FanoutPublisher) -> None:
    try:
        event = parse_event(message)
    except Exception:
        metrics.NOTIFICATIONS_SENT.labels("store", "rejected").inc()
        raise
    with db.transaction() as lock:
        lock.execute("SELECT pg_advisory_xact_lock(%s)", (STORE_ORDER_LOCK,))
        try:
            with db.transaction() as cur:  # committed before it is announced
                rows, new = store_event_notifications(cur=cur, event=event)
        except Exception:
            metrics.NOTIFICATIONS_SENT.labels("store", "rejected").inc(max(len(event.recipients), 1))
            raise
        if new:
            metrics.NOTIFICATIONS_SENT.labels("store", "stored").inc(new)
        if len(rows) > new:
            metrics.NOTIFICATIONS_SENT.labels("store", "duplicate").inc(len(rows) - new)
        update = incident_update(event)
        if rows or update:
            fanout.broadcast({
                "event_id": event.event_id,
                "stored_at": time.time(),
                "notifications": [as_json(row) for row in rows],
                "incident_update": update,
            }, message_id=event.event_id)
