"""Flood limits: a device key may report so many alarms a second, a clinician raise so many test
alerts a minute; past it the caller gets 429 with Retry-After, and whatever was accepted before
stays accepted (the limit is checked before anything is written).

The count lives in the database (a counter per caller and window, `rate_limit_windows`), not in
the process: alert ingestion runs several gunicorn workers and instances, and a bucket in each
would let a flooding device through once per worker. One statement per request, a transaction
of its own (so the counter row is not locked for the alert's transaction), counting on one of a
few rows of the window (so concurrent requests of one busy key do not queue on one lock).

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
from healthguard.db import Prepared
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


def limits_from(settings) -> dict[str, FloodLimit]:
    """The limits of alert_ingestion.settings' DEVICE_ALERTS_PER_SECOND and MANUAL_ALERTS_PER_MINUTE."""
    return {
        "device": FloodLimit("device", settings.DEVICE_ALERTS_PER_SECOND, datetime.timedelta(seconds=1)),
        "manual": FloodLimit("manual", settings.MANUAL_ALERTS_PER_MINUTE, datetime.timedelta(minutes=1)),
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
    elapsed = (now - window_start) / limit.per  # of this window, 0 to 1
    key = {"bucket": bucket, "window": window_start, "previous": window_start - limit.per,
           "shard": random.randrange(COUNTER_SHARDS),  # noqa: S311 (spreading locks, not a secret)
           "limit": limit.hits, "elapsed": elapsed}
    # One statement, its own transaction, a commit that does not wait for the disk (a count lost
    # to a crash forgets part of one second): the counter row is locked only while the server
    # runs it. Counted on one of a few rows of the window, their sum the window's total (one row
    # serialised a busy gateway's alarms on its lock); counts of statements running meanwhile
    # are missed, a few alarms over the limit at worst. Past the limit nothing is counted.
    with db.autocommit() as cur:
        COUNT.execute(cur, key)
        row = cur.fetchone()
        if row["mine"] == 1:  # a new window's first count on this row: the one before last is done
            cur.execute("DELETE FROM rate_limit_windows "
                        "WHERE bucket = %(bucket)s AND shard = %(shard)s AND window_start < %(previous)s",
                        key)
    if row["accepted"]:
        return
    ALERTS_RATE_LIMITED.labels(source=limit.source).inc()
    raise TooManyAlerts(limit, _retry_after(limit, now=now, window_start=window_start,
                                            accepted=row["hits"], previous=row["previous"]))


# The window's accepted alerts so far, and the previous window's (read only when this one,
# counting the alert at hand, runs faster than the limit allows, hits + 1 > limit x elapsed: a
# caller within its pace is never asked about it, since the previous window weighs at most
# limit x (1 - elapsed)); whether one more fits; if so, counted.
COUNT = Prepared("flood_limit_count", """
    WITH seen AS (
        SELECT coalesce(sum(hits), 0) AS hits FROM rate_limit_windows
        WHERE bucket = %(bucket)s AND window_start = %(window)s
    ), earlier AS (
        SELECT CASE WHEN seen.hits + 1 > %(limit)s::int * %(elapsed)s::float8 THEN (
                   SELECT coalesce(sum(hits), 0) FROM rate_limit_windows
                   WHERE bucket = %(bucket)s AND window_start = %(previous)s)
               ELSE 0 END AS hits
        FROM seen
    ), verdict AS (
        SELECT seen.hits, earlier.hits AS previous,
               earlier.hits * (1 - %(elapsed)s) + seen.hits + 1 <= %(limit)s AS accepted
        FROM seen, earlier
    ), counted AS (
        INSERT INTO rate_limit_windows (bucket, window_start, shard, hits)
        SELECT %(bucket)s, %(window)s, %(shard)s::int, 1 FROM verdict WHERE accepted
        ON CONFLICT (bucket, window_start, shard) DO UPDATE SET hits = rate_limit_windows.hits + 1
        RETURNING hits
    )
    SELECT verdict.*, (SELECT hits FROM counted) AS mine, set_config('synchronous_commit', 'off', true)
    FROM verdict
""")


def _retry_after(limit: FloodLimit, *, now, window_start, accepted: int, previous: int) -> int:
    """Whole seconds until one more alert fits: once enough of the previous window has slid out,
    or, when this window is full by itself, at its end."""
    room = limit.hits - accepted - 1
    if room < 0 or previous <= 0:
        until = window_start + limit.per
    else:
        until = window_start + limit.per * (1 - room / previous)
    return max(1, math.ceil((until - now).total_seconds()))
