"""HL7 device alarms (issue 13): PCD-04 messages/s over MLLP and the ACK latency.
Not a test: it starts its own services, measures, prints, and writes JSON under bench/results/.

    .venv/bin/python bench/hl7_throughput.py [--count 2000] [--connections 4] [--keep-logs DIR]

On the machine's PostgreSQL and RabbitMQ (ADMIN_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/postgres; rabbitmqctl) it creates its own database and vhost,
migrates, starts alert ingestion (web process and worker, as `make up` runs them; the worker holds
the MLLP listener on a free port), registers a gateway, then sends `--count` PCD-04 Report Alert
messages (ORU^R40, each its own alert identifier, patients and MDC events in turn) over
`--connections` MLLP connections with python-hl7's MLLPClient, one message in flight per
connection as a gateway in original acknowledgement mode sends them. It reports messages/s
(acknowledged AA over the wall time of the sending) and the ACK latency p50/p99/max as the gateway
sees it (message written to ACK read; an AA means the alert and its outbox row committed), and the
service's own hl7_ack_seconds count. Everything it created is dropped at the end.
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import socket
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "services")]

from alert_ingestion import hl7_messages  # noqa: E402
from alert_ingestion.devices import register_device  # noqa: E402
from alert_ingestion.hl7_gateways import register_gateway  # noqa: E402
from alert_ingestion.mllp_client import MllpClient  # noqa: E402
from bench.common import Suite, percentile  # noqa: E402
from healthguard.db import Database  # noqa: E402
from tests.support import free_port, metric_value, port_open, wait_for  # noqa: E402

APPLICATION = "BENCH_GW"
EVENTS = ("196614^MDC_EVT_ECG_ASYSTOLE^MDC", "^MDC_EVT_APNEA^MDC", "^MDC_EVT_DESAT^MDC",
          "^MDC_EVT_ECG_SINUS_TACHY^MDC", "^MDC_EVT_LEAD_DISCONN^MDC")


def send_all(port: int, key: str, numbers: list[int], patients: list[str]) -> list[tuple[str, float]]:
    """One gateway connection sending its share, one message at a time: (MSA-1, seconds) each."""
    results = []
    client = MllpClient("127.0.0.1", port, 60)
    try:
        for n in numbers:
            message = hl7_messages.report_alert(
                control_id=f"B{n:07d}", alert_id=f"BENCH-{n:07d}", patient_id=patients[n % len(patients)],
                occurred_at=datetime.datetime.now(datetime.UTC),
                event=EVENTS[n // len(patients) % len(EVENTS)],
                application=APPLICATION, security=key)
            started = time.perf_counter()
            try:
                answer = client.send_message(message)
            except OSError:
                results.append(("lost", time.perf_counter() - started))
                break
            code, _ = hl7_messages.acknowledged(answer.decode("utf-8", "replace"))
            results.append((code, time.perf_counter() - started))
    finally:
        client.close()
    return results


def run(args) -> dict:
    port = free_port()
    # Every connection opens at once from 127.0.0.1, before its first message authenticates it:
    # as many as the listener takes from one address not yet authenticated (4 by default).
    suite = Suite(tag="hl7", env={"HL7_MLLP_PORT": str(port), "HL7_MLLP_BIND": "127.0.0.1",
                                  "HL7_MAX_CONNECTIONS_PER_ADDRESS": str(max(4, args.connections))})
    with suite:
        try:
            suite.start("alert-ingestion", timeout=60)
            ingestion = suite.services["alert-ingestion"]
            wait_for(lambda: port_open(port), 30, what="the MLLP listener")
            db = Database(suite.db_url, maxconn=1)
            try:
                with db.transaction() as cur:
                    device, key = register_device(cur, name="bench gateway", ward=None, patient_id=None,
                                                  created_by="D01")
                    register_gateway(cur, device_id=device["device_id"], sending_application=APPLICATION)
                    cur.execute("SELECT patient_id FROM patients WHERE status = 'ADMITTED' "
                                "ORDER BY patient_id")
                    patients = [row["patient_id"] for row in cur.fetchall()]
            finally:
                db.close()

            shares = [list(range(i, args.count, args.connections)) for i in range(args.connections)]
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(args.connections) as pool:
                sent = pool.map(lambda share: send_all(port, key, share, patients), shares)
                outcomes = [outcome for share in sent for outcome in share]
            sending = time.perf_counter() - started
            accepted = [seconds * 1000 for code, seconds in outcomes if code == "AA"]
            other = sorted({code for code, _ in outcomes if code != "AA"})
            result = {
                "bench": "hl7_throughput",
                "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "cores": os.cpu_count(),
                "messages": args.count, "connections": args.connections,
                "acknowledged_aa": len(accepted), "not_aa": args.count - len(accepted),
                "not_aa_codes": other,
                "sending_seconds": round(sending, 2),
                "messages_per_second": round(len(accepted) / sending, 1),
                "ack_latency_ms": {"p50": round(percentile(accepted, 50), 2) if accepted else None,
                                   "p99": round(percentile(accepted, 99), 2) if accepted else None,
                                   "max": round(max(accepted), 2) if accepted else None},
                "service_hl7_ack_seconds_count": metric_value(ingestion.url, "hl7_ack_seconds_count"),
                "host": socket.gethostname(),
            }
            return result
        finally:
            if args.keep_logs:
                suite.keep_logs(Path(args.keep_logs))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000, help="PCD-04 messages")
    parser.add_argument("--connections", type=int, default=4, help="MLLP connections sending at once")
    parser.add_argument("--keep-logs", help="copy the service's logs to this directory")
    args = parser.parse_args(argv)
    if args.count < 1 or args.connections < 1:
        parser.error("--count and --connections must be positive")
    result = run(args)
    print(f"{result['acknowledged_aa']} of {args.count} PCD-04 messages acknowledged AA over "
          f"{args.connections} MLLP connections in {result['sending_seconds']} s: "
          f"{result['messages_per_second']} messages/s")
    print(f"ACK latency: p50 {result['ack_latency_ms']['p50']} ms, p99 {result['ack_latency_ms']['p99']} ms, "
          f"max {result['ack_latency_ms']['max']} ms")
    out = REPO / "bench" / "results" / f"hl7_throughput-{result['at'].replace(':', '')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out.relative_to(REPO)}")
    return 0 if result["acknowledged_aa"] == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
