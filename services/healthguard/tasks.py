"""Periodic background work, run by the service's worker process (`python -m healthguard.worker`)."""
import logging

from .threads import BackgroundThread

log = logging.getLogger(__name__)


class PeriodicTask(BackgroundThread):
    """Calls `run_once()` every `interval` seconds in a daemon thread until stopped. A failure
    (the database away for a while) is logged and tried again at the next tick, so the task
    outlives any outage."""

    name = "periodic-task"

    def __init__(self, *, interval: float):
        super().__init__()
        self.interval = interval

    def run_once(self):
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.run_once()
            except Exception:
                log.exception("periodic task failed; trying again next time", extra={"task": self.name})
