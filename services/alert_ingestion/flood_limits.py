"""Flood limits: a device key may report so many alarms a second, a clinician raise so many test
alerts a minute; past it the caller gets 429 with Retry-After, and whatever was accepted before
stays accepted (the limit is checked before anything is written).

The count lives in the database (a counter per caller and window, `rate_limit_windows`), not in
the process: alert ingestion runs several gunicorn workers and instances, and a bucket in each
would let a flooding device through once per worker. One upsert per request, on its own short
transaction (so the counter row is not locked for the alert's transaction), on one of a few rows
of the window (so concurrent requests of one busy key do not queue on one lock).

The window slides: a request is refused when this window's accepted alerts, plus the previous
window's weighted by the share of it still within one window of now, would pass the limit (a
sliding-window counter). A fixed window lets twice the limit through in a moment, a window's worth
just before a boundary and another just after it; here a burst before the boundary is paid for
after it. Only accepted alerts count: a device that keeps flooding still gets its limit through,
and only the alarms above it are refused.
"""
import datetime
import hashlib
import math
import random
from dataclasses import dataclass

from healthguard import clock
from healthguard.config import ConfigError
from healthguard.errors import ApiError

from .metrics import ALERTS_RATE_LIMITED

DEFAULT_DEVICE_ALERTS_PER_SECOND = 50
DEFAULT_MANUAL_ALERTS_PER_MINUTE = 10
COUNTER_SHARDS = 32  # rows a caller's window is counted on (see take)


@dataclass(frozen=True)
class FloodLimit:
    source: str  # the metric's label: device, manual
    hits: int
    per: datetime.timedelta


class TooManyAlerts(ApiError):
    def __init__(self, limit: FloodLimit, retry_after: int):
        per = "second" if limit.per == datetime.timedelta(seconds=1) else f"{limit.per.total_seconds():g} s"
        super().__init__(429, f"more than {limit.hits} {limit.source} alerts per {per}; "
                              "alerts accepted so far are kept", retry_after_seconds=retry_after)


def limits_from(config) -> dict[str, FloodLimit]:
    def positive(name: str, default: int) -> int:
        raw = config.get(name)
        try:
            value = int(raw) if raw not in (None, "") else default
        except ValueError:
            value = 0
        if value < 1:
            raise ConfigError(f"setting {name} must be a positive integer, got {raw!r}")
        return value
    return {
        "device": FloodLimit("device", positive("DEVICE_ALERTS_PER_SECOND", DEFAULT_DEVICE_ALERTS_PER_SECOND),
                             datetime.timedelta(seconds=1)),
        "manual": FloodLimit("manual", positive("MANUAL_ALERTS_PER_MINUTE", DEFAULT_MANUAL_ALERTS_PER_MINUTE),
                             datetime.timedelta(minutes=1)),
    }


def device_bucket(api_key: str) -> str:
    """A device key's counter, named by a digest: the key is a secret and stays out of the table."""
    return "device:" + hashlib.sha256(api_key.encode()).hexdigest()[:32]


def clinician_bucket(employee_id: str) -> str:
    return f"manual:{employee_id}"


def take(db, *, bucket: str, limit: FloodLimit) -> None:
    """Count one alert of `bucket`; raise TooManyAlerts, counting nothing, past the limit."""
    now = clock.now()
    epoch = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    window_start = epoch + limit.per * math.floor((now - epoch) / limit.per)
    shard = random.randrange(COUNTER_SHARDS)  # noqa: S311 (spreading locks, not a secret)
    key = {"bucket": bucket, "window": window_start, "previous": window_start - limit.per,
           "shard": shard}
    with db.transaction() as cur:
        # A count locks its row until the commit. One row per key and window serialised a busy
        # gateway's alarms on that lock (a third of POST /alerts under load, by the profile), so
        # each count takes one of a few rows and the window's total is their sum (counts other
        # requests have not committed yet are missed: a few alarms over the limit at worst).
        # A count lost to a crash forgets part of one second: this commit does not wait for
        # the disk, so the lock is let go at once.
        cur.execute("""
            SET LOCAL synchronous_commit TO OFF;
            WITH counted AS (
                INSERT INTO rate_limit_windows (bucket, window_start, shard, hits)
                VALUES (%(bucket)s, %(window)s, %(shard)s, 1)
                ON CONFLICT (bucket, window_start, shard)
                    DO UPDATE SET hits = rate_limit_windows.hits + 1
                RETURNING hits
            )
            SELECT (SELECT hits FROM counted) AS mine,
                   (SELECT hits FROM counted) + coalesce((
                       SELECT sum(hits) FROM rate_limit_windows
                       WHERE bucket = %(bucket)s AND window_start = %(window)s
                         AND shard <> %(shard)s), 0) AS hits
        """, key)
        row = cur.fetchone()
        hits = row["hits"]
        if row["mine"] == 1:  # a new window's first count on this row: the one before last is done
            cur.execute("DELETE FROM rate_limit_windows "
                        "WHERE bucket = %(bucket)s AND shard = %(shard)s AND window_start < %(previous)s",
                        key)
        elapsed = (now - window_start) / limit.per  # of this window, 0 to 1
        # The previous window weighs at most limit x (1 - elapsed): a caller counting no faster
        # than the limit allows (hits <= limit x elapsed) cannot pass it, and is not asked about it.
        previous = 0
        if hits > limit.hits * elapsed:
            cur.execute("SELECT coalesce(sum(hits), 0) AS n FROM rate_limit_windows "
                        "WHERE bucket = %(bucket)s AND window_start = %(previous)s", key)
            previous = cur.fetchone()["n"]
        if previous * (1 - elapsed) + hits <= limit.hits:
            return
        # Refused: not counted, so what is refused never crowds out what the limit lets through.
        cur.execute("UPDATE rate_limit_windows SET hits = hits - 1 "
                    "WHERE bucket = %(bucket)s AND window_start = %(window)s AND shard = %(shard)s", key)
    ALERTS_RATE_LIMITED.labels(source=limit.source).inc()
    raise TooManyAlerts(limit, _retry_after(limit, now=now, window_start=window_start,
                                            accepted=hits - 1, previous=previous))


def _retry_after(limit: FloodLimit, *, now, window_start, accepted: int, previous: int) -> int:
    """Whole seconds until one more alert fits: once enough of the previous window has slid out,
    or, when this window is full by itself, at its end."""
    room = limit.hits - accepted - 1
    if room < 0 or previous <= 0:
        until = window_start + limit.per
    else:
        until = window_start + limit.per * (1 - room / previous)
    return max(1, math.ceil((until - now).total_seconds()))
