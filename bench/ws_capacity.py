"""WebSocket capacity of ONE notification service instance: connections held, server memory per
connection, and push latency while incident events flow.

    # against a running instance (its master pid lets the bench read its memory):
    DATABASE_URL=... RABBITMQ_URL=... .venv/bin/python bench/ws_capacity.py \\
        --url http://127.0.0.1:8004 --server-pid <gunicorn master pid>
    # or let the bench start one, with the settings compose uses for the notification service:
    DATABASE_URL=... RABBITMQ_URL=... SERVICE_TOKEN=... .venv/bin/python bench/ws_capacity.py --start

It signs the seeded clinicians in directly in the database (several sessions each, several
sockets per session), opens N sockets (default 1000), then publishes incident events to the
`notifications` queue at a steady rate, each carrying its send time, and measures when each
frame arrives: the clinician's `notification` frames (on all of that clinician's sockets) and the
`incident_updated` frames every socket receives. One thread reads all sockets (a selector), so
the client side stays light. Everything it created (sessions, notifications, the incident) is
removed at the end. Prints the figures; asserts nothing.
"""
import argparse
import concurrent.futures
import os
import random
import resource
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "services")]

import requests  # noqa: E402

from bench.common import NOTIFICATION_ENV, FrameReader, close_sockets, open_socket, percentile  # noqa: E402
from healthguard.auth import new_session_token, token_hash  # noqa: E402
from healthguard.broker import Outgoing, Publisher  # noqa: E402
from healthguard.db import Database  # noqa: E402
from notification.hub import DEFAULT_SOCKETS_PER_SESSION  # noqa: E402

# What the notification service runs with (compose / Procfile): one worker, a thread per socket.
RECOMMENDED_ENV = NOTIFICATION_ENV


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        sys.exit(f"open-file limit {soft} < {needed} needed; raise it (ulimit -n) and retry")


def process_tree(pid: int) -> list[int]:
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def server_memory(pid: int) -> dict:
    """Summed VmRSS (KiB) and thread count of the gunicorn master and its workers."""
    rss = threads = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss += int(fields.get("VmRSS", "0 kB").split()[0])
        threads += int(fields.get("Threads", "0").strip())
    return {"rss_kib": rss, "threads": threads}


def open_sessions(db: Database, per_clinician: int, sockets: int) -> list[tuple[str, str, int]]:
    """(employee_id, token, session_id) for several sessions of every seeded clinician: at least
    `per_clinician`, and enough that no session holds more sockets than the service allows one
    (WS_SOCKETS_PER_SESSION: a session's sixth would close its first)."""
    sessions = []
    with db.transaction() as cur:
        cur.execute("SELECT employee_id FROM employees ORDER BY employee_id")
        employees = [row["employee_id"] for row in cur.fetchall()]
        per_clinician = max(per_clinician, -(-sockets // (len(employees) * DEFAULT_SOCKETS_PER_SESSION)))
        for employee_id in employees:
            for _ in range(per_clinician):
                token = new_session_token()
                cur.execute("""
                    INSERT INTO sessions (employee_id, token_hash, expires_at)
                    VALUES (%s, %s, now() + interval '2 hours') RETURNING session_id""",
                            (employee_id, token_hash(token)))
                sessions.append((employee_id, token, cur.fetchone()["session_id"]))
    return sessions


def make_incident(db: Database) -> tuple[int, int]:
    with db.transaction() as cur:
        cur.execute("""
            INSERT INTO alerts (patient_id, alert_type, severity, category, room, occurred_at, source)
            SELECT p.patient_id, 'CARDIAC_ARREST', 'CRITICAL', 'CARDIAC', p.room, now(), 'SIMULATOR'
            FROM patients p ORDER BY p.patient_id LIMIT 1 RETURNING alert_id, patient_id, room""")
        alert = cur.fetchone()
        cur.execute("""
            INSERT INTO incidents (alert_id, patient_id, alert_type, severity, category, room, title, status)
            VALUES (%s, %s, 'CARDIAC_ARREST', 'CRITICAL', 'CARDIAC', %s, 'Benchmark incident', 'ASSIGNED')
            RETURNING incident_id""", (alert["alert_id"], alert["patient_id"], alert["room"]))
        return cur.fetchone()["incident_id"], alert["alert_id"]


class Latencies:
    """Arrival latency of each frame the bench published (by its send time), by frame type."""

    def __init__(self):
        self.latency = {"notification": [], "incident_updated": []}

    def __call__(self, ws, message, now):
        if message["type"] == "notification" and "bench_sent_at" in message.get("data", {}):
            self.latency["notification"].append(now - message["data"]["bench_sent_at"])
        elif message["type"] == "incident_updated" and message.get("occurred_at"):
            sent = datetime.fromisoformat(message["occurred_at"]).timestamp()
            self.latency["incident_updated"].append(now - sent)


def _ms(seconds) -> float:
    return float("nan") if seconds is None else seconds * 1000


def open_sockets(ws_base, sessions, count, readers, workers=8):
    plan = [sessions[i % len(sessions)] for i in range(count)]
    opened, failures = [], []

    def connect(entry):
        employee_id, token, _ = entry
        # A program can send its session as a header; session tokens are refused in a URL.
        return employee_id, open_socket(ws_base, token)

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for future in concurrent.futures.as_completed([pool.submit(connect, e) for e in plan]):
            try:
                employee_id, ws = future.result()
            except Exception as exc:  # counted and reported, the run goes on
                failures.append(repr(exc))
                continue
            readers.add(ws)
            opened.append((employee_id, ws))
    return opened, failures, time.monotonic() - started


def server_latency_quantiles(url) -> str:
    """p50/p99 upper bounds from the server's own histogram (commit to socket write)."""
    buckets = []
    for line in requests.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("notification_push_latency_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(le), float(line.rsplit(" ", 1)[1])))
    buckets.sort()
    if not buckets or not buckets[-1][1]:
        return "no samples"
    total = buckets[-1][1]
    bound = {q: next(le for le, n in buckets if n >= q / 100 * total) for q in (50, 99)}
    return f"p50 <= {bound[50] * 1000:.0f} ms, p99 <= {bound[99] * 1000:.0f} ms ({total:.0f} samples)"


def metric(url, name):
    for line in requests.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--sessions-per-clinician", type=int, default=3)
    parser.add_argument("--url", help="base URL of a running notification instance")
    parser.add_argument("--server-pid", type=int, help="its gunicorn master pid (for memory figures)")
    parser.add_argument("--start", action="store_true",
                        help="start an instance with the recommended settings")
    parser.add_argument("--rate", type=float, default=5.0, help="incident events per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long events flow")
    args = parser.parse_args()
    database_url, rabbitmq_url = os.environ.get("DATABASE_URL"), os.environ.get("RABBITMQ_URL")
    if not database_url or not rabbitmq_url:
        sys.exit("set DATABASE_URL and RABBITMQ_URL (the instance's database and broker)")
    if not args.url and not args.start:
        sys.exit("give --url (and --server-pid) of a running instance, or --start")
    raise_fd_limit(args.connections * 3 + 256)  # the bench's sockets, and a started server's

    service = None
    if args.start:
        from tests.support import ServiceProcess
        env = {"DATABASE_URL": database_url, "RABBITMQ_URL": rabbitmq_url, "LOG_LEVEL": "WARNING",
               "SERVICE_TOKEN": os.environ.get("SERVICE_TOKEN") or uuid.uuid4().hex, **RECOMMENDED_ENV}
        service = ServiceProcess("notification", env, workers=int(RECOMMENDED_ENV["GUNICORN_WORKERS"]))
        service.start(timeout=60)
        base, server_pid = service.url, service.proc.pid
    else:
        base, server_pid = args.url.rstrip("/"), args.server_pid
    ws_base = "ws://" + urlsplit(base).netloc

    db = Database(database_url)
    publisher = Publisher(rabbitmq_url)
    sessions = open_sessions(db, args.sessions_per_clinician, args.connections)
    incident_id, alert_id = make_incident(db)
    run = uuid.uuid4().hex[:8]
    latencies = Latencies()
    readers = FrameReader(latencies)
    opened = []
    try:
        time.sleep(1.0)
        before = server_memory(server_pid) if server_pid else None
        readers.start()
        opened, failures, took = open_sockets(ws_base, sessions, args.connections, readers)
        time.sleep(2.0)
        held = metric(base, "websocket_connections")
        after = server_memory(server_pid) if server_pid else None

        by_clinician = {}
        for employee_id, _ in opened:
            by_clinician[employee_id] = by_clinician.get(employee_id, 0) + 1
        employees = sorted(by_clinician)
        expected = {"notification": 0, "incident_updated": 0}
        interval, sent = 1.0 / args.rate, 0
        deadline = time.monotonic() + args.seconds
        next_at = time.monotonic()
        while time.monotonic() < deadline:
            recipient = random.choice(employees)
            now = time.time()
            event = {
                "event_id": f"bench-{run}-{sent}", "type": "INCIDENT_ESCALATED", "recipients": [recipient],
                "incident_id": incident_id, "title": "Benchmark incident", "message": "benchmark",
                "severity": "CRITICAL",
                "data": {"status": "ASSIGNED", "assigned_to": recipient, "bench_sent_at": now},
                "occurred_at": datetime.fromtimestamp(now, UTC).isoformat(),
            }
            [error] = publisher.publish_many(
                [Outgoing.to_queue("notifications", event, message_id=event["event_id"])])
            if error is not None:
                raise error
            expected["notification"] += by_clinician[recipient]
            expected["incident_updated"] += len(opened)
            sent += 1
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        drain_until, last_count = time.monotonic() + 30, -1
        while time.monotonic() < drain_until:  # until frames stop arriving
            count = sum(len(values) for values in latencies.latency.values())
            if count == last_count or count >= sum(expected.values()):
                break
            last_count = count
            time.sleep(1.0)
        still_open = metric(base, "websocket_connections")
        server_latency = server_latency_quantiles(base)
    finally:
        readers.stop()
        close_sockets([ws for _, ws in opened])
        with db.transaction() as cur:
            cur.execute("DELETE FROM notifications WHERE event_id LIKE %s", (f"bench-{run}-%",))
            cur.execute("DELETE FROM incidents WHERE incident_id = %s", (incident_id,))
            cur.execute("DELETE FROM alerts WHERE alert_id = %s", (alert_id,))
            cur.execute("DELETE FROM sessions WHERE session_id = ANY(%s)", ([s[2] for s in sessions],))
        publisher.close()
        db.close()
        if service is not None:
            service.stop()

    print(f"connections requested        {args.connections}")
    print(f"connections opened           {len(opened)} in {took:.1f}s ({len(failures)} failed"
          + (f", first: {failures[0]}" if failures else "") + ")")
    print(f"held (server gauge)          {held:.0f} after opening, {still_open:.0f} after the event flow")
    print(f"closed by the server         {readers.closed}")
    if before and after:
        per = (after["rss_kib"] - before["rss_kib"]) / max(1, len(opened))
        print(f"server RSS                   {before['rss_kib'] / 1024:.1f} MiB idle -> "
              f"{after['rss_kib'] / 1024:.1f} MiB with {len(opened)} sockets ({per:.1f} KiB per connection)")
        print(f"server threads               {before['threads']} idle -> {after['threads']}")
    print(f"events published             {sent} at {args.rate}/s for {args.seconds:.0f}s "
          f"(each to one clinician's ~{len(opened) // max(1, len(employees))} sockets, "
          f"and an incident update to all {len(opened)})")
    for kind, values in latencies.latency.items():
        print(f"{kind:<28} {len(values)} of {expected[kind]} frames received; latency p50 "
              f"{_ms(percentile(values, 50)):.1f} ms, p99 {_ms(percentile(values, 99)):.1f} ms, "
              f"max {max(values, default=float('nan')) * 1000:.1f} ms"
              + (f", mean {statistics.mean(values) * 1000:.1f} ms" if values else ""))
    print(f"server-side push latency     {server_latency} (notification_push_latency_seconds)")


if __name__ == "__main__":
    main()
