"""Background task: resolve the incidents of devices heard again. A silent device that monitors no
patient raises DEVICE_SILENT as its own alarm (alert ingestion's heartbeats.py, migration 0022);
when the device is heard again alert ingestion marks the alert cleared (device_cleared_at), and
this task resolves its incident (lifecycle.resolve_heard_device), by the platform's clock, every
second like the escalation deadlines. A patient's DEVICE_SILENT is left to a clinician, who must
see the patient. Incidents are claimed with SKIP LOCKED: copies of the task never resolve one
twice, and a restart finds the cleared alerts where they were."""
import logging

from healthguard.tasks import PeriodicTask

from . import lifecycle
from .metrics import MTTR

log = logging.getLogger(__name__)

BATCH = 50


def resolve_heard_devices(*, db) -> list[int]:
    """One pass; returns the incidents resolved."""
    resolved = []
    with db.transaction() as cur:
        # unresolved_incidents (0013) is small: the open incidents of no patient are found there.
        cur.execute("""
            SELECT i.incident_id, a.device_cleared_at, s.silent_seconds
            FROM unresolved_incidents u
            JOIN incidents i ON i.incident_id = u.incident_id
            JOIN alerts a ON a.alert_id = i.alert_id
            LEFT JOIN device_silences s ON s.alert_id = a.alert_id
            WHERE u.patient_id IS NULL AND a.device_cleared_at IS NOT NULL AND i.status <> 'RESOLVED'
            ORDER BY i.incident_id
            LIMIT %s
            FOR UPDATE OF i SKIP LOCKED
        """, (BATCH,))
        changes = [lifecycle.resolve_heard_device(cur, incident_id=row["incident_id"],
                                                  heard_at=row["device_cleared_at"],
                                                  silent_seconds=row["silent_seconds"])
                   for row in cur.fetchall()]
    for change in changes:
        if change is not None:
            MTTR.labels(severity=change.incident["severity"]).observe(change.resolution_seconds)
            resolved.append(change.incident["incident_id"])
    return resolved


class HeardDeviceResolver(PeriodicTask):
    name = "resolve-heard-devices"

    def __init__(self, *, db, interval: float):
        super().__init__(interval=interval)
        self.db = db

    def run_once(self) -> list[int]:
        resolved = resolve_heard_devices(db=self.db)
        if resolved:
            log.info("devices heard again: their silence incidents resolved", extra={"incidents": resolved})
        return resolved
