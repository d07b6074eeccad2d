"""Background task: forget sign-in records nobody needs any more.

Failed sign-in attempts matter for the 15-minute throttle windows only; sessions matter until they expire or
are revoked. Both are kept a day longer (for an investigation of that day), then deleted, so the
tables stay small however long the hospital runs.
"""
import logging

from healthguard import clock
from healthguard.tasks import PeriodicTask

log = logging.getLogger(__name__)

RETENTION = "1 day"


def prune_sign_in_records(cur) -> dict:
    now = clock.now()
    cur.execute("DELETE FROM login_attempts WHERE attempted_at < %s - %s::interval", (now, RETENTION))
    attempts = cur.rowcount
    cur.execute("""
        DELETE FROM sessions
        WHERE least(expires_at, coalesce(revoked_at, expires_at)) < %s - %s::interval
    """, (now, RETENTION))
    return {"login_attempts": attempts, "sessions": cur.rowcount}


class PruneSignInRecords(PeriodicTask):
    name = "prune-sign-in-records"

    def __init__(self, *, db, interval: float = 3600.0):
        super().__init__(interval=interval)
        self.db = db

    def run_once(self) -> dict:
        with self.db.transaction() as cur:
            pruned = prune_sign_in_records(cur)
        if any(pruned.values()):
            log.info("pruned old sign-in records", extra=pruned)
        return pruned
