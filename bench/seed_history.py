"""A year of a hospital's incident history, written straight into a database with generate_series
(fast: a million incidents in minutes, not the days the API would take):

    .venv/bin/python bench/seed_history.py DATABASE_URL --incidents 1000000 [--active 300]

Each incident comes from its own alert (a random admitted patient and alert type, with the type's
severity and category), created at an even pace over the past year, oldest first, and was
handled the way clinicians handle one: assigned to one of the clinicians 5-30 s after it was
created, acknowledged within 5 minutes, started, resolved within two hours (MTTA and MTTR
stored), with its assignment row and its history rows (CREATED, ASSIGNED, ACKNOWLEDGED, STARTED,
RESOLVED); one in ten was handed over to a second clinician on the way (a REASSIGNED row and a
second assignment). `--active` more are still being worked on (IN_PROGRESS, created in the last
six hours, no deadline pending). Never run against a database holding real incidents: it is for
the benchmarks' own databases.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

from bench.common import connect  # noqa: E402

# One chunk: the plan of `count` incidents numbered from the current maximum ids on, then the
# alerts, incidents, assignments and history rows it describes. Foreign-key triggers are off for
# the chunk (the plan only names rows that exist), and with them the ones that keep
# unresolved_incidents, which the chunk fills itself; the commit does not wait for the disk.
PLAN = """
CREATE TEMP TABLE seed_plan ON COMMIT DROP AS
WITH staff AS (
    SELECT array_agg(employee_id ORDER BY employee_id) AS ids FROM employees
    WHERE role <> 'BIOMEDICAL_ENGINEER'
), beds AS (
    SELECT array_agg(patient_id ORDER BY patient_id) AS ids, array_agg(room ORDER BY patient_id) AS rooms
    FROM patients WHERE status = 'ADMITTED'
), kinds AS (
    SELECT array_agg(alert_type ORDER BY alert_type) AS ids,
           array_agg(severity ORDER BY alert_type) AS severities,
           array_agg(category ORDER BY alert_type) AS categories,
           array_agg(name ORDER BY alert_type) AS names
    FROM alert_types
), base AS (
    SELECT (SELECT coalesce(max(alert_id), 0) FROM alerts) AS alert_id,
           (SELECT coalesce(max(incident_id), 0) FROM incidents) AS incident_id
), drawn AS (
    SELECT n,
           1 + floor(random() * cardinality(beds.ids))::int AS bed,
           1 + floor(random() * cardinality(kinds.ids))::int AS kind,
           staff.ids[1 + floor(random() * cardinality(staff.ids))::int] AS assignee,
           staff.ids[1 + floor(random() * cardinality(staff.ids))::int] AS second,
           random() < 0.1 AS handed_over,
           CASE WHEN %(active)s THEN now() - interval '6 hours' * random()
                ELSE now() - interval '365 days' + interval '364 days' * ((n - 0.5) / %(total)s)
           END AS created_at,
           make_interval(secs => 5 + 25 * random()) AS to_assign,
           make_interval(secs => 10 + 290 * random()) AS to_ack,
           make_interval(secs => 30 + 570 * random()) AS to_start,
           make_interval(secs => 300 + 6600 * random()) AS to_resolve
    FROM generate_series(%(first)s, %(last)s) AS n, staff, beds, kinds
)
SELECT base.alert_id + n - %(first)s + 1 AS alert_id,
       base.incident_id + n - %(first)s + 1 AS incident_id,
       beds.ids[bed] AS patient_id, beds.rooms[bed] AS room, kinds.ids[kind] AS alert_type,
       kinds.severities[kind] AS severity, kinds.categories[kind] AS category,
       kinds.names[kind] || ' - room ' || beds.rooms[bed] AS title,
       assignee, CASE WHEN second = assignee THEN NULL ELSE second END AS second, handed_over,
       created_at, created_at + to_assign AS assigned_at, created_at + to_assign + to_ack AS acknowledged_at,
       created_at + to_assign + to_ack + to_start AS started_at,
       created_at + to_assign + to_ack + to_start + to_resolve AS resolved_at
FROM drawn, beds, kinds, base;
"""

WRITE = """
SET LOCAL session_replication_role = replica;
SET LOCAL synchronous_commit = off;
INSERT INTO alerts (alert_id, patient_id, alert_type, severity, category, room, occurred_at, received_at,
                    source)
OVERRIDING SYSTEM VALUE
SELECT alert_id, patient_id, alert_type, severity, category, room,
       created_at - interval '2 seconds', created_at - interval '1 second', 'DEVICE'
FROM seed_plan;

INSERT INTO incidents (incident_id, alert_id, patient_id, alert_type, severity, category, room, title, status,
                       assigned_to, created_at, assigned_at, acknowledged_at, started_at, resolved_at,
                       response_seconds, resolution_seconds, resolution_notes, updated_at, last_alert_at)
OVERRIDING SYSTEM VALUE
SELECT incident_id, alert_id, patient_id, alert_type, severity, category, room, title,
       CASE WHEN %(active)s THEN 'IN_PROGRESS' ELSE 'RESOLVED' END,
       CASE WHEN handed_over AND second IS NOT NULL THEN second ELSE assignee END,
       created_at, assigned_at, acknowledged_at, started_at,
       CASE WHEN %(active)s THEN NULL ELSE resolved_at END,
       extract(epoch FROM acknowledged_at - created_at),
       CASE WHEN %(active)s THEN NULL ELSE extract(epoch FROM resolved_at - created_at) END,
       CASE WHEN %(active)s THEN NULL ELSE 'Handled at the bedside.' END,
       CASE WHEN %(active)s THEN started_at ELSE resolved_at END, created_at
FROM seed_plan;

-- What the triggers off for the chunk would have kept (db/migrations/0013_unresolved_incidents.sql).
INSERT INTO unresolved_incidents (incident_id, patient_id, alert_type, last_alert_at, assigned_to)
SELECT incident_id, patient_id, alert_type, created_at,
       CASE WHEN handed_over AND second IS NOT NULL THEN second ELSE assignee END
FROM seed_plan WHERE %(active)s;

INSERT INTO incident_assignments (incident_id, employee_id, assigned_by, reason, assigned_at, ended_at)
SELECT incident_id, assignee, NULL, 'AUTO', assigned_at,
       CASE WHEN handed_over AND second IS NOT NULL THEN acknowledged_at + interval '1 minute'
            WHEN %(active)s THEN NULL ELSE resolved_at END
FROM seed_plan
UNION ALL
SELECT incident_id, second, second, 'CLAIM', acknowledged_at + interval '1 minute',
       CASE WHEN %(active)s THEN NULL ELSE resolved_at END
FROM seed_plan WHERE handed_over AND second IS NOT NULL;

INSERT INTO incident_history (incident_id, actor_id, action, previous_status, new_status, note, created_at)
SELECT p.incident_id, step.actor_id, step.action, step.previous_status, step.new_status, step.note, step.at
FROM seed_plan p
CROSS JOIN LATERAL (VALUES
    (NULL, 'CREATED', NULL, 'OPEN', NULL, p.created_at),
    (NULL, 'ASSIGNED', 'OPEN', 'ASSIGNED', NULL, p.assigned_at),
    (p.assignee, 'ACKNOWLEDGED', 'ASSIGNED', 'ACKNOWLEDGED', NULL, p.acknowledged_at),
    (p.second, 'CLAIMED', 'ACKNOWLEDGED', 'ACKNOWLEDGED', 'Taking over',
     p.acknowledged_at + interval '1 minute'),
    (coalesce(p.second, p.assignee), 'STARTED', 'ACKNOWLEDGED', 'IN_PROGRESS', NULL, p.started_at),
    (coalesce(p.second, p.assignee), 'RESOLVED', 'IN_PROGRESS', 'RESOLVED', 'Handled at the bedside.',
     p.resolved_at)
) AS step(actor_id, action, previous_status, new_status, note, at)
WHERE (step.action <> 'CLAIMED' OR (p.handed_over AND p.second IS NOT NULL))
  AND (step.action <> 'RESOLVED' OR NOT %(active)s);

SELECT setval(pg_get_serial_sequence('alerts', 'alert_id'), (SELECT max(alert_id) FROM alerts));
SELECT setval(pg_get_serial_sequence('incidents', 'incident_id'), (SELECT max(incident_id) FROM incidents));
"""


def seed_history(database_url: str, incidents: int, *, active: int = 0, chunk: int = 100_000,
                 progress=None) -> float:
    """Write `incidents` resolved incidents of history (and `active` IN_PROGRESS ones) as the
    module describes; returns the seconds it took. Nothing may post alerts or create incidents
    meanwhile (the ids are taken from the current maximum on)."""
    started = time.monotonic()
    conn = connect(database_url)
    try:
        for is_active, total in ((False, incidents), (True, active)):
            for first in range(1, total + 1, chunk):
                last = min(total, first + chunk - 1)
                params = {"first": first, "last": last, "total": total, "active": is_active}
                with conn, conn.cursor() as cur:
                    cur.execute(PLAN, params)
                    cur.execute(WRITE, params)
                if progress:
                    progress(last, total, time.monotonic() - started)
        conn.autocommit = True
        with conn.cursor() as cur:
            # A year-old database has been vacuumed and analysed many times over: the planner sees
            # the history it will query, and autovacuum is not left to catch up with a year's
            # rows during the measurement that follows.
            for table in ("alerts", "incidents", "unresolved_incidents", "incident_assignments",
                          "incident_history", "incident_alerts", "notifications"):
                cur.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        conn.close()
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database_url")
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--active", type=int, default=0)
    args = parser.parse_args()
    took = seed_history(args.database_url, args.incidents, active=args.active,
                        progress=lambda n, total, s: print(f"{n}/{total} incidents in {s:.0f} s", flush=True))
    print(f"seeded {args.incidents} resolved and {args.active} active incidents in {took:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
