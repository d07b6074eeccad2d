"""Flood limits: a device key may report so many alarms a second, a clinician raise so many test
alerts a minute; past it the caller gets 429 with Retry-After, and whatever was accepted before
stays accepted (the limit is checked before anything is written).

The count lives in the database (a fixed-window counter per caller, `rate_limit_windows`), not in
the process: alert ingestion runs several gunicorn workers and instances, and a bucket in each
would let a flooding device through once per worker. One upsert per request, on its own short
transaction (so the counter row is not locked for the alert's transaction); a fixed window may let
up to twice the limit through across a window boundary, which is acceptable for a flood guard and
costs one row per caller and window instead of one per request.
"""
import datetime
import hashlib
import math
from dataclasses import dataclass

from healthguard import clock
from healthguard.config import ConfigError
from healthguard.errors import ApiError

from .metrics import ALERTS_RATE_LIMITED

DEFAULT_DEVICE_ALERTS_PER_SECOND = 50
DEFAULT_MANUAL_ALERTS_PER_MINUTE = 10


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
    """Count one alert of `bucket` in the current window; raise TooManyAlerts past the limit."""
    now = clock.now()
    epoch = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    window_start = epoch + limit.per * math.floor((now - epoch) / limit.per)
    with db.transaction() as cur:
        cur.execute("""
            INSERT INTO rate_limit_windows (bucket, window_start, hits) VALUES (%s, %s, 1)
            ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limit_windows.hits + 1
            RETURNING hits
        """, (bucket, window_start))
        hits = cur.fetchone()["hits"]
        if hits == 1:  # the first of a new window: the caller's older windows are done with
            cur.execute("DELETE FROM rate_limit_windows WHERE bucket = %s AND window_start < %s",
                        (bucket, window_start))
    if hits > limit.hits:
        ALERTS_RATE_LIMITED.labels(source=limit.source).inc()
        raise TooManyAlerts(limit, max(1, math.ceil((window_start + limit.per - now).total_seconds())))
