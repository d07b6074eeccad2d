"""Periodic background work, run by the service's worker process (`python -m healthguard.worker`)."""
import logging
import threading

log = logging.getLogger(__name__)


class PeriodicTask:
    """Calls `run_once()` every `interval` seconds in a daemon thread until stopped. A failure
    (the database away for a while) is logged and tried again at the next tick, so the task
    outlives any outage."""

    name = "periodic-task"

    def __init__(self, *, interval: float):
        self.interval = interval
        self._stopping = threading.Event()
        self._thread = None

    def run_once(self):
        raise NotImplementedError

    def start(self):
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.run_once()
            except Exception:
                log.exception("periodic task failed; trying again next time", extra={"task": self.name})
