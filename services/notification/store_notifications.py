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

Batches: under load the consumer hands over up to BATCH_SIZE events at once
(store_and_announce_all): one insert and one commit for them all, their announcements published
together (confirms pipelined), then one acknowledgement. Should the batch fail, each event is
stored alone by store_and_announce, so a bad one is dead-lettered and the others are stored.
"""
import time

from healthguard import clock
from healthguard.broker import BrokerError
from healthguard.fanout import FanoutPublisher
from healthguard.incident_events import IncidentEvent, incident_update

from . import metrics
from .schedule_rule_steps import bring_ledger_in_line
from .service import as_json, store_events_notifications

STORE_ORDER_LOCK = 0x4847_0004  # "HG" + 4: the advisory lock storing notifications queues on
BATCH_SIZE = 100


def store_and_announce(message: dict, *, db, fanout: FanoutPublisher) -> None:
    """Store and announce one event (and count a rejected one)."""
    try:
        event = IncidentEvent.parse(message)
    except Exception:
        metrics.NOTIFICATIONS_SENT.labels("store", "rejected").inc()
        raise
    try:
        _store_and_announce([event], db=db, fanout=fanout)
    except BrokerError:
        raise  # stored; the announcement is retried
    except Exception:
        metrics.NOTIFICATIONS_SENT.labels("store", "rejected").inc(max(len(event.recipients), 1))
        raise


def store_and_announce_all(messages: list[dict], *, db, fanout: FanoutPublisher) -> None:
    """Store and announce a batch of events in one transaction. Raises when any of them cannot
    be stored (nothing is then committed): the caller handles them one by one."""
    events = list({event.event_id: event for event in map(IncidentEvent.parse, messages)}.values())
    _store_and_announce(events, db=db, fanout=fanout)


def _store_and_announce(events, *, db, fanout: FanoutPublisher) -> None:
    # The lock's own transaction, held open (and the lock with it) until the announcements are out.
    with db.transaction() as holding:
        holding.execute("SELECT pg_advisory_xact_lock(%s)", (STORE_ORDER_LOCK,))
        with db.transaction() as cur:  # committed before it is announced
            stored = store_events_notifications(cur=cur, events=events)
        announcements = []
        for event, (rows, new) in zip(events, stored, strict=True):
            if new:
                metrics.NOTIFICATIONS_SENT.labels("store", "stored").inc(new)
            if len(rows) > new:
                metrics.NOTIFICATIONS_SENT.labels("store", "duplicate").inc(len(rows) - new)
            update = incident_update(event)
            if rows or update:
                announcements.append(({
                    "event_id": event.event_id,
                    "stored_at": time.time(),
                    "notifications": [as_json(row) for row in rows],
                    "incident_update": update,
                }, event.event_id))
        # Still under the lock: announced in the order stored, before the next batch is.
        failed = [error for error in fanout.broadcast_many(announcements) if error is not None]
        if failed:
            raise BrokerError(f"{len(failed)} announcements not confirmed: {failed[0]}")
    # The off-tab rule steps of whom the alarms page now, after the lock (the ordering of the
    # stored notifications does not need them, and it serializes every instance) and before the
    # message is acknowledged: a crash in between redelivers it and they are scheduled then
    # (bring_ledger_in_line is idempotent).
    with db.transaction() as cur:
        bring_ledger_in_line(cur, incident_ids=[event.incident_id for event in events], now=clock.now())
