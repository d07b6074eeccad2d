"""Transactional outbox: a message is written to the `outbox` table in the same transaction as
the fact it announces, and a relay publishes it to RabbitMQ afterwards.

Writing to the database and to the broker as two steps would lose an alarm (crash after the
commit, before the publish) or announce one that was never stored (crash the other way round).
With the outbox the commit is the only decision: once it happened, the relay keeps trying until
the broker confirmed the message, and only then deletes the row. Delivery is at least once (a
crash between the confirm and the delete publishes the row again), so every consumer must
tolerate a message it has already handled; messages carry their `message_id` for that.

    with db.transaction() as cur:
        cur.execute("INSERT INTO alerts ...")
        enqueue(cur, [AlertMessage(alert_id=alert_id, severity="CRITICAL").outbox_row()])

A message is built by its model (healthguard.messages, incident_events), which names its queue
and its message_id. The relay is woken once the transaction has committed, never by a NOTIFY
inside it (RelayWaker says why); should a wake be missed, its poll finds the row.

A service that writes to the outbox runs an `OutboxRelay` in its worker process
(`platform().background`, run by `python -m healthguard.worker`); any relay publishes any row,
whichever service wrote it. One relay publishes at a time: each pass takes RELAY_LOCK with try,
and a relay that does not get it goes back to waiting (every relay hears every NOTIFY, so the
one publishing sees the rows too). Rows then leave in outbox_id order within a queue, so the
events of one incident, written in order under its row lock, reach the `notifications` queue in
order, which two relays publishing side by side did not guarantee. Other copies of the relay are
standbys for a worker that dies, not a share of the work.

A batch is published in one go and its confirms are awaited together (Publisher.publish_many),
a row deleted only once its own confirm came. Pipelined, one relay confirms thousands of
messages a second.
"""
import datetime
import decimal
import json
import logging
import os
import select
import threading
import time
from typing import NamedTuple

import psycopg2
from prometheus_client import Counter
from psycopg2.extras import Json

from .broker import NOTIFICATIONS_QUEUE, BrokerError, Outgoing, alert_lane
from .domain import OUTBOX_WAKE_CHANNEL
from .threads import BackgroundThread

log = logging.getLogger(__name__)

RELAY_LOCK = 0x4847_0006  # "HG" + 6: held by the one relay publishing now
# A backlog (a flood of low alarms, the broker back after an outage) is published most urgent
# first: CRITICAL and HIGH alarms, then the notifications (pages) of the incidents, then the rest
# in the order written. Within a queue the order stays first in, first out.
PUBLISH_FIRST = (alert_lane("CRITICAL"), alert_lane("HIGH"), NOTIFICATIONS_QUEUE)

MESSAGES_RELAYED = Counter(
    "outbox_messages_relayed_total", "Outbox messages confirmed by the broker and deleted", ["queue"])
RELAY_FAILURES = Counter(
    "outbox_relay_failures_total", "Attempts to publish an outbox message that failed", ["queue"])


def _json_default(value):
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(payload) -> str:
    return json.dumps(payload, default=_json_default)


class OutboxRow(NamedTuple):
    queue: str
    message_id: str
    payload: dict


def insert_rows(select_rows: str) -> str:
    """THE outbox insert: the rows of `select_rows` (columns queue, message_id, payload, in the
    order they are to leave). A message_id already waiting in the outbox is not added twice."""
    return f"""
        INSERT INTO outbox (queue, message_id, payload)
        {select_rows}
        ON CONFLICT (message_id) DO NOTHING"""


ENQUEUE = insert_rows("""
        SELECT queue, message_id, payload
        FROM unnest(%s::text[], %s::text[], %s::jsonb[]) WITH ORDINALITY AS m(queue, message_id, payload, n)
        ORDER BY n""")


def enqueue(cur, rows) -> None:
    """Add messages (OutboxRow: a model's outbox_row()) to the outbox inside the caller's
    transaction, in one statement, in the order given; they are published once it commits."""
    rows = list(rows)
    if not rows:
        return
    cur.execute(ENQUEUE, ([r.queue for r in rows], [r.message_id for r in rows],
                          [Json(r.payload, dumps=to_json) for r in rows]))
    wake_relay_after_commit(cur)


def wake_relay_after_commit(cur) -> None:
    """Wake the relays once the caller's transaction (a healthguard.db cursor's) has committed:
    for whatever writes outbox rows, enqueue() or a statement of its own (insert_rows)."""
    cur.after_commit(RelayWaker.of(cur.database).wake)


class RelayWaker:
    """Sends the relays their NOTIFY after the commits that wrote outbox rows.

    A NOTIFY inside the writing transaction takes PostgreSQL's notify lock at commit and holds it
    while the commit is flushed to disk, so every alert's commit queued behind the one before
    (the profile of POST /alerts under load: most backends waiting on that lock). Here the
    NOTIFY goes out after the commit, from one thread per process and database, in a
    transaction that does not wait for the disk: one NOTIFY for however many commits happened
    since the last one, sent after all of them, so none is missed (and should one be, the
    relay's poll still finds the row)."""

    _wakers: dict = {}
    _wakers_lock = threading.Lock()

    @classmethod
    def of(cls, db) -> "RelayWaker":
        with cls._wakers_lock:
            waker = cls._wakers.get(id(db))
            if waker is None or waker.db is not db:
                waker = cls._wakers[id(db)] = cls(db)
            return waker

    def __init__(self, db):
        self.db = db
        self._due = threading.Event()
        self._pid = None  # the process whose thread sends; started on first use, after any fork
        self._lock = threading.Lock()

    def wake(self) -> None:
        if self._pid != os.getpid():
            self._start()
        self._due.set()

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._due = threading.Event()
            threading.Thread(target=self._run, args=(self._due,), name="relay-waker", daemon=True).start()
            self._pid = os.getpid()

    def _run(self, due: threading.Event) -> None:
        while True:
            due.wait()
            due.clear()  # a commit after this point sets it again: another NOTIFY
            try:
                with self.db.transaction() as cur:
                    cur.execute("SET LOCAL synchronous_commit TO OFF; NOTIFY " + OUTBOX_WAKE_CHANNEL)
            except psycopg2.Error as exc:
                log.warning("could not wake the outbox relay; its poll will find the rows",
                            extra={"error": repr(exc)[:300]})
                time.sleep(1.0)  # the database is away: do not spin on it


class OutboxRelay(BackgroundThread):
    """Publishes outbox rows in a background thread: wakes on NOTIFY, polls as a backstop,
    and keeps retrying (with a growing pause) while the broker or the database is down."""

    name = "outbox-relay"

    def __init__(self, db, publisher, *, batch_size: int = 200, poll_interval: float = 2.0,
                 max_backoff: float = 5.0):
        super().__init__()
        self.db, self.publisher = db, publisher
        self.batch_size, self.poll_interval, self.max_backoff = batch_size, poll_interval, max_backoff
        self._wake_r = self._wake_w = None

    def _before_start(self) -> None:
        self._wake_r, self._wake_w = os.pipe()

    def _interrupt(self) -> None:
        if self._wake_w is not None:
            os.write(self._wake_w, b"x")

    def _after_stop(self) -> None:
        self._thread = None
        for fd in (self._wake_r, self._wake_w):
            if fd is not None:
                os.close(fd)
        self._wake_r = self._wake_w = None

    # -- the loop -----------------------------------------------------------------------------

    def _run(self) -> None:
        listener = None
        backoff = 0.0
        while not self._stopping.is_set():
            if listener is None:
                listener = self._listen()
            try:
                self.relay_pending()
                backoff = 0.0
            except (BrokerError, psycopg2.Error) as exc:
                backoff = min(max(backoff * 2, 0.5), self.max_backoff)
                log.warning("outbox relay could not publish, will retry",
                            extra={"error": repr(exc)[:300], "retry_in": backoff})
            listener = self._wait(listener, backoff or self.poll_interval)
        if listener is not None:
            listener.close()

    def _listen(self):
        """A dedicated autocommit connection that LISTENs; None while the database is down
        (polling carries on without it)."""
        try:
            conn = psycopg2.connect(self.db.url, connect_timeout=3, application_name="outbox-relay")
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("LISTEN " + OUTBOX_WAKE_CHANNEL)
            return conn
        except psycopg2.Error as exc:
            log.warning("outbox relay cannot LISTEN, polling only", extra={"error": repr(exc)[:300]})
            return None

    def _wait(self, listener, timeout: float):
        """Sleep until a NOTIFY, stop() or the timeout. Returns the listener, or None if it broke."""
        watched = [self._wake_r] + ([listener] if listener is not None else [])
        try:
            readable, _, _ = select.select(watched, [], [], timeout)
            if listener is not None and listener in readable:
                listener.poll()
                listener.notifies.clear()
        except (psycopg2.Error, OSError, ValueError):
            if listener is not None:
                listener.close()
            return None
        return listener

    # -- one pass -----------------------------------------------------------------------------

    def relay_pending(self) -> int:
        """Publish everything waiting now (unless another relay is publishing). Returns how many
        were published; raises BrokerError if the broker refused one (the rest stay for later)."""
        total = 0
        while not self._stopping.is_set():
            published = self._relay_batch()
            total += published
            if published < self.batch_size:
                break
        return total

    def _relay_batch(self) -> int:
        with self.db.transaction() as cur:
            cur.execute("SELECT pg_try_advisory_xact_lock(%s) AS ours", (RELAY_LOCK,))
            if not cur.fetchone()["ours"]:
                return 0  # another relay is publishing; it hears the same NOTIFYs
            # No FOR UPDATE: only the relay holding RELAY_LOCK deletes rows; enqueue only inserts.
            cur.execute("""
                SELECT outbox_id, queue, message_id, payload FROM outbox
                ORDER BY array_position(%s::text[], queue) NULLS LAST, outbox_id
                LIMIT %s
            """, (list(PUBLISH_FIRST), self.batch_size))
            rows = cur.fetchall()
            if not rows:
                return 0
            errors = self.publisher.publish_many(
                [Outgoing.to_queue(row["queue"], row["payload"], message_id=row["message_id"])
                 for row in rows])
            published = [row for row, error in zip(rows, errors, strict=True) if error is None]
            failed = [(row, error) for row, error in zip(rows, errors, strict=True) if error is not None]
            if published:
                cur.execute("DELETE FROM outbox WHERE outbox_id = ANY(%s)",
                            ([row["outbox_id"] for row in published],))
            if failed:
                cur.execute("UPDATE outbox SET attempts = attempts + 1 WHERE outbox_id = ANY(%s)",
                            ([row["outbox_id"] for row, _ in failed],))
        for row in published:
            MESSAGES_RELAYED.labels(queue=row["queue"]).inc()
        for row, _ in failed:
            RELAY_FAILURES.labels(queue=row["queue"]).inc()
        if failed:
            raise failed[0][1]
        return len(published)
