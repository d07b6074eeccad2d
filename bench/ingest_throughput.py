"""Alert pipeline throughput and latency against running services (not run by the tests).

    python bench/ingest_throughput.py --ingest-url http://localhost:8001 \
        --incident-url http://localhost:8002 --api-key $DEVICE_KEY --token $SERVICE_TOKEN \
        --count 500 --concurrency 8 [--rate 20]

Posts `count` device alerts through the public API from `concurrency` clients and prints:
  - alerts/s accepted (201s over the wall time of the posting phase) and the POST latency;
  - alert-to-assigned latency p50/p99: from the alert's received_at to its incident's assigned_at,
    both stamped by the database, so client and server clocks do not mix.
Clinicians must be signed in and on duty for incidents to be assigned; alerts whose incident is
still unassigned when --wait runs out are reported, not counted in the latency.
"""
import argparse
import concurrent.futures
import datetime
import itertools
import random
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

import requests  # noqa: E402

from bench.common import AlertPoster, catalogue, percentile  # noqa: E402


def parse_time(text):
    return datetime.datetime.fromisoformat(text)


class Bench:
    def __init__(self, args):
        self.args = args
        self.poster = AlertPoster(args.ingest_url, args.api_key)
        self.rng = random.Random(args.seed)

    def alarms(self):
        patients, types = catalogue(self.args.ingest_url, self.args.api_key)
        pairs = [(patient, t["alert_type"]) for patient in patients for t in types]
        self.rng.shuffle(pairs)
        return itertools.islice(itertools.cycle(pairs), self.args.count)

    def post(self, alarm):
        """(alert JSON or None, seconds taken, error or None)"""
        _, status, alert, elapsed, _, error = self.poster.post(alarm)
        return alert, elapsed, None if status == 201 else f"{status} {error}"

    def incidents_since(self, since):
        """alert_id -> incident, for every incident created since `since` (all pages)."""
        found, cursor = {}, None
        headers = {"Authorization": f"Bearer {self.args.token}"}
        while True:
            params = {"since": since.isoformat(), "limit": 500, **({"cursor": cursor} if cursor else {})}
            response = requests.get(self.args.incident_url + "/api/v1/incidents", params=params,
                                    headers=headers, timeout=30)
            response.raise_for_status()
            page = response.json()
            found.update({i["alert_id"]: i for i in page["incidents"]})
            cursor = page["next"]
            if not cursor:
                return found

    def run(self):
        args = self.args
        alarms = list(self.alarms())
        wall_start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=5)
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
            if args.rate:  # paced: latency without a queue building up
                futures = []
                for n, alarm in enumerate(alarms):
                    time.sleep(max(0.0, started + n / args.rate - time.perf_counter()))
                    futures.append(pool.submit(self.post, alarm))
                results = [future.result() for future in futures]
            else:  # as fast as the clients go: throughput
                results = list(pool.map(self.post, alarms))
        posting = time.perf_counter() - started
        accepted = {alert["alert_id"]: alert for alert, _, error in results if error is None}
        failures = [error for _, _, error in results if error is not None]
        post_ms = [elapsed * 1000 for _, elapsed, _ in results]
        print(f"posted {len(alarms)} alerts from {args.concurrency} clients in {posting:.2f} s: "
              f"{len(accepted) / posting:.1f} alerts/s accepted ({len(accepted)} accepted, "
              f"{len(failures)} failed)")
        if failures:
            print(f"  first failure: {failures[0]}")
        print(f"POST /api/v1/alerts latency: p50 {percentile(post_ms, 50):.1f} ms, "
              f"p99 {percentile(post_ms, 99):.1f} ms, max {max(post_ms):.1f} ms")

        deadline = time.monotonic() + args.wait
        while True:
            incidents = self.incidents_since(wall_start)
            assigned = {a: i for a, i in incidents.items() if a in accepted and i["assigned_at"]}
            if len(assigned) == len(accepted) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        drained = time.perf_counter() - started
        latencies = [(parse_time(i["assigned_at"]) - parse_time(accepted[a]["received_at"])).total_seconds()
                     * 1000 for a, i in assigned.items()]
        print(f"incidents: {sum(1 for a in incidents if a in accepted)} created, {len(assigned)} assigned; "
              f"all assigned {drained:.2f} s after the first post "
              f"({len(assigned) / drained:.1f} alerts/s end to end)")
        if latencies:
            print("alert-to-assigned latency (received_at -> assigned_at): "
                  f"p50 {percentile(latencies, 50):.0f} ms, p99 {percentile(latencies, 99):.0f} ms, "
                  f"max {max(latencies):.0f} ms")
        else:
            print("no incident was assigned: is anyone signed in and on duty?")
        missing = len(accepted) - len(assigned)
        if missing:
            print(f"{missing} accepted alerts had no assigned incident after {args.wait} s")
        return 0 if not failures and not missing else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ingest-url", default="http://localhost:8001")
    parser.add_argument("--incident-url", default="http://localhost:8002")
    parser.add_argument("--api-key", required=True, help="a device key from DEVICE_API_KEYS")
    parser.add_argument("--token", required=True, help="SERVICE_TOKEN or a clinician's session token")
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, help="alerts per second (default: as fast as possible)")
    parser.add_argument("--wait", type=float, default=60, help="seconds to wait for assignments")
    parser.add_argument("--seed", type=int, default=1)
    return Bench(parser.parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
