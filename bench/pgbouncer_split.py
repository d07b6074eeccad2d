"""The Kubernetes group overlay's database split, run for real on this machine: the web processes
of on-call, incident management and notification reach PostgreSQL through PgBouncer in
transaction mode, with a pool much smaller than their clients, while alert ingestion and every
worker connect directly (they hold sessions: prepared statements, LISTEN). Alarms flow end to
end at an offered rate; every one must end in exactly one incident, assigned once, notified once,
and the REST reads through PgBouncer must answer.

    .venv/bin/python bench/pgbouncer_split.py [--rate 50] [--seconds 30] [--pool 4]

Needs Debian's pgbouncer (apt-get install pgbouncer); it runs its own on a spare loopback port, as
the postgres user (PgBouncer refuses root), trusting 127.0.0.1 as the local server does. The
suite (bench/common.py) has a database and vhost of its own, dropped at the end. Prints the
counts and PgBouncer's own, writes bench/results/pgbouncer_split-<time>.json; asserts nothing.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "services")]

import psycopg2  # noqa: E402
import requests  # noqa: E402

from bench.common import (  # noqa: E402
    NOTIFICATION_ENV,
    AlertPoster,
    Suite,
    catalogue,
    git_commit,
    sign_everyone_in,  # noqa: E402
)
from bench.end_to_end import settle  # noqa: E402
from tests.support import ServiceProcess, free_port, wait_for  # noqa: E402

POOLED = ("oncall", "incident-management", "notification")  # their web processes, as in the overlay


class PgBouncer:
    """A throw-away PgBouncer in transaction mode in front of the local server."""

    def __init__(self, pool: int):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="hg-pgbouncer-"))
        self.pool = pool

    def __enter__(self):
        (self.dir / "userlist.txt").write_text('"postgres" ""\n')
        (self.dir / "pgbouncer.ini").write_text(
            "[databases]\n* = host=127.0.0.1 port=5432\n[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.dir}/userlist.txt\npool_mode = transaction\n"
            f"default_pool_size = {self.pool}\nreserve_pool_size = 1\nmax_client_conn = 500\n"
            f"logfile = {self.dir}/pgbouncer.log\npidfile = {self.dir}/pgbouncer.pid\n"
            "admin_users = postgres\n")
        for path in (self.dir, *self.dir.iterdir()):  # the postgres user writes its log and pid here
            shutil.chown(path, "postgres")
        command = ["runuser", "-u", "postgres", "--", "pgbouncer", str(self.dir / "pgbouncer.ini")]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for(lambda: (self.dir / "pgbouncer.pid").exists(), 15, 0.1, "pgbouncer to start")
        return self

    def url(self, database_url: str) -> str:
        return database_url.replace("127.0.0.1:5432", f"127.0.0.1:{self.port}")

    def show(self, what: str, database: str) -> dict:
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, dbname="pgbouncer", user="postgres")
        conn.autocommit = True  # the admin console takes no transactions
        try:
            with conn.cursor() as cur:
                cur.execute(f"SHOW {what}")
                names = [column[0] for column in cur.description]
                rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        finally:
            conn.close()
        return next((row for row in rows if row.get("database") == database), {})

    def __exit__(self, *exc):
        pid = self.dir / "pgbouncer.pid"
        if pid.exists():
            os.kill(int(pid.read_text()), 15)
        self.proc.wait(15)
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--pool", type=int, default=4, help="PgBouncer's server connections per database")
    args = parser.parse_args()
    if not shutil.which("pgbouncer") and not Path("/usr/sbin/pgbouncer").exists():
        sys.exit("needs pgbouncer: apt-get install pgbouncer")
    processes = []
    with Suite(tag="pgbsplit") as suite, PgBouncer(args.pool) as bouncer:
        try:
            suite.start("alert-ingestion")  # direct: its prepared statements need a session
            webs = {}
            for name in POOLED:
                oncall = {"ONCALL_URL": webs["oncall"].url} if name == "incident-management" else {}
                web_env = {**suite.env, **oncall, "DATABASE_URL": bouncer.url(suite.db_url),
                           **(NOTIFICATION_ENV if name == "notification" else {})}
                webs[name] = ServiceProcess(name, web_env, workers=None, background=False)
                processes.append(webs[name].start(timeout=90))
                worker = ServiceProcess(name, {**suite.env, **oncall}, workers=None)  # direct: LISTEN
                processes.append(worker.start_worker())
            tokens = sign_everyone_in(webs["oncall"].url, suite.db_url)
            patients, types = catalogue(suite.url("alert-ingestion"))
            rng = random.Random(7)
            plan = [(rng.choice(patients), rng.choice(types)["alert_type"])
                    for _ in range(int(args.rate * args.seconds))]
            answers, offered = AlertPoster(suite.url("alert-ingestion")).offered(
                iter(plan), args.rate, args.seconds, clients=16)
            accepted = [answer[2]["alert_id"] for answer in answers if answer[1] == 201]
            rows, duplicated = settle(suite.db_url, accepted, 120)
            finished = len(rows)
            headers = {"Authorization": f"Bearer {next(iter(tokens.values()))}"}
            reads = {}
            for _ in range(50):
                for path, name in (("/api/v1/incidents?limit=50", "incident-management"),
                                   ("/api/v1/notifications", "notification"),
                                   ("/api/v1/oncall/current", "oncall")):
                    status = requests.get(webs[name].url + path, headers=headers, timeout=10).status_code
                    reads[str(status)] = reads.get(str(status), 0) + 1
            pools = {key: int(value) for key, value in bouncer.show("POOLS", suite.name).items()
                     if key in ("cl_active", "cl_waiting", "sv_active", "sv_idle", "maxwait")}
            stats = {key: int(value) for key, value in bouncer.show("STATS", suite.name).items()
                     if key in ("total_xact_count", "total_query_count")}
        finally:
            for process in reversed(processes):
                process.stop()
    result = {"bench": "bench/pgbouncer_split.py",
              "at": datetime.now(UTC).isoformat(timespec="seconds"), "git_commit": git_commit(),
              "cores": os.cpu_count(), "load_average": os.getloadavg(),
              "pool_mode": "transaction", "server_pool": args.pool, "offered": offered,
              "accepted": len(accepted), "done": finished, "lost": len(accepted) - finished,
              "duplicated": duplicated, "reads_through_pgbouncer": reads, "pgbouncer_pools": pools,
              "pgbouncer_stats": stats}
    out = REPO / "bench" / "results" / f"pgbouncer_split-{datetime.now(UTC):%Y-%m-%dT%H%M%S%z}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
