"""Read latency of the figures and the active list with a large incident history (not run by the
tests): seeds a scratch database, then times the routes in-process (no HTTP in between).

    python bench/incident_reads.py --database-url postgresql://postgres@127.0.0.1:5432/hg_reads \
        [--incidents 100000] [--days 100] [--active 300] [--requests 300]

The database is created and migrated if missing, and seeded once with `--incidents` resolved
incidents spread evenly over the last `--days` days plus `--active` open ones (an existing seed of
the same size is reused). Prints p50/p99 of GET /api/v1/incidents/metrics (default 24 h window
and the 90-day one), GET /api/v1/incidents?status=<active> (limit 50), and one /metrics scrape.
"""
import argparse
import time
import uuid

import psycopg2

from healthguard.migrate import create_database, migrate

ACTIVE = "OPEN,ASSIGNED,ACKNOWLEDGED,REASSIGNED,IN_PROGRESS"


def seed(url: str, incidents: int, days: int, active: int) -> None:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM incidents")
        if cur.fetchone()[0] >= incidents:
            return
        cur.execute("""
            WITH raised AS (
                INSERT INTO alerts (patient_id, alert_type, severity, category, room, occurred_at,
                                    received_at)
                SELECT p.patient_id, t.alert_type, t.severity, t.category, p.room, at, at
                FROM generate_series(1, %(n)s) g,
                     LATERAL (SELECT now() - (%(days)s * interval '1 day') * g / %(n)s AS at) w,
                     LATERAL (SELECT * FROM patients ORDER BY patient_id OFFSET g %% 8 LIMIT 1) p,
                     LATERAL (SELECT * FROM alert_types ORDER BY alert_type OFFSET g %% 33 LIMIT 1) t
                RETURNING alert_id, patient_id, alert_type, severity, category, room, occurred_at
            )
            INSERT INTO incidents (alert_id, patient_id, alert_type, severity, category, room, title,
                                   status, assigned_to, created_at, assigned_at, acknowledged_at,
                                   resolved_at, response_seconds, resolution_seconds, last_alert_at)
            SELECT alert_id, patient_id, alert_type, severity, category, room, 'bench history',
                   'RESOLVED', e.employee_id, occurred_at, occurred_at,
                   occurred_at + interval '40 seconds', occurred_at + interval '20 minutes',
                   40 + alert_id %% 60, 1200 + alert_id %% 600, occurred_at
            FROM raised, LATERAL (SELECT employee_id FROM employees WHERE NOT is_supervisor
                                  ORDER BY employee_id OFFSET raised.alert_id %% 10 LIMIT 1) e
        """, {"n": incidents, "days": days})
        cur.execute("""
            WITH raised AS (
                INSERT INTO alerts (patient_id, alert_type, severity, category, room, occurred_at)
                SELECT 'P00' || (1 + g %% 8), t.alert_type, t.severity, t.category, '1' || g, now()
                FROM generate_series(1, %(n)s) g,
                     LATERAL (SELECT * FROM alert_types ORDER BY alert_type OFFSET g %% 33 LIMIT 1) t
                RETURNING alert_id, patient_id, alert_type, severity, category, room, occurred_at
            )
            INSERT INTO incidents (alert_id, patient_id, alert_type, severity, category, room, title,
                                   status, created_at, last_alert_at)
            SELECT alert_id, patient_id, alert_type, severity, category, room, 'bench active',
                   (ARRAY['OPEN', 'ASSIGNED', 'ACKNOWLEDGED', 'IN_PROGRESS'])[1 + alert_id %% 4],
                   occurred_at, occurred_at FROM raised
        """, {"n": active})
        cur.execute("UPDATE incidents SET assigned_to = 'S01' WHERE status <> 'RESOLVED' "
                    "AND status <> 'OPEN' AND assigned_to IS NULL")
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE incidents")
    conn.close()


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def timed(client, path, headers, requests_: int) -> str:
    for _ in range(10):  # warm the pool and the caches
        assert client.get(path, headers=headers).status_code == 200, path
    samples = []
    for _ in range(requests_):
        started = time.perf_counter()
        answer = client.get(path, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.get_data(as_text=True)
    return f"p50 {percentile(samples, 50):6.1f} ms  p99 {percentile(samples, 99):6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--active", type=int, default=300)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    create_database(args.database_url)
    migrate(args.database_url)
    seed(args.database_url, args.incidents, args.days, args.active)

    from incident_management.app import create_app
    token = uuid.uuid4().hex
    app = create_app({"DATABASE_URL": args.database_url, "RABBITMQ_URL": "amqp://127.0.0.1:9/%2F",
                      "SERVICE_TOKEN": token, "ONCALL_URL": "http://127.0.0.1:9"})
    client, headers = app.test_client(), {"Authorization": f"Bearer {token}"}
    with psycopg2.connect(args.database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), count(*) FILTER (WHERE status <> 'RESOLVED') FROM incidents")
        total, active = cur.fetchone()
    print(f"{total} incidents ({active} active)")
    for label, path in [("metrics, 24 h", "/api/v1/incidents/metrics"),
                        ("metrics, 90 days", "/api/v1/incidents/metrics?hours=2160"),
                        ("active list, 50", f"/api/v1/incidents?status={ACTIVE}&limit=50"),
                        ("/metrics scrape", "/metrics")]:
        print(f"{label:18} {timed(client, path, headers, args.requests)}")


if __name__ == "__main__":
    main()
