"""Waking the outbox relays once alerts have committed.

A NOTIFY inside the alert's transaction takes PostgreSQL's notify lock at commit and holds it
while the commit is flushed to disk, so every alert's commit queued behind the one before (the
profile of POST /alerts under load: most backends waiting on that lock). Here the NOTIFY goes out
after the commit, from one thread per process, in a transaction that does not wait for the disk:
one NOTIFY for however many alerts committed since the last one, sent after all of them, so none
is missed (and should one be, the relay's poll still finds the row).
"""
import logging
import os
import threading
import time

import psycopg2

from healthguard.outbox import NOTIFY_CHANNEL

log = logging.getLogger(__name__)


class RelayWaker:
    def __init__(self, db):
        self.db = db
        self._due = threading.Event()
        self._pid = None  # the process whose thread sends; started on first use, after any fork
        self._lock = threading.Lock()

    def alert_committed(self) -> None:
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
            due.clear()  # an alert committed after this point sets it again: another NOTIFY
            try:
                with self.db.transaction() as cur:
                    cur.execute("SET LOCAL synchronous_commit TO OFF; NOTIFY " + NOTIFY_CHANNEL)
            except psycopg2.Error as exc:
                log.warning("could not wake the outbox relay; its poll will find the alerts",
                            extra={"error": repr(exc)[:300]})
                time.sleep(1.0)  # the database is away: do not spin on it
