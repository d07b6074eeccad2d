"""The one clock of the platform: code that compares against "now" asks `clock.now()` and passes
the instant to its SQL (`%(now)s`, never SQL's own now()), so escalation deadlines, session
expiry and the rota can be tested by moving time instead of sleeping (GoAlert's habit).

In production the clock is the wall clock. The tests set HG_TEST_CLOCK_FILE to a file holding
an offset in seconds; every process of the suite (the test and the gunicorn services it starts)
reads it on each call, so moving the file moves time for all of them at once.
"""
import datetime
import os

TEST_CLOCK_ENV = "HG_TEST_CLOCK_FILE"


def _offset_seconds() -> float:
    path = os.environ.get(TEST_CLOCK_ENV)
    if not path:
        return 0.0
    try:
        with open(path, encoding="ascii") as handle:
            return float(handle.read().strip() or 0)
    except (OSError, ValueError):
        return 0.0


def now() -> datetime.datetime:
    """The current instant, timezone-aware (UTC)."""
    instant = datetime.datetime.now(datetime.UTC)
    offset = _offset_seconds()
    return instant + datetime.timedelta(seconds=offset) if offset else instant


def write_test_offset(path, seconds: float) -> None:
    """Move the test clock of every process reading `path` to wall time plus `seconds`. Written
    to a temp file and renamed over, so a reader never sees a half-written number."""
    temp = f"{path}.{os.getpid()}.tmp"
    with open(temp, "w", encoding="ascii") as handle:
        handle.write(repr(float(seconds)))
    os.replace(temp, path)
