"""The one background-thread shape every task of a worker shares: periodic tasks, the outbox
relay and broker subscriptions each run one daemon thread that starts, reports whether it is
alive (the worker exits when one dies, so it is restarted) and stops when asked."""
import threading


class BackgroundThread:
    """Runs `_run()` in a daemon thread until `stop()`. Subclasses write `_run` (it returns once
    `self._stopping` is set) and, when the thread waits on something other than that event,
    `_interrupt()` to wake it."""

    name = "background"

    def __init__(self):
        self._stopping = threading.Event()
        self._thread = None

    def _run(self) -> None:
        raise NotImplementedError

    def _before_start(self) -> None:
        """Runs in the caller's thread before the thread starts."""

    def _interrupt(self) -> None:
        """Wakes the thread so it sees `_stopping`; called by stop()."""

    def _after_stop(self) -> None:
        """Releases what _before_start acquired, after the thread ended."""

    def start(self):
        self._stopping.clear()
        self._before_start()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._interrupt()
        if self._thread is not None:
            self._thread.join(timeout)
        self._after_stop()
