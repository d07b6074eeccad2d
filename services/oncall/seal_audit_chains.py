"""Background task: seal the audit chains (healthguard.audit), keep the PHI access log's monthly
partitions made ahead, and write the chains' heads out every CHECKPOINT_SECONDS."""
import datetime as dt
import logging
import time

from healthguard import audit, clock
from healthguard.tasks import PeriodicTask

log = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 300.0


class SealAuditChains(PeriodicTask):
    name = "seal-audit-chains"

    def __init__(self, *, db, interval: float = 2.0, checkpoint_seconds: float = CHECKPOINT_SECONDS):
        super().__init__(interval=interval)
        self.db = db
        self.checkpoint_seconds = checkpoint_seconds
        self._last_checkpoint = None
        self._partitions_for = None

    def run_once(self) -> dict:
        self._make_partitions()
        with self.db.transaction() as cur:
            sealed = audit.seal(cur)
        since = None if self._last_checkpoint is None else time.monotonic() - self._last_checkpoint
        if since is None or since >= self.checkpoint_seconds:
            with self.db.transaction() as cur:
                audit.checkpoint(cur)
            self._last_checkpoint = time.monotonic()
        return sealed

    def _make_partitions(self) -> None:
        """This month's and the next two months' partitions, once a day."""
        today = clock.now().date()
        if self._partitions_for == today:
            return
        first = today.replace(day=1)
        with self.db.transaction() as cur:
            for months in range(3):
                month = (first + dt.timedelta(days=32 * months)).replace(day=1)
                cur.execute("SELECT phi_access_log_ensure_partition(%s) AS made", (month,))
        self._partitions_for = today
