"""PostgreSQL access: one bounded pool per process, one transaction per unit of work.

The pool is the process's share of the connection budget (README, "Connection budget"): it opens
at most `maxconn` connections, lazily, keeps them for reuse, and closes those idle for longer
than `idle_seconds`, so a quiet process gives its connections back to the server."""
import contextlib
import logging
import os
import re
import threading
import time
import weakref

import psycopg2
import psycopg2.extras

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 3
BIGINT_MAX = 2**63 - 1  # the largest id a bigint identity column holds


class PoolTimeout(psycopg2.OperationalError):
    """Every connection this process may hold stayed busy for the whole wait: the request is
    answered 503 (errors.py) instead of queuing without bound."""


class _Pool:
    """At most `maxconn` connections, opened on demand, reused most-recently-used first (so the
    least used ones age out), closed after `idle_seconds` unused."""

    def __init__(self, url: str, *, maxconn: int, idle_seconds: float):
        self.url = url
        self.maxconn = maxconn
        self.idle_seconds = idle_seconds
        self.pid = os.getpid()
        self._idle: list[tuple[object, float]] = []  # (connection, when it was given back)
        self._open = 0  # idle + checked out + being opened
        self._changed = threading.Condition(threading.Lock())
        self._closed = False
        self._reaper = threading.Thread(target=self._reap_forever, name="db-pool-reaper", daemon=True)
        self._reaper.start()

    def get(self, wait_seconds: float):
        """A connection: an idle one, else a new one while under the maximum, else the first one
        given back within `wait_seconds` (PoolTimeout after). When the server refuses a new
        connection (full, say) while others of this pool are out, it waits for one of those
        instead: the connections it holds keep serving."""
        deadline = time.monotonic() + wait_seconds
        refused = None
        while True:
            with self._changed:
                while True:
                    if self._idle:
                        return self._idle.pop()[0]
                    if refused is not None and self._open == 0:
                        raise refused
                    if refused is None and self._open < self.maxconn:
                        self._open += 1
                        break
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise refused or PoolTimeout(
                            f"all {self.maxconn} database connections of this process stayed busy "
                            f"for {wait_seconds:g} s")
                    self._changed.wait(left)
            try:
                return psycopg2.connect(self.url, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                                        application_name="healthguard")
            except psycopg2.OperationalError as exc:
                self._discarded()
                refused = exc
            except BaseException:
                self._discarded()
                raise

    def put(self, conn) -> None:
        if conn.closed or self._closed:
            conn.close()
            self._discarded()
            return
        with self._changed:
            self._idle.append((conn, time.monotonic()))
            self._changed.notify()

    def _discarded(self) -> None:
        with self._changed:
            self._open -= 1
            self._changed.notify()

    def drop_idle(self, older_than: float | None = None) -> int:
        """Close idle connections (given back more than `older_than` seconds ago; all without)."""
        now = time.monotonic()
        with self._changed:
            stale = [c for c, since in self._idle if older_than is None or now - since > older_than]
            self._idle = [(c, since) for c, since in self._idle if c not in stale]
            self._open -= len(stale)
            self._changed.notify_all()
        for conn in stale:
            conn.close()
        return len(stale)

    def stats(self) -> dict:
        with self._changed:
            return {"open": self._open, "idle": len(self._idle), "max": self.maxconn}

    def _reap_forever(self) -> None:
        interval = max(0.5, min(self.idle_seconds / 2, 30.0))
        while not self._closed:
            time.sleep(interval)
            if not self._closed:
                self.drop_idle(self.idle_seconds)

    def close(self) -> None:
        self._closed = True
        self.drop_idle()


class Prepared:
    """A statement the server plans once per connection and then only runs: for the few run for
    every alarm a device posts (its key's lookup, the flood limit's count, storing the alert),
    whose planning took as long as their execution (0.2 ms of 0.4 for storing an alert, 0.15 of
    0.25 for the count). Written with psycopg2's named parameters, each cast to its type where
    the statement alone does not tell (`%(limit)s::int`), and run as

        RECORD_ALERT = Prepared("record_alert", "WITH ... %(patient_id)s ...")
        RECORD_ALERT.execute(cur, {"patient_id": ...})

    The first execute on a connection sends PREPARE (kept by the server for the session, a
    rollback does not undo it), every one then EXECUTE with the values. The statements are SQL
    PREPARE, so a pooler between the services and PostgreSQL must keep a server connection per
    client connection (PgBouncer's session mode), as the README's budget section says."""

    _done: "weakref.WeakKeyDictionary[object, set[str]]" = weakref.WeakKeyDictionary()

    def __init__(self, name: str, sql: str):
        keys: list[str] = []

        def numbered(match) -> str:
            if match.group(1) not in keys:
                keys.append(match.group(1))
            return f"${keys.index(match.group(1)) + 1}"
        self.name = name
        self.prepare = f"PREPARE {name} AS " + re.sub(r"%\((\w+)\)s", numbered, sql).replace("%%", "%")
        self.run = f"EXECUTE {name} (" + ", ".join(f"%({key})s" for key in keys) + ")"

    def execute(self, cur, params: dict) -> None:
        done = self._done.setdefault(cur.connection, set())
        if self.name not in done:
            cur.execute(self.prepare)
            done.add(self.name)
        cur.execute(self.run, params)


class Cursor(psycopg2.extras.RealDictCursor):
    """A dict cursor that keeps work for after its transaction committed (`after_commit`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.database = None  # the Database whose transaction this is
        self._after_commit = []

    def after_commit(self, callback) -> None:
        """Call `callback()` once this transaction committed, never if it rolled back: work that
        must not run before the commit is visible (waking the outbox relay), once per callback."""
        if callback not in self._after_commit:
            self._after_commit.append(callback)

    def _committed(self) -> None:
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("work after a commit failed")


class Database:
    """A lazily created, thread-safe, bounded connection pool.

    The pool is created on first use, in the process that uses it: gunicorn forks workers after
    the app is built, and a libpq connection must never cross a fork.

    maxconn: connections this process may hold (DB_POOL_MAX); idle_seconds: a connection unused
    this long is closed (DB_POOL_IDLE_SECONDS); wait_seconds: how long a unit of work waits for a
    connection when all are busy before it fails with PoolTimeout (DB_POOL_WAIT_SECONDS).
    """

    def __init__(self, url: str, *, maxconn: int = 10, idle_seconds: float = 300.0,
                 wait_seconds: float = 10.0):
        if maxconn < 1:
            raise ValueError("a pool needs at least one connection")
        self.url = url
        self.maxconn = maxconn
        self.idle_seconds = idle_seconds
        self.wait_seconds = wait_seconds
        self._pool: _Pool | None = None
        self._lock = threading.Lock()

    def _get_pool(self) -> _Pool:
        with self._lock:
            if self._pool is None or self._pool.pid != os.getpid():
                self._pool = _Pool(self.url, maxconn=self.maxconn, idle_seconds=self.idle_seconds)
            return self._pool

    @contextlib.contextmanager
    def transaction(self, *, wait_seconds: float | None = None):
        """Yield a dict cursor inside one transaction: commit on success, roll back on error."""
        with self._connection(wait_seconds) as conn:
            with conn:  # commits, or rolls back on exception
                with conn.cursor(cursor_factory=Cursor) as cur:
                    cur.database = self
                    yield cur
        cur._committed()  # the connection back in the pool first

    @contextlib.contextmanager
    def autocommit(self, *, wait_seconds: float | None = None):
        """Yield a dict cursor whose every statement is a transaction of its own: one round trip
        instead of three (psycopg2 sends BEGIN and COMMIT apart), and the statement's row locks
        are let go by the server as it ends, not when the client gets round to committing. For
        work that is one statement."""
        with self._connection(wait_seconds) as conn:
            conn.autocommit = True  # and not `with conn`, which would open a transaction even so
            try:
                with conn.cursor(cursor_factory=Cursor) as cur:
                    cur.database = self
                    yield cur
            finally:
                if not conn.closed:
                    conn.autocommit = False
        cur._committed()  # each statement committed as it ran

    @contextlib.contextmanager
    def _connection(self, wait_seconds: float | None):
        """A connection of the pool, given back afterwards."""
        pool = self._get_pool()
        conn = pool.get(self.wait_seconds if wait_seconds is None else wait_seconds)
        try:
            yield conn
        finally:
            lost = bool(conn.closed)  # psycopg2 marks a connection whose server went away
            pool.put(conn)
            if lost:
                # The server restarted or the network broke: the other idle connections are
                # almost surely dead too. Close them, so one request fails instead of one per
                # pooled connection.
                pool.drop_idle()

    def ping(self, *, wait_seconds: float = 2.0) -> None:
        """Raise unless this pool can serve a query now: on a pooled connection when one is
        idle (a server that refuses new connections, being full, still serves those), on a new
        one otherwise. A pooled connection found dead is replaced once (transaction() dropped
        the idle ones, so the second attempt opens a fresh connection)."""
        for attempt in (1, 2):
            try:
                with self.transaction(wait_seconds=wait_seconds) as cur:
                    cur.execute("SELECT 1")
                return
            except PoolTimeout:
                raise
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                if attempt == 2:
                    raise

    def stats(self) -> dict:
        pool = self._pool
        return pool.stats() if pool is not None else {"open": 0, "idle": 0, "max": self.maxconn}

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
