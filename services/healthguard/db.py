"""PostgreSQL access: one pool per process, one transaction per unit of work."""
import contextlib
import logging
import threading

import psycopg2
import psycopg2.extras
import psycopg2.pool

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 3
BIGINT_MAX = 2**63 - 1  # the largest id a bigint identity column holds


class _RetainingPool(psycopg2.pool.ThreadedConnectionPool):
    """Connects lazily, but keeps returned connections for reuse.

    psycopg2 keeps at most `minconn` idle connections and closes the others on return, so a
    pool built with minconn=0 opened a new connection (a new server process, several ms) for
    every transaction. minconn is also how many it opens up front; so it is raised only after
    construction, where _putconn alone reads it."""

    def __init__(self, maxconn, *args, **kwargs):
        super().__init__(0, maxconn, *args, **kwargs)
        self.minconn = maxconn


class Database:
    """A lazily created, thread-safe connection pool.

    The pool is created on first use, in the process that uses it: gunicorn forks workers after
    the app is built, and a libpq connection must never cross a fork.
    """

    def __init__(self, url: str, *, maxconn: int = 10, wait_seconds: float = 10.0):
        self.url = url
        self.maxconn = maxconn
        self._pool = None
        self._lock = threading.Lock()
        # psycopg2's pool fails at once when every connection is out; a burst of requests (a
        # thousand WebSocket threads reconnecting) must queue for a bounded time instead.
        self._free = threading.BoundedSemaphore(maxconn)
        self.wait_seconds = wait_seconds

    def _get_pool(self):
        with self._lock:
            if self._pool is None:
                self._pool = _RetainingPool(
                    self.maxconn, self.url, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                    application_name="healthguard",
                )
            return self._pool

    @contextlib.contextmanager
    def transaction(self):
        """Yield a dict cursor inside one transaction: commit on success, roll back on error."""
        if not self._free.acquire(timeout=self.wait_seconds):
            raise psycopg2.OperationalError("every database connection of this process stayed busy")
        try:
            with self._checked_out() as cur:
                yield cur
        finally:
            self._free.release()

    @contextlib.contextmanager
    def _checked_out(self):
        pool = self._get_pool()
        conn = pool.getconn()
        try:
            with conn:  # commits, or rolls back on exception
                with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                    yield cur
        finally:
            lost = bool(conn.closed)  # psycopg2 marks a connection whose server went away
            pool.putconn(conn, close=lost)
            if lost:
                self._forget(pool)

    def _forget(self, pool) -> None:
        """A lost connection means the server restarted or the network broke: the pool's idle
        connections are almost surely dead too. Start a fresh pool, so one request fails instead
        of one per pooled connection; the old one's connections close as they are let go."""
        with self._lock:
            if self._pool is pool:
                self._pool = None

    def ping(self) -> None:
        """Raise unless the server answers now. Uses a fresh connection, so a dead pooled one
        cannot hide a live server and a live pooled one cannot hide a dead server."""
        conn = psycopg2.connect(self.url, connect_timeout=CONNECT_TIMEOUT_SECONDS)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
        finally:
            conn.close()

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.closeall()
                self._pool = None
