"""Background task: alarm the devices that missed two heartbeats, end the alarm of those heard
again (heartbeats.py). Every second: a deadline is seconds late at most, by the platform's clock."""
import logging

from healthguard.tasks import PeriodicTask

from .heartbeats import check_silent_devices

log = logging.getLogger(__name__)


class WatchDeviceHeartbeats(PeriodicTask):
    name = "watch-device-heartbeats"

    def __init__(self, *, db, interval: float = 1.0):
        super().__init__(interval=interval)
        self.db = db

    def run_once(self) -> dict:
        with self.db.transaction() as cur:
            changed = check_silent_devices(cur)
        if changed["alarmed"]:
            # The alerts' outbox rows: record_alert woke the relay after this commit.
            log.warning("devices silent: DEVICE_SILENT raised", extra={"devices": changed["alarmed"]})
        if changed["heard"]:
            log.info("silent devices heard again", extra={"devices": changed["heard"]})
        return changed
