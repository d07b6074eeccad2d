"""Periodic background work, run by the service's worker process (`python -m healthguard.worker`)."""
import logging
import select
import time

import psycopg2
import psycopg2.extensions

from .threads import BackgroundThread

log = logging.getLogger(__name__)

# How often a task waiting for a database notification looks whether it is being stopped.
STOP_CHECK_SECONDS = 0.5


class PeriodicTask(BackgroundThread):
    """Calls `run_once()` every `interval` seconds in a daemon thread until stopped. A failure
    (the database away for a while) is logged and tried again at the next tick, so the task
    outlives any outage.

    With `wake_on=(database_url, channel)` it also runs as soon as a PostgreSQL NOTIFY arrives on
    that channel (LISTEN on a connection of its own). A notification is sent by the transaction
    that makes the work possible and delivered only once it commits, to every listening process;
    the periodic run stays as the safety net for one missed while the listener reconnected."""

    name = "periodic-task"

    def __init__(self, *, interval: float, wake_on: tuple[str, str] | None = None):
        super().__init__()
        self.interval = interval
        self.wake_on = wake_on
        self._listener = None

    def run_once(self):
        raise NotImplementedError

    def _run(self) -> None:
        try:
            while self._wait():
                try:
                    self.run_once()
                except Exception:
                    log.exception("periodic task failed; trying again next time", extra={"task": self.name})
        finally:
            self._close_listener()

    def _wait(self) -> bool:
        """Wait for the next run: `interval`, or a notification first. False once stopping."""
        if self.wake_on is None or not self._listen():
            return not self._stopping.wait(self.interval)
        deadline = time.monotonic() + self.interval
        try:
            while not self._stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                readable, _, _ = select.select([self._listener], [], [], min(remaining, STOP_CHECK_SECONDS))
                if readable:
                    self._listener.poll()
                    if self._listener.notifies:
                        self._listener.notifies.clear()
                        break
        except (psycopg2.Error, OSError, ValueError):
            log.warning("lost the notification connection; listening again next time",
                        extra={"task": self.name})
            self._close_listener()
        return not self._stopping.is_set()

    def _listen(self) -> bool:
        if self._listener is not None:
            return True
        url, channel = self.wake_on
        try:
            conn = psycopg2.connect(url, connect_timeout=5, application_name=f"healthguard-{self.name}")
            conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
            with conn.cursor() as cur:
                cur.execute(f"LISTEN {channel}")  # a constant identifier, never input
        except psycopg2.Error:
            log.warning("cannot listen for notifications; running on the interval alone",
                        extra={"task": self.name})
            return False
        self._listener = conn
        return True

    def _close_listener(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            except psycopg2.Error:
                pass
            self._listener = None
