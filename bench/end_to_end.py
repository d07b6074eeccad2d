"""End to end: alarms in, assigned incidents with their stored notification out, per second.
Not a test: it starts its own services, measures, prints, and writes JSON under bench/results/.

    .venv/bin/python bench/end_to_end.py [--rate 500] [--seconds 60] [--via http|database]

On the machine's PostgreSQL and RabbitMQ (ADMIN_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/postgres; rabbitmqctl) it creates its own database and
vhost, migrates with the demo staff, adds `--patients` admitted patients (so alarms are mostly
of different patients and few are correlated), starts on-call, alert ingestion, incident
management and notification (web processes and workers, as `make up` runs them), signs every
seeded clinician in, and offers `--rate` alarms a second for `--seconds`:

- `--via http` (default): POST /api/v1/alerts from `--concurrency` clients, paced; what
  ingestion does not accept in time is counted as refused, and the offered rate is what the
  clients managed;
- `--via database`: the alerts and their outbox rows are written straight into the database,
  as ingestion's transaction does, every 20 ms: the pipeline behind ingestion alone.

An alarm is done when the incident it opened or joined was assigned and the assignee's
INCIDENT_ASSIGNED notification is stored (nobody acknowledges, so CRITICAL incidents escalate
after 60 s, as they would in a hospital where nobody answers: that load is part of the run).
It reports the rate of done alarms over the run (first
alarm received to last notification stored), completions per second over time, the alarm to
stored notification latency, and what was lost (accepted, never done within `--wait`) or
duplicated (an alarm in two incidents, an incident assigned automatically twice, a notification
stored twice). Everything it created is dropped at the end.
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import random
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "services"), str(REPO / "bench")]

import psycopg2  # noqa: E402
import psycopg2.extras  # noqa: E402
import requests  # noqa: E402

from bench.common import DEVICE_KEY, Suite, percentile, pgbench_reference, sign_everyone_in  # noqa: E402
from tests.support import wait_for  # noqa: E402


def add_patients(url: str, count: int) -> None:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("""
            INSERT INTO patients (patient_id, name, room, ward)
            SELECT 'B' || lpad(n::text, 5, '0'), 'Bench patient ' || n, 'B-' || n,
                   (ARRAY['ICU', 'CARDIOLOGY', 'NEUROLOGY', 'EMERGENCY'])[1 + n %% 4]
            FROM generate_series(1, %s) n""", (count,))
    conn.close()


def alarms(url: str, rng: random.Random):
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT patient_id FROM patients WHERE status = 'ADMITTED'")
        patients = [row[0] for row in cur.fetchall()]
        cur.execute("SELECT alert_type FROM alert_types")
        types = [row[0] for row in cur.fetchall()]
    conn.close()
    while True:
        yield rng.choice(patients), rng.choice(types)


class HttpLoad:
    """Paced POSTs from a pool of keep-alive clients."""

    def __init__(self, ingestion_url: str, concurrency: int):
        self.url, self.concurrency = ingestion_url + "/api/v1/alerts", concurrency
        self.local = threading.local()
        self.refused = []

    def post(self, alarm) -> int | None:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        patient_id, alert_type = alarm
        try:
            answer = session.post(self.url, headers={"X-API-Key": DEVICE_KEY}, timeout=30,
                                  json={"patient_id": patient_id, "alert_type": alert_type})
        except requests.RequestException as exc:
            self.refused.append(repr(exc)[:100])
            return None
        if answer.status_code != 201:
            self.refused.append(answer.status_code)
            return None
        return answer.json()["alert_id"]

    def offer(self, plan, rate: float) -> list[int]:
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(self.concurrency) as pool:
            futures = []
            for n, alarm in enumerate(plan):
                time.sleep(max(0.0, started + n / rate - time.perf_counter()))
                futures.append(pool.submit(self.post, alarm))
            return [a for a in (f.result() for f in futures) if a is not None]


class DatabaseLoad:
    """What ingestion's transaction writes (the alert and its outbox row), every 20 ms."""

    def __init__(self, url: str):
        self.url = url
        self.refused = []

    def offer(self, plan, rate: float) -> list[int]:
        conn = psycopg2.connect(self.url)
        accepted, tick = [], 0.02
        per_tick = rate * tick
        started, owed = time.perf_counter(), 0.0
        plan = list(plan)
        position = 0
        try:
            while position < len(plan):
                owed += per_tick
                count = int(owed)
                owed -= count
                chunk = plan[position:position + count]
                position += count
                if chunk:
                    with conn, conn.cursor() as cur:
                        cur.execute("""
                            WITH new AS (
                                INSERT INTO alerts (patient_id, alert_type, severity, category, room,
                                                    occurred_at, device_id)
                                SELECT p.patient_id, t.alert_type, t.severity, t.category, p.room,
                                       now(), 'BENCH'
                                FROM unnest(%s::text[], %s::text[])
                                     WITH ORDINALITY AS x(patient_id, alert_type, n)
                                JOIN patients p ON p.patient_id = x.patient_id
                                JOIN alert_types t ON t.alert_type = x.alert_type
                                ORDER BY x.n
                                RETURNING alert_id, severity)
                            INSERT INTO outbox (queue, message_id, payload)
                            SELECT 'alerts.' || lower(severity), 'alert-' || alert_id,
                                   jsonb_build_object('alert_id', alert_id)
                            FROM new RETURNING (payload->>'alert_id')::bigint""",
                                    ([p for p, _ in chunk], [t for _, t in chunk]))
                        accepted += [row[0] for row in cur.fetchall()]
                        cur.execute("NOTIFY outbox")
                time.sleep(max(0.0, started + (position / rate) - time.perf_counter()))
        finally:
            conn.close()
        return accepted


DONE = """
    WITH belongs AS (
        SELECT alert_id, incident_id FROM incidents WHERE alert_id = ANY(%(ids)s)
        UNION ALL
        SELECT alert_id, incident_id FROM incident_alerts WHERE alert_id = ANY(%(ids)s))
    SELECT b.alert_id, a.received_at, n.stored_at
    FROM belongs b
    JOIN alerts a ON a.alert_id = b.alert_id
    JOIN LATERAL (SELECT min(created_at) AS stored_at FROM notifications
                  WHERE incident_id = b.incident_id AND type = 'INCIDENT_ASSIGNED') n
      ON n.stored_at IS NOT NULL
"""

DUPLICATES = """
    SELECT
      (SELECT count(*) FROM (SELECT alert_id FROM (
            SELECT alert_id FROM incidents UNION ALL SELECT alert_id FROM incident_alerts) x
         GROUP BY alert_id HAVING count(*) > 1) d) AS alerts_in_two_incidents,
      (SELECT count(*) FROM (SELECT incident_id FROM incident_assignments WHERE reason = 'AUTO'
         GROUP BY incident_id HAVING count(*) > 1) d) AS incidents_assigned_twice,
      (SELECT count(*) FROM (SELECT incident_id FROM notifications WHERE type = 'INCIDENT_ASSIGNED'
         GROUP BY incident_id HAVING count(*) > 1) d) AS assignment_notified_twice
"""


def settle(db_url: str, accepted: list[int], wait: float) -> tuple[list[tuple], dict]:
    """Waits up to `wait` seconds for every accepted alarm to be done (DONE). Returns the rows of
    those done, (alert_id, received_at, stored_at), the rest being lost, and the DUPLICATES
    counts."""
    conn = psycopg2.connect(db_url)
    conn.autocommit = True
    try:
        def done():
            with conn.cursor() as cur:
                cur.execute(DONE, {"ids": accepted})
                return cur.fetchall()
        try:
            wait_for(lambda: len(done()) == len(accepted), wait, 1.0, "every alarm to be done")
        except Exception as exc:  # noqa: BLE001 - reported as lost by the caller
            print(f"not every alarm was done: {exc}", file=sys.stderr)
        rows = done()
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(DUPLICATES)
            return rows, dict(cur.fetchone())
    finally:
        conn.close()


def run(args) -> dict:
    reference = pgbench_reference(args.pgbench_seconds)
    suite = Suite(tag="e2e", prepare=lambda url: add_patients(url, args.patients))
    with suite:
        try:
            suite.start("oncall", "alert-ingestion", "incident-management", "notification", timeout=60)
            url, ingestion = suite.db_url, suite.services["alert-ingestion"]
            sign_everyone_in(suite.url("oncall"), url)

            source = alarms(url, random.Random(args.seed))
            plan = [next(source) for _ in range(int(args.rate * args.seconds))]
            load = HttpLoad(ingestion.url, args.concurrency) if args.via == "http" else DatabaseLoad(url)
            started = time.perf_counter()
            accepted = load.offer(plan, args.rate)
            offering = time.perf_counter() - started

            rows, duplicates = settle(url, accepted, args.wait)
            first = min(received for _, received, _ in rows)
            last = max(stored for _, _, stored in rows)
            span = (last - first).total_seconds()
            latencies = sorted((stored - received).total_seconds() for _, received, stored in rows)
            per_second = {}
            for _, _, stored in rows:
                second = int((stored - first).total_seconds())
                per_second[second] = per_second.get(second, 0) + 1
            timeline = [per_second.get(s, 0) for s in range(int(span) + 1)]
            # Sustained: the done rate while alarms were still being offered (the first 5 s warm up).
            steady = timeline[5:max(6, int(offering))]
            result = {
                "bench": "end_to_end",
                "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "cores": os.cpu_count(),
                "via": args.via,
                "offered": {"rate": args.rate, "seconds": args.seconds, "alarms": len(plan),
                            "achieved_rate": round(len(plan) / offering, 1),
                            "accepted": len(accepted), "refused": len(load.refused)},
                "done": {"alarms": len(rows), "lost": len(accepted) - len(rows),
                         "per_second_overall": round(len(rows) / span, 1) if span else None,
                         "per_second_while_offered_median":
                             sorted(steady)[len(steady) // 2] if steady else None,
                         "all_done_after_s": round(span, 1),
                         "alarm_to_notification_p50_s": round(percentile(latencies, 50), 3),
                         "alarm_to_notification_p99_s": round(percentile(latencies, 99), 3),
                         "alarm_to_notification_max_s": round(latencies[-1], 3)},
                "duplicated": duplicates,
                "done_per_second_timeline": timeline,
                "target": ">= 500 alarms/s end to end for 60 s, zero lost, zero duplicated",
                "pgbench_reference": reference,
            }
            if reference and reference.get("tps") and result["done"]["per_second_overall"]:
                result["done_over_pgbench_tps"] = round(
                    result["done"]["per_second_overall"] / reference["tps"], 4)
            return result
        finally:
            if args.keep_logs:
                suite.keep_logs(Path(args.keep_logs))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=500, help="alarms offered a second")
    parser.add_argument("--seconds", type=float, default=60, help="for how long")
    parser.add_argument("--via", choices=("http", "database"), default="http")
    parser.add_argument("--concurrency", type=int, default=32, help="HTTP clients (--via http)")
    parser.add_argument("--patients", type=int, default=2000, help="admitted patients added")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--wait", type=float, default=900, help="seconds to wait for the backlog")
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument("--keep-logs", help="copy the services' logs to this directory")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps({k: v for k, v in result.items() if k != "done_per_second_timeline"}, indent=2))
    out = REPO / "bench" / "results" / f"end_to_end-{result['at'].replace(':', '')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
