"""Figures for the web UI's metrics page: incidents by status and severity, MTTA and MTTR
(average, p50, p90) over a window, and the same per clinician."""
from healthguard.domain import INCIDENT_STATUSES, SEVERITIES


def incident_figures(cur, *, hours: int) -> dict:
    """Every query here reads an index sized by what it reports, never the whole history: the
    window's rows from incidents_window_figures_idx (created_at, with the figures' columns, so
    the table itself is not read), the active ones from the partial incidents_active_summary_idx
    (db/migrations/0011_capacity.sql)."""
    cur.execute("SELECT now() - make_interval(hours => %(hours)s) AS since, now() AS until",
                {"hours": hours})
    span = cur.fetchone()
    window = {"since": span["since"]}
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
        "window": {"hours": hours, "since": span["since"].isoformat(), "until": span["until"].isoformat()},
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
