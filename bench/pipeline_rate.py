"""End to end: device alarm -> assigned incident -> stored notification, counted in the database.

    .venv/bin/python bench/pipeline_rate.py [--rate 500] [--seconds 60] [--history 0]

Starts its own suite (on-call, alert ingestion, incident management, notification, each web
process and worker, on a database and vhost of its own, dropped at the end), signs the seeded
staff in, optionally seeds `--history` resolved incidents (bench/seed_history.py), then offers up
to `--rate` alarms a second for `--seconds`, each a different patient and alarm (so none is
correlated into another). The offer pauses while more accepted alarms wait than the pipeline
does in five seconds at its current pace (at least `--backlog`), so the backlog, and the wait for
it after the window, stay bounded. Done means: the alarm's incident exists, has its first
assignment, and its assignee's INCIDENT_ASSIGNED notification is stored. After the window it
waits for every accepted alarm to be done and counts, in the database, the lost (no incident),
the duplicated (a second incident or notification for one alarm) and the undone ones. Prints
the figures as JSON; asserts nothing.

`make bench` (bench/run.py) uses the same measurement, with a pgbench reference and plots.
"""
import argparse
import json
import random
import sys
import threading
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

from bench.common import AlertPoster, Suite, execute, percentile, sign_everyone_in  # noqa: E402

# Where the bench's extra patients come from: enough beds that one run never repeats an alarm of
# the same patient and type (a repeat would be correlated into the first one's incident).
BENCH_PATIENTS = 2000


def prepare_database(db_url: str) -> None:
    """The bench's hospital: more admitted patients (wards as the seed's), and deadlines long
    enough that no incident is escalated while it is measured (escalation is not the alarm path)."""
    execute(db_url, """
        INSERT INTO patients (patient_id, name, room, ward)
        SELECT 'B' || lpad(n::text, 5, '0'), 'Bench patient ' || n, 'B-' || n,
               wards.names[1 + n %% cardinality(wards.names)]
        FROM generate_series(1, %s) AS n,
             (SELECT array_agg(DISTINCT ward) AS names FROM patients) AS wards""",
            (BENCH_PATIENTS,))
    # CRITICAL's timeout may be at most 5 minutes (migration 0014): longer than any step, whose
    # incidents are resolved before the next one starts.
    execute(db_url, """UPDATE escalation_policies SET ack_timeout_seconds =
                         CASE WHEN severity = 'CRITICAL' THEN 300 ELSE 86400 END""")


class Alarms:
    """Every (admitted patient, alert type) once, shuffled, round and round."""

    def __init__(self, db_url: str, seed: int = 10):
        self.pairs = execute(db_url, """
            SELECT p.patient_id, t.alert_type FROM patients p CROSS JOIN alert_types t
            WHERE p.status = 'ADMITTED' ORDER BY 1, 2""", fetch=True)
        random.Random(seed).shuffle(self.pairs)
        self.position = 0

    def take(self, limit: int | None = None):
        """Up to `limit` alarms (at most one round: no repeat within one measurement)."""
        count = min(limit or len(self.pairs), len(self.pairs))
        for _ in range(count):
            yield tuple(self.pairs[self.position % len(self.pairs)])
            self.position += 1


class Pipeline:
    """The running pipeline as the database shows it."""

    def __init__(self, db_url: str):
        self.db_url = db_url

    def marks(self) -> dict:
        row = execute(self.db_url, """
            SELECT (SELECT coalesce(max(incident_id), 0) FROM incidents),
                   (SELECT coalesce(max(notification_id), 0) FROM notifications),
                   extract(epoch FROM clock_timestamp())""", fetch=True)[0]
        return {"incident": row[0], "notification": row[1], "at": float(row[2])}

    def notified_since(self, marks: dict) -> int:
        return execute(self.db_url, """
            SELECT count(*) FROM notifications WHERE notification_id > %s AND type = 'INCIDENT_ASSIGNED'""",
                       (marks["notification"],), fetch=True)[0][0]

    def outcome(self, alert_ids: list[int], marks: dict) -> list[tuple]:
        """Per accepted alarm: (received, first assigned, notification stored: epoch seconds or
        None, incidents made of it, correlated, notifications stored for its incident)."""
        return execute(self.db_url, """
            WITH mine AS (SELECT unnest(%(ids)s::bigint[]) AS alert_id),
            firsts AS (SELECT incident_id, min(assigned_at) AS at FROM incident_assignments
                       WHERE incident_id > %(incident)s GROUP BY incident_id),
            stored AS (SELECT incident_id, min(created_at) AS at, count(*) AS copies FROM notifications
                       WHERE notification_id > %(notification)s AND type = 'INCIDENT_ASSIGNED'
                       GROUP BY incident_id),
            made AS (SELECT alert_id, count(*) AS incidents, min(incident_id) AS incident_id FROM incidents
                     WHERE incident_id > %(incident)s GROUP BY alert_id)
            SELECT extract(epoch FROM a.received_at), extract(epoch FROM f.at), extract(epoch FROM s.at),
                   coalesce(m.incidents, 0), l.alert_id IS NOT NULL, coalesce(s.copies, 0)
            FROM mine
            JOIN alerts a ON a.alert_id = mine.alert_id
            LEFT JOIN made m ON m.alert_id = mine.alert_id
            LEFT JOIN firsts f ON f.incident_id = m.incident_id
            LEFT JOIN stored s ON s.incident_id = m.incident_id
            LEFT JOIN incident_alerts l ON l.alert_id = mine.alert_id""",
                       {"ids": alert_ids, **marks}, fetch=True)

    def by_severity(self, alert_ids: list[int]) -> dict:
        """Alert-to-assigned p50/p99 (seconds) of each severity: under an overload the lanes let
        the more severe alarms overtake the others, and the tail is theirs."""
        rows = execute(self.db_url, """
            SELECT a.severity, count(*),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM f.at - a.received_at)),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM f.at - a.received_at))
            FROM alerts a
            JOIN incidents i ON i.alert_id = a.alert_id
            JOIN LATERAL (SELECT min(assigned_at) AS at FROM incident_assignments
                          WHERE incident_id = i.incident_id) f ON f.at IS NOT NULL
            WHERE a.alert_id = ANY(%s)
            GROUP BY a.severity ORDER BY a.severity""", (alert_ids,), fetch=True)
        return {severity: {"count": count, "p50_s": _rounded(p50), "p99_s": _rounded(p99)}
                for severity, count, p50, p99 in rows}

    @staticmethod
    def undone(rows) -> int:
        return sum(1 for row in rows if not row[4] and row[2] is None)

    def settle(self, alert_ids: list[int], marks: dict, timeout: float) -> tuple[list[tuple], float]:
        """Wait (at most `timeout`) until every accepted alarm is done; its outcome and the wait."""
        started = time.monotonic()
        while True:
            rows = self.outcome(alert_ids, marks)
            if not self.undone(rows) or time.monotonic() - started > timeout:
                return rows, time.monotonic() - started
            time.sleep(1.0)

    def resolve_everything(self) -> None:
        """The clinicians finish the work in hand (straight in the database, as the history seed
        writes), so that every measurement starts from a ward with no active incident."""
        execute(self.db_url, """
            WITH done AS (
                UPDATE incidents SET status = 'RESOLVED', ack_deadline = NULL,
                       acknowledged_at = coalesce(acknowledged_at, now()),
                       response_seconds = coalesce(response_seconds, extract(epoch FROM now() - created_at)),
                       started_at = coalesce(started_at, now()), resolved_at = now(),
                       resolution_seconds = extract(epoch FROM now() - created_at), updated_at = now()
                WHERE status <> 'RESOLVED' RETURNING incident_id)
            UPDATE incident_assignments SET ended_at = now()
            WHERE ended_at IS NULL AND incident_id IN (SELECT incident_id FROM done)""")


def audit(rows) -> dict:
    """Zero lost, zero duplicated: counted per accepted alarm."""
    return {"accepted": len(rows),
            "lost": sum(1 for r in rows if r[3] == 0 and not r[4]),
            # a second incident (or an incident and a correlation) of one alarm, a second notification
            "duplicated": sum(1 for r in rows if r[3] + int(r[4]) > 1) + sum(max(0, r[5] - 1) for r in rows),
            "correlated": sum(1 for r in rows if r[4]),
            "not_assigned": sum(1 for r in rows if r[3] and r[1] is None),
            "not_notified": sum(1 for r in rows if r[3] and r[2] is None)}


def timeline(rows, start: float, seconds: float) -> dict:
    """Accepted and done alarms in each second from `start` (database clock)."""
    width = int(seconds) + 1
    accepted, done = [0] * width, [0] * width
    for received, _, stored, *_ in rows:
        for series, at in ((accepted, received), (done, stored)):
            if at is not None and 0 <= float(at) - start < width:
                series[int(float(at) - start)] += 1
    return {"timeline_accepted": accepted, "timeline_done": done}


def measure_rate(pipeline: Pipeline, poster: AlertPoster, alarms: Alarms, *, rate: float, seconds: float,
                 clients: int = 32, backlog: int = 100, warmup: float = 5.0, settle: float = 300) -> dict:
    """The sustained end-to-end rate: alarms done per second over the window (after `warmup`),
    offering up to `rate` a second while fewer accepted ones wait than the pipeline does in 5 s
    (at least `backlog`)."""
    pipeline.resolve_everything()
    marks = pipeline.marks()
    accepted = [0]
    done = [0]
    stop = threading.Event()

    cap = [backlog]

    def watch():  # how many are done, for the offer's pause; the figures are counted at the end
        history = []
        while not stop.wait(0.5):
            done[0] = pipeline.notified_since(marks)
            history = [*history[-9:], (time.monotonic(), done[0])]
            if len(history) > 1:  # at most ~5 s of work waiting, however fast the pipeline is now
                rate_now = (history[-1][1] - history[0][1]) / (history[-1][0] - history[0][0])
                cap[0] = max(backlog, int(5 * rate_now))

    def answered(answer):
        if answer[1] == 201:
            accepted[0] += 1

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        answers, offered = poster.offered(alarms.take(), rate, seconds, clients,
                                          hold=lambda: accepted[0] - done[0] > cap[0], on_answer=answered)
    finally:
        stop.set()
        watcher.join()
    alert_ids = [a[2]["alert_id"] for a in answers if a[1] == 201]
    rows, waited = pipeline.settle(alert_ids, marks, settle)
    warmup = min(warmup, seconds / 4)  # the first seconds fill the pipeline: left out
    window_start, window_end = marks["at"] + warmup, marks["at"] + seconds
    in_window = sum(1 for r in rows if r[2] is not None and window_start <= float(r[2]) < window_end)
    latencies = [float(r[1]) - float(r[0]) for r in rows if r[1] is not None]
    statuses = {}
    for answer in answers:
        statuses[str(answer[1])] = statuses.get(str(answer[1]), 0) + 1
    return {"offered_rate": rate, "seconds": seconds, "offered": offered, "answers": statuses,
            "accepted_per_second": round(len(alert_ids) / seconds, 1),
            "sustained_per_second": round(in_window / (seconds - warmup), 1),
            "drained_after_seconds": round(waited, 1),
            "alert_to_assigned_p50_s": _rounded(percentile(latencies, 50)),
            "alert_to_assigned_p99_s": _rounded(percentile(latencies, 99)),
            "alert_to_assigned_by_severity": pipeline.by_severity(alert_ids),
            **audit(rows), **timeline(rows, marks["at"], seconds + waited)}


def _rounded(value, digits=3):
    return None if value is None else round(value, digits)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--backlog", type=int, default=100, help="the least backlog allowed")
    parser.add_argument("--history", type=int, default=0, help="resolved incidents of history to seed first")
    args = parser.parse_args()
    from bench.seed_history import seed_history
    with Suite(prepare=prepare_database, tag="pipeline") as suite:
        if args.history:
            seed_history(suite.db_url, args.history)
        suite.start("oncall", "alert-ingestion", "notification", "incident-management")
        sign_everyone_in(suite.url("oncall"), suite.db_url)
        result = measure_rate(Pipeline(suite.db_url), AlertPoster(suite.url("alert-ingestion")),
                              Alarms(suite.db_url), rate=args.rate, seconds=args.seconds,
                              clients=args.clients, backlog=args.backlog)
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
