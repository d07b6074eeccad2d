"""Figures for the web UI's metrics page: incidents by status and severity, MTTA and MTTR
(average, p50, p90) over a window, and the same per clinician; their trends per hour or day."""
import datetime as dt
from zoneinfo import ZoneInfo

from healthguard import clock
from healthguard.domain import INCIDENT_STATUSES, SEVERITIES


def incident_figures(cur, *, hours: int) -> dict:
    """Every query here reads an index sized by what it reports, never the whole history: the
    window's rows from incidents_window_figures_idx (created_at, with the figures' columns, so
    the table itself is not read), the active ones from the partial incidents_active_summary_idx
    (db/migrations/0011_capacity.sql)."""
    until = clock.now()
    window = {"since": until - dt.timedelta(hours=hours)}
    # The window's counts, then MTTA and MTTR over all of it (one pass with GROUPING SETS sorted
    # each group's samples as well: slower on a wide window).
    cur.execute("""
        SELECT status, severity, count(*) AS n
        FROM incidents
        WHERE created_at >= %(since)s
        GROUP BY status, severity
    """, window)
    by_status = dict.fromkeys(INCIDENT_STATUSES, 0)
    by_severity = dict.fromkeys(SEVERITIES, 0)
    for row in cur.fetchall():
        by_status[row["status"]] += row["n"]
        by_severity[row["severity"]] += row["n"]
    cur.execute("""
        SELECT
            count(response_seconds) AS mtta_count,
            avg(response_seconds) AS mtta_avg,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY response_seconds) AS mtta_p50,
            percentile_cont(0.9) WITHIN GROUP (ORDER BY response_seconds) AS mtta_p90,
            count(resolution_seconds) AS mttr_count,
            avg(resolution_seconds) AS mttr_avg,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY resolution_seconds) AS mttr_p50,
            percentile_cont(0.9) WITHIN GROUP (ORDER BY resolution_seconds) AS mttr_p90
        FROM incidents
        WHERE created_at >= %(since)s
    """, window)
    timing = cur.fetchone()
    # What is active right now, whenever it was raised: the dashboard's tiles (a list the page
    # loads is capped, these counts are not).
    cur.execute("""
        SELECT status, severity, count(*) AS n
        FROM incidents
        WHERE status <> 'RESOLVED'
        GROUP BY status, severity
    """)
    active_by_status = dict.fromkeys((s for s in INCIDENT_STATUSES if s != "RESOLVED"), 0)
    active_by_severity = dict.fromkeys(SEVERITIES, 0)
    for row in cur.fetchall():
        active_by_status[row["status"]] += row["n"]
        active_by_severity[row["severity"]] += row["n"]
    # Per clinician: the window's incidents, and the active ones raised before it (two index
    # reads; "in the window OR active" as one condition would read the whole table).
    cur.execute("""
        WITH considered AS (
            SELECT assigned_to, status, response_seconds, resolution_seconds
            FROM incidents WHERE created_at >= %(since)s AND assigned_to IS NOT NULL
            UNION ALL
            SELECT assigned_to, status, response_seconds, resolution_seconds
            FROM incidents
            WHERE status <> 'RESOLVED' AND created_at < %(since)s AND assigned_to IS NOT NULL
        )
        SELECT e.employee_id, e.name, e.role,
               count(*) FILTER (WHERE i.status <> 'RESOLVED') AS active,
               count(*) FILTER (WHERE i.status = 'RESOLVED') AS resolved,
               avg(i.response_seconds) AS mtta_avg_seconds,
               avg(i.resolution_seconds) AS mttr_avg_seconds
        FROM considered i JOIN employees e ON e.employee_id = i.assigned_to
        GROUP BY e.employee_id, e.name, e.role
        ORDER BY active DESC, e.employee_id
    """, window)
    clinicians = cur.fetchall()
    return {
        "window": {"hours": hours, "since": window["since"].isoformat(), "until": until.isoformat()},
        "counts": {"by_status": by_status, "by_severity": by_severity, "total": sum(by_status.values())},
        "active_now": sum(active_by_status.values()),
        "unassigned_now": active_by_status["OPEN"],
        "active_by_status": active_by_status,
        "active_by_severity": active_by_severity,
        "mtta_seconds": _summary(timing, "mtta"),
        "mttr_seconds": _summary(timing, "mttr"),
        "clinicians": [{**row, "mtta_avg_seconds": _float(row["mtta_avg_seconds"]),
                        "mttr_avg_seconds": _float(row["mttr_avg_seconds"])} for row in clinicians],
    }


def _float(value):
    return None if value is None else round(float(value), 3)


def _summary(row: dict, prefix: str) -> dict:
    return {"count": row[f"{prefix}_count"], "avg": _float(row[f"{prefix}_avg"]),
            "p50": _float(row[f"{prefix}_p50"]), "p90": _float(row[f"{prefix}_p90"])}


TREND_BUCKETS = {"hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1)}


def bucket_starts(*, since: dt.datetime, until: dt.datetime, bucket: str, tz: ZoneInfo) -> list[dt.datetime]:
    """The start of every hospital-local hour or day from the one holding `since` to `until`."""
    local = since.astimezone(tz)
    starts = []
    if bucket == "hour":
        start = local.replace(minute=0, second=0, microsecond=0).astimezone(dt.UTC)
        while start < until:
            starts.append(start)
            start += TREND_BUCKETS["hour"]
        return starts
    day = local.date()
    while (start := dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(dt.UTC)) < until:
        starts.append(start)
        day += dt.timedelta(days=1)
    return starts


def incident_trends(cur, *, hours: int, bucket: str, tz: ZoneInfo) -> dict:
    """Per hospital-local hour or day of the window: incidents raised, their MTTA and MTTR, and
    alarms received by severity. Both scans are bounded in time (incidents_created_idx,
    alerts_received_idx); empty buckets are answered as zeros."""
    until = clock.now()
    since = until - dt.timedelta(hours=hours)
    starts = bucket_starts(since=since, until=until, bucket=bucket, tz=tz)
    since = starts[0]
    window = {"since": since, "until": until, "bucket": bucket, "tz": tz.key}
    cur.execute("""
        SELECT date_trunc(%(bucket)s, created_at, %(tz)s) AS start, count(*) AS incidents,
               avg(response_seconds) AS mtta, avg(resolution_seconds) AS mttr
        FROM incidents
        WHERE created_at >= %(since)s AND created_at <= %(until)s
        GROUP BY 1
    """, window)
    incidents = {row["start"]: row for row in cur.fetchall()}
    cur.execute("""
        SELECT date_trunc(%(bucket)s, received_at, %(tz)s) AS start, severity, count(*) AS n
        FROM alerts
        WHERE received_at >= %(since)s AND received_at <= %(until)s
        GROUP BY 1, 2
    """, window)
    alarms: dict = {}
    for row in cur.fetchall():
        alarms.setdefault(row["start"], dict.fromkeys(SEVERITIES, 0))[row["severity"]] += row["n"]
    points = []
    for start in starts:
        row = incidents.get(start, {})
        points.append({"start": start.astimezone(tz).isoformat(), "incidents": row.get("incidents", 0),
                       "mtta_avg_seconds": _float(row.get("mtta")),
                       "mttr_avg_seconds": _float(row.get("mttr")),
                       "alarms_by_severity": alarms.get(start, dict.fromkeys(SEVERITIES, 0))})
    return {"window": {"hours": hours, "since": since.astimezone(tz).isoformat(),
                       "until": until.astimezone(tz).isoformat()},
            "bucket": bucket, "timezone": tz.key, "points": points}
