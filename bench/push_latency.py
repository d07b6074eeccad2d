"""Off-tab reach: the time from an assignment to its Web Push request leaving us, at an offered
alarm rate (issue 21's figure: p99 at 100 alarms/s).

    .venv/bin/python bench/push_latency.py [--rate 100] [--seconds 20] [--quick]

Every signed-in clinician has one push subscription at a local push service in this process
(tests/reach_edges.py's real HTTP server; here it only records arrivals, tests/test_reach.py has
it check the VAPID signature and decrypt each payload) and the hospital's default rules (push at
once). Alarms are offered open-loop through alert ingestion. For each incident, latency = the
moment its push request arrived at the push service (this host's wall clock; the request's
Topic names the ledger attempt) - the incident's assigned_at (incident management's
clock.now(), the same wall clock): incident management's commit and outbox relay, the event's
queue, the notification worker storing it and queueing the rule step, the sending task's
wake-up, claim, encryption and the request itself. A local push service answers at once, so a
real one's round trip is not in it.
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

import requests  # noqa: E402

from bench.common import VAPID_PUBLIC_KEY, AlertPoster, Suite, execute, percentile, sign_everyone_in  # noqa: E402
from bench.pipeline_rate import Alarms, Pipeline, prepare_database  # noqa: E402
from tests.reach_edges import PushService  # noqa: E402


def subscribe_everyone(notification_url: str, tokens: dict[str, str], push: PushService) -> None:
    session = requests.Session()
    for employee_id, token in tokens.items():
        answer = session.post(f"{notification_url}/api/v1/contact-methods", timeout=30,
                              headers={"Authorization": f"Bearer {token}"},
                              json={"kind": "push", "subscription": push.subscription(employee_id).to_json()})
        answer.raise_for_status()


def measure_push_latency(suite: Suite, pipeline: Pipeline, poster: AlertPoster, alarms: Alarms,
                         tokens: dict[str, str], *, rate: float, seconds: float, settle: float) -> dict:
    """Offer `rate` alarms/s for `seconds` with every clinician subscribed; the subscriptions
    are removed afterwards, so other measurements send no push."""
    # Arrivals only: verifying and decrypting (tests/test_reach.py does) would load this process.
    push = PushService(VAPID_PUBLIC_KEY, check=False).start()
    try:
        subscribe_everyone(suite.url("notification"), tokens, push)
        pipeline.resolve_everything()
        marks = pipeline.marks()
        answers, offered = poster.offered(alarms.take(), rate, seconds, clients=64)
        accepted = [a[2]["alert_id"] for a in answers if a[1] == 201]
        _, waited = pipeline.settle(accepted, marks, settle)
        incidents = {row[0] for row in execute(suite.db_url, """
            SELECT incident_id FROM incidents WHERE alert_id = ANY(%s) AND assigned_at IS NOT NULL""",
            (accepted,), fetch=True)}
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:  # the last pushes, after the last notification stored
            assigned = {row[0]: (float(row[1]), float(row[2])) for row in execute(suite.db_url, """
                SELECT a.attempt_id, a.incident_id, extract(epoch FROM i.assigned_at)
                FROM delivery_attempts a JOIN incidents i USING (incident_id)
                WHERE a.channel = 'push' AND a.rule_step = 0 AND a.incident_id = ANY(%s)""",
                (list(incidents),), fetch=True)}
            arrived = {}
            for request in list(push.received):
                attempt = assigned.get(int(request["topic"].removeprefix("attempt-")))
                if attempt is not None:
                    arrived.setdefault(int(attempt[0]), request["arrived"] - attempt[1])
            if len(arrived) >= len(incidents):
                break
            time.sleep(0.5)
        latencies = list(arrived.values())
    finally:
        push.stop()
        execute(suite.db_url, "DELETE FROM contact_methods WHERE kind = 'push'")
    return {"offered_rate": rate, "seconds": seconds, "offered": offered, "accepted": len(accepted),
            "assigned": len(incidents), "pushed": len(latencies), "drained_after_seconds": round(waited, 1),
            "push_errors": len(push.errors),
            "assigned_to_push_p50_ms": _ms(percentile(latencies, 50)),
            "assigned_to_push_p95_ms": _ms(percentile(latencies, 95)),
            "assigned_to_push_p99_ms": _ms(percentile(latencies, 99))}


def _ms(seconds):
    return None if seconds is None else round(seconds * 1000, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--quick", action="store_true",
                        help="2 s at 20/s: checks it runs, figures mean nothing")
    args = parser.parse_args()
    rate, seconds = (20, 2) if args.quick else (args.rate, args.seconds)
    with Suite(prepare=prepare_database, tag="push") as suite:
        suite.start("oncall", "alert-ingestion", "notification", "incident-management")
        tokens = sign_everyone_in(suite.url("oncall"), suite.db_url)
        result = measure_push_latency(suite, Pipeline(suite.db_url),
                                      AlertPoster(suite.url("alert-ingestion")), Alarms(suite.db_url),
                                      tokens, rate=rate, seconds=seconds, settle=60)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
