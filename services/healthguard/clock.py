"""The one clock of the platform. Every time the services write or compare comes from `now()` and
reaches SQL as a parameter (`%(now)s`), never from SQL's now() or a column default: escalation
deadlines, acknowledgement times, MTTA/MTTR, session expiry and the rota can then be tested by
moving time instead of sleeping (GoAlert's habit), and a moved clock moves a whole incident.
tests/test_one_clock.py fails on a SQL time function in services/.

In production the clock is the wall clock: HG_TEST_CLOCK_FILE is unset, the first call finds that
out once, and every call after it costs one comparison more than datetime.now().

The test clock is an offset in seconds that the test owns and every process it starts reads:
`TestClockFile` creates a file of exactly 8 bytes, one native double, and maps it into memory;
the test names it in HG_TEST_CLOCK_FILE; each service process maps the same file once, at its
first `now()`, and from then on reads the double from the shared page (no file is opened per
call). Moving the offset in the test moves time for every process at once. Why this is safe
without a lock: the 8 bytes sit at the start of a page-aligned mapping and are read and written
by memoryview as one native double (a single aligned 8-byte load and store on x86-64 and arm64),
so a reader sees the old offset or the new one, never a mix.
"""
import datetime
import mmap
import os
from pathlib import Path

TEST_CLOCK_ENV = "HG_TEST_CLOCK_FILE"
_SIZE = 8  # one native double: the offset in seconds
_UNRESOLVED = object()
# The shared offset this process reads (a memoryview of one double), None for the wall clock,
# _UNRESOLVED until the first call decides which.
_offset = _UNRESOLVED


def now() -> datetime.datetime:
    """The current instant, timezone-aware (UTC)."""
    instant = datetime.datetime.now(datetime.UTC)
    offset = _offset if _offset is not _UNRESOLVED else _resolve()
    if offset is None:
        return instant
    return instant + datetime.timedelta(seconds=offset[0])


def _map(path, *, writable: bool) -> memoryview:
    with open(path, "r+b" if writable else "rb") as handle:
        if os.fstat(handle.fileno()).st_size != _SIZE:
            raise RuntimeError(f"{TEST_CLOCK_ENV} names {path}, which is not a test clock "
                               f"({_SIZE} bytes): see healthguard/clock.py")
        # The mapping outlives the file handle.
        shared = mmap.mmap(handle.fileno(), _SIZE, access=mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ)
    return memoryview(shared).cast("d")


def _resolve():
    global _offset
    path = os.environ.get(TEST_CLOCK_ENV)
    _offset = _map(path, writable=False) if path else None
    return _offset


class TestClockFile:
    """The test clock's shared offset: created by the test (at 0, wall time), read by every
    process whose HG_TEST_CLOCK_FILE names `path`, this one included once `attach()` is called."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, path):
        self.path = Path(path)
        self.path.write_bytes(bytes(_SIZE))
        self._shared = _map(self.path, writable=True)

    @property
    def offset(self) -> float:
        return self._shared[0]

    @offset.setter
    def offset(self, seconds: float) -> None:
        self._shared[0] = float(seconds)

    def attach(self) -> None:
        """This process's now() reads this clock from now on."""
        global _offset
        _offset = self._shared
