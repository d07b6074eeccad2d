"""The platform foundation: migrations, seed data, health, metrics across workers."""
import concurrent.futures
import glob
import json
import os
import re
import subprocess
import sys
import uuid

import psycopg2
import pytest
import requests
from psycopg2 import sql

from healthguard.migrate import create_database, default_migrations_dir, migrate, migration_files
from healthguard.passwords import verify_password
from healthguard.worker import run as run_worker
from tests.support import (
    REPO,
    SERVICE_MODULES,
    ThrowawayPostgres,
    ThrowawayRabbitMQ,
    free_port,
    wait_for,
)


@pytest.fixture
def scratch_database(postgres_admin_url):
    """An empty database, dropped after the test."""
    name = f"hg_scratch_{uuid.uuid4().hex[:10]}"
    url = postgres_admin_url.rsplit("/", 1)[0] + "/" + name
    yield name, url
    admin = psycopg2.connect(postgres_admin_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    admin.close()


def count(url, query):
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(query)
        return cur.fetchone()[0]


def test_migrations_create_database_and_are_idempotent(scratch_database):
    name, url = scratch_database
    assert create_database(url) is True
    assert create_database(url) is False
    first = migrate(url)
    assert first == [path.stem for path in migration_files(default_migrations_dir())]
    assert first[:2] == ["0001_schema", "0002_seed"]
    assert migrate(url) == []  # a second run applies nothing and fails on nothing
    assert count(url, "SELECT count(*) FROM employees") == 25  # 24 clinical + the privacy officer (0020)


def test_migrations_are_safe_when_several_copies_start_at_once(scratch_database):
    name, url = scratch_database
    create_database(url)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: migrate(url), range(4)))
    applied = sorted(version for result in results for version in result)
    expected = [path.stem for path in migration_files(default_migrations_dir())]
    assert applied == expected  # each applied exactly once, by one of the copies
    assert count(url, "SELECT count(*) FROM schema_migrations") == len(expected)
    # 33 seeded + UNMAPPED_DEVICE_ALARM (0009) + DEVICE_SILENT (0020)
    assert count(url, "SELECT count(*) FROM alert_types") == 35


def test_seed_data(db):
    with db.transaction() as cur:
        cur.execute("SELECT role, count(*) AS n FROM employees GROUP BY role")
        roles = {row["role"]: row["n"] for row in cur.fetchall()}
        cur.execute("SELECT count(*) AS n FROM patients WHERE status = 'ADMITTED' AND room <> ''")
        patients = cur.fetchone()["n"]
        cur.execute("SELECT alert_type, routes_to FROM alert_types")
        alert_types = {row["alert_type"]: row["routes_to"] for row in cur.fetchall()}
        cur.execute("SELECT severity FROM escalation_policies ORDER BY severity")
        policies = [row["severity"] for row in cur.fetchall()]
    assert sum(roles.values()) == 25 and roles["PRIVACY_OFFICER"] == 1  # PRV01 (0020)
    assert roles["NURSE"] == 6 and roles["EMERGENCY_DOCTOR"] == 4 and roles["BIOMEDICAL_ENGINEER"] == 2
    assert patients == 8
    assert len(alert_types) == 35  # 33 seeded + UNMAPPED_DEVICE_ALARM (0009) + DEVICE_SILENT (0020)
    assert alert_types["CARDIAC_ARREST"][:2] == ["EMERGENCY_DOCTOR", "CARDIOLOGIST"]
    assert alert_types["EQUIPMENT_MALFUNCTION"][0] == "BIOMEDICAL_ENGINEER"
    assert set(policies) == {"CRITICAL", "HIGH", "MEDIUM", "LOW"}


def test_no_password_is_stored_in_clear(db, database_url):
    with db.transaction() as cur:
        cur.execute("SELECT employee_id, password_hash FROM employees")
        rows = cur.fetchall()
    hashes = [row["password_hash"] for row in rows]
    assert all(h.startswith("$argon2id$") for h in hashes)  # the demo profile's (tests/conftest.py)
    assert len({h.split("$")[4] for h in hashes}) == len(hashes), "every hash has its own salt"
    assert verify_password("password123", hashes[0]) and not verify_password("password124", hashes[0])
    # Nowhere in the whole database does the demo password appear in clear.
    dump = count(database_url, """
        SELECT count(*) FROM employees e
        WHERE row_to_json(e)::text LIKE '%password123%'""")
    assert dump == 0


@pytest.mark.parametrize("name", list(SERVICE_MODULES))
def test_each_service_starts_ready_with_json_errors(start_service, name):
    service = start_service(name)
    health = requests.get(service.url + "/health", timeout=5)
    assert (health.status_code, health.json()) == (200, {"status": "ok", "service": name})
    ready = requests.get(service.url + "/ready", timeout=5)
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    expected = {"database": {"status": "up"}, "broker": {"status": "up"}}
    if name == "oncall":  # it never uses the broker
        del expected["broker"]
    assert ready.json()["checks"] == expected
    missing = requests.get(service.url + "/no/such/route", timeout=5)
    assert missing.status_code == 404
    assert missing.headers["Content-Type"].startswith("application/json")
    assert missing.json()["error"] == "Not Found"
    assert re.fullmatch(r"[0-9a-f]{32}", missing.headers["X-Request-ID"])
    metrics = requests.get(service.url + "/metrics", timeout=5).text
    served = re.search(rf'http_requests_total{{method="GET",route="unmatched",service="{name}",'
                       rf'status="404"}} ([0-9.]+)', metrics)
    assert served and float(served.group(1)) == 1.0


def test_service_refuses_to_start_without_required_settings(service_env, tmp_path):
    from tests.support import ServiceProcess
    env = {k: v for k, v in service_env.items() if k != "DATABASE_URL"}
    proc = ServiceProcess("oncall", {**env, "DATABASE_URL": ""})
    try:
        with pytest.raises(RuntimeError, match="missing required setting.*DATABASE_URL"):
            proc.start(timeout=20)
    finally:
        proc.stop()


def test_service_refuses_to_start_with_a_placeholder_secret(service_env):
    from tests.support import ServiceProcess
    proc = ServiceProcess("oncall", {**service_env, "SERVICE_TOKEN": "change-me"})
    try:
        with pytest.raises(RuntimeError, match="SERVICE_TOKEN still hold the placeholder 'change-me'"):
            proc.start(timeout=20)
    finally:
        proc.stop()


def test_ready_reports_database_down_without_its_address_and_recovers(start_service, rabbitmq_url):
    pg = ThrowawayPostgres().start()
    try:
        service = start_service("incident-management", env={"DATABASE_URL": pg.url,
                                                             "RABBITMQ_URL": rabbitmq_url})
        pg.stop()
        down = requests.get(service.url + "/ready", timeout=15)
        assert down.status_code == 503
        body = down.json()
        assert body["status"] == "unavailable" and body["down"] == ["database"]
        assert body["checks"] == {"database": {"status": "down", "error": "database unreachable"},
                                  "broker": {"status": "up"}}
        # The public answer names the part; where it lives and the driver's words go to the log.
        assert str(pg.port) not in down.text and "127.0.0.1" not in down.text
        wait_for(lambda: "readiness check failed" in service.log() and str(pg.port) in service.log(),
                 10, what="the detail to be logged")
        # Liveness asks no dependency: the process answers, nothing should restart it.
        assert requests.get(service.url + "/health", timeout=5).status_code == 200
        pg.start()
        wait_for(service.ready, 15, what="/ready to return to 200")
    finally:
        pg.destroy()


def test_ready_needs_the_broker_where_the_work_does(start_service):
    rabbit = ThrowawayRabbitMQ().start()
    try:
        incidents = start_service("incident-management", env={"RABBITMQ_URL": rabbit.url})
        ingestion = start_service("alert-ingestion", env={"RABBITMQ_URL": rabbit.url})
        oncall = start_service("oncall", env={"RABBITMQ_URL": rabbit.url})
        rabbit.stop()
        down = requests.get(incidents.url + "/ready", timeout=15)
        assert down.status_code == 503
        assert down.json()["down"] == ["broker"]
        assert down.json()["checks"]["broker"] == {"status": "down", "error": "broker unreachable"}
        # Alert ingestion keeps accepting alarms into its outbox: degraded, still ready.
        degraded = requests.get(ingestion.url + "/ready", timeout=15)
        assert degraded.status_code == 200
        assert degraded.json()["status"] == "degraded" and degraded.json()["down"] == ["broker"]
        assert requests.get(oncall.url + "/ready", timeout=15).json()["status"] == "ok"
        rabbit.start()
        wait_for(lambda: requests.get(ingestion.url + "/ready", timeout=15).json()["status"] == "ok",
                 30, what="alert ingestion to be fully ready again")
        wait_for(incidents.ready, 30, what="incident management to be ready again")
    finally:
        rabbit.destroy()


def test_metrics_sum_counters_from_several_gunicorn_workers(start_service):
    service = start_service("incident-management", workers=2)
    total = 0
    # Keep asking until both workers have answered (each writes its own counter file).
    def both_workers_served():
        nonlocal total
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            total += sum(1 for r in pool.map(
                lambda _: requests.get(service.url + "/no-such-page", timeout=5), range(40))
                if r.status_code == 404)
        # Web workers' files are named by pid (the worker process's are not).
        return len(glob.glob(os.path.join(service.metrics_dir, "counter_[0-9]*.db"))) >= 2
    wait_for(both_workers_served, 30, 0, "two workers to serve requests")
    text = requests.get(service.url + "/metrics", timeout=5).text
    match = re.search(r'http_requests_total\{method="GET",route="unmatched",'
                      r'service="incident-management",status="404"\} ([0-9.]+)', text)
    assert match and float(match.group(1)) == total


def test_database_pool_recovers_after_a_server_restart_with_one_failure():
    """After PostgreSQL restarts, every pooled connection is dead: the first transaction fails
    (the caller answers 503), and the pool is renewed so the next one works."""
    from healthguard.db import Database
    pg = ThrowawayPostgres().start()
    database = Database(pg.url, maxconn=4)
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:  # four connections, all kept idle
            list(pool.map(lambda _: _select_one(database), range(8)))
        pg.stop()
        pg.start()
        with pytest.raises((psycopg2.OperationalError, psycopg2.InterfaceError)):
            _select_one(database)
        assert [_select_one(database) for _ in range(4)] == [1, 1, 1, 1]
    finally:
        database.close()
        pg.destroy()


def test_a_prepared_statement_is_planned_once_per_connection_and_again_after_a_server_restart():
    from healthguard.db import Database, Prepared
    pg = ThrowawayPostgres().start()
    database = Database(pg.url, maxconn=1)
    doubled = Prepared("doubled", "SELECT %(n)s::int * 2 AS doubled, '100%%' AS share, %(n)s::int AS n")

    def run(n: int) -> dict:
        with database.autocommit() as cur:
            doubled.execute(cur, {"n": n})
            return cur.fetchone()

    def prepared_here() -> list[str]:
        with database.autocommit() as cur:
            cur.execute("SELECT name FROM pg_prepared_statements")
            return [row["name"] for row in cur.fetchall()]
    try:
        assert [run(1), run(2)] == [{"doubled": 2, "share": "100%", "n": 1},
                                    {"doubled": 4, "share": "100%", "n": 2}]
        assert prepared_here() == ["doubled"]  # one connection: prepared once, run twice
        pg.stop()
        pg.start()
        with pytest.raises((psycopg2.OperationalError, psycopg2.InterfaceError)):
            run(3)  # the pooled connection died with the server
        # A new connection knows no prepared statement: it is prepared on it again.
        assert run(4) == {"doubled": 8, "share": "100%", "n": 4}
        assert prepared_here() == ["doubled"]
    finally:
        database.close()
        pg.destroy()


def _select_one(database):
    with database.transaction() as cur:
        cur.execute("SELECT 1 AS one, pg_sleep(0.05)")
        return cur.fetchone()["one"]


def _relayed(service) -> float:
    text = requests.get(service.url + "/metrics", timeout=5).text
    match = re.search(r'^outbox_messages_relayed_total\{queue="alerts\.critical"\} ([0-9.]+)$', text,
                      re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def _post_alert(service) -> None:
    answer = requests.post(service.url + "/api/v1/alerts", headers={"X-API-Key": "test-device-key"},
                           json={"patient_id": "P001", "alert_type": "CARDIAC_ARREST"}, timeout=10)
    assert answer.status_code == 201, answer.text


def test_worker_counts_show_in_the_service_metrics_and_survive_a_web_restart(start_service):
    """The outbox relay runs in the worker process; the web process's /metrics sums its counter.
    A restart of the web server wipes its own workers' files, never the running worker's."""
    service = start_service("alert-ingestion")
    _post_alert(service)
    wait_for(lambda: _relayed(service) == 1, 15, what="the worker's relay count in /metrics")
    beat = re.search(r"^worker_heartbeat_timestamp_seconds ([0-9.e+]+)$",
                     requests.get(service.url + "/metrics", timeout=5).text, re.MULTILINE)
    assert beat and float(beat.group(1)) > 0  # the worker's beat, for the WorkerStalled alert
    service.stop_web()
    service.start_web()
    assert _relayed(service) == 1
    _post_alert(service)
    wait_for(lambda: _relayed(service) == 2, 15, what="the worker to keep counting visibly")
    # SIGTERM: the worker stops its tasks, says so in a JSON log line and exits 0.
    assert service.stop_worker() == 0
    stopping = [line for line in service.log().splitlines() if '"worker stopping"' in line]
    assert stopping and json.loads(stopping[-1])["service"] == "alert-ingestion"
    assert not service.heartbeat.exists()


def test_a_worker_with_its_own_metrics_port_serves_its_counters_without_the_web_process(start_service):
    """Kubernetes runs the worker in a pod of its own, where no web process sums its files:
    WORKER_METRICS_PORT makes the worker answer Prometheus itself."""
    port = free_port()
    service = start_service("alert-ingestion", env={"WORKER_METRICS_PORT": str(port),
                                                    "WORKER_METRICS_ADDRESS": "127.0.0.1"})
    _post_alert(service)
    service.stop_web()  # as in its own pod: nothing but the worker answers

    def worker_metrics() -> str:
        try:
            return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        except requests.RequestException:
            return ""

    relayed = r'^outbox_messages_relayed_total\{queue="alerts\.critical"\} 1\.0$'
    wait_for(lambda: re.search(relayed, worker_metrics(), re.MULTILINE), 15,
             what="the relay's count on the worker's own metrics port")
    beat = re.search(r"^worker_heartbeat_timestamp_seconds ([0-9.e+]+)$", worker_metrics(), re.MULTILINE)
    assert beat and float(beat.group(1)) > 0


def test_a_worker_refuses_a_metrics_port_that_is_not_a_port(service_env, tmp_path):
    """A bad value stops the worker at start with a message naming the setting."""
    env = {**os.environ, **service_env, "WORKER_METRICS_PORT": "90000",
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
           "WORKER_HEARTBEAT_FILE": str(tmp_path / "beat")}
    result = subprocess.run([sys.executable, "-m", "healthguard.worker", "oncall"], env=env,
                            cwd=REPO / "services", capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "WORKER_METRICS_PORT" in result.stderr


class _Task:
    def __init__(self, *, dies=False):
        self.dies, self.started, self.stopped = dies, False, False

    def start(self):
        self.started = True
        return self

    def is_alive(self):
        return self.started and not self.dies

    def stop(self):
        self.stopped = True


def test_worker_run_stops_its_tasks_and_exits_1_when_one_died(tmp_path):
    """A task whose thread ended on its own will not come back: exit 1, so the supervisor
    restarts the worker; the other tasks are stopped first and the heartbeat is gone."""
    import threading
    healthy, dead = _Task(), _Task(dies=True)
    heartbeat = tmp_path / "beat"
    assert run_worker([healthy, dead], heartbeat=str(heartbeat), stopping=threading.Event()) == 1
    assert healthy.stopped and dead.stopped and not heartbeat.exists()
    stopping = threading.Event()
    stopping.set()
    assert run_worker([_Task()], heartbeat=str(heartbeat), stopping=stopping) == 0
