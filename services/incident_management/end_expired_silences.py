"""Ends silences whose end time has come, by the platform's clock (deadlines in the database,
silences.ends_at): every alarm a silence held that is still OPEN is released and the retrier
woken at commit (silences._end), so it is paged at once. Runs in the worker process of every
incident-management instance; silences are claimed with SKIP LOCKED, so copies never end one
twice, and a restarted task finds every deadline where it was left."""
import logging

from healthguard import clock
from healthguard.tasks import PeriodicTask

from . import silences

log = logging.getLogger(__name__)


def end_expired_silences(*, db) -> int:
    with db.transaction() as cur:
        ended = silences.end_expired(cur, at=clock.now())
    return len(ended)


class SilenceExpirer(PeriodicTask):
    name = "end-expired-silences"

    def __init__(self, *, db, interval: float):
        super().__init__(interval=interval)
        self.db = db

    def run_once(self) -> int:
        ended = end_expired_silences(db=self.db)
        if ended:
            log.info("silences ended at their end time", extra={"silences": ended})
        return ended
