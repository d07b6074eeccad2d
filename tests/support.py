"""Real servers for tests: throw-away PostgreSQL and RabbitMQ instances a test may stop and
start, and the services themselves as gunicorn subprocesses. Never touches the machine's shared
PostgreSQL or RabbitMQ processes."""
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pika
import requests

REPO = Path(__file__).resolve().parents[1]
SERVICE_MODULES = {
    "alert-ingestion": "alert_ingestion",
    "incident-management": "incident_management",
    "oncall": "oncall",
    "notification": "notification",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _kill_group(proc: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 15) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    except ProcessLookupError:
        pass


def _as_service_user(user: str) -> list[str]:
    """Database and broker refuse to run as root: run them as their Debian system user."""
    return ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []


class ThrowawayPostgres:
    """A private PostgreSQL cluster in a temp dir, on a spare port, that a test may stop."""

    def __init__(self):
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not candidates:
            raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql")
        self.bindir = Path(candidates[-1]).parent
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="hg-pg-"))
        self.data = self.dir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool, *args):
        subprocess.run([*_as_service_user("postgres"), str(self.bindir / tool), *args],
                       check=True, capture_output=True, timeout=60)

    def start(self):
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.dir / "log"), "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        return self

    def stop(self):
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def destroy(self):
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.dir, ignore_errors=True)


class ThrowawayRabbitMQ:
    """A private RabbitMQ node (own node name, port and data dir) that a test may stop."""

    def __init__(self):
        self.port = free_port()
        self.dist_port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="hg-rmq-"))
        (self.dir / "enabled_plugins").write_text("[].\n")
        if os.geteuid() == 0:
            for path in (self.dir, self.dir / "enabled_plugins"):
                shutil.chown(path, "rabbitmq")
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"
        self.proc = None

    def start(self, timeout: float = 60):
        env = {
            **os.environ,
            "HOME": "/var/lib/rabbitmq" if os.geteuid() == 0 else str(self.dir),
            "RABBITMQ_NODENAME": f"hgtest{self.port}@localhost",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq"),
            "RABBITMQ_PID_FILE": str(self.dir / "pid"),
        }
        log = open(self.dir / "server.out", "ab")
        self.proc = subprocess.Popen(
            [*_as_service_user("rabbitmq"), "/usr/lib/rabbitmq/bin/rabbitmq-server"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_for(lambda: port_open(self.port), timeout, 0.2, "throw-away RabbitMQ to listen")
        return self

    def stop(self):
        if self.proc is not None:
            _kill_group(self.proc, signal.SIGKILL)  # a crash, as far as clients can tell
            self.proc = None
        wait_for(lambda: not port_open(self.port), 10, 0.1, "throw-away RabbitMQ to stop")

    def destroy(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class ServiceProcess:
    """One of the four services under gunicorn, exactly as `make up` and the image run it."""

    def __init__(self, name: str, env: dict, *, workers: int = 1, port: int | None = None):
        self.name = name
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics_dir = tempfile.mkdtemp(prefix=f"hg-metrics-{name}-")
        self.log_path = Path(tempfile.mkstemp(prefix=f"hg-{name}-", suffix=".log")[1])
        self.env = {**os.environ, **env, "PORT": str(self.port), "BIND_HOST": "127.0.0.1",
                    "GUNICORN_WORKERS": str(workers),
                    "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir}
        self.proc = None

    def start(self, *, wait_healthy: bool = True, timeout: float = 30):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:healthguard.gunicorn_conf",
             f"{SERVICE_MODULES[self.name]}.app:create_app()"],
            cwd=REPO / "services", env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        wait_for(self._answers if not wait_healthy else self.healthy, timeout, 0.1,
                 f"{self.name} to start (log: {self.log_path})")
        return self

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited: {self.log()}")
        return port_open(self.port)

    def healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited: {self.log()}")
        try:
            return requests.get(self.url + "/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self):
        """SIGKILL the whole process group: master and workers die without cleanup."""
        _kill_group(self.proc, signal.SIGKILL)

    def stop(self):
        if self.proc is not None:
            _kill_group(self.proc, signal.SIGTERM)
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        self.log_path.unlink(missing_ok=True)


def drain_queue(rabbitmq_url: str, queue: str) -> list[tuple[dict, "pika.BasicProperties"]]:
    """Every message now on `queue` (decoded JSON body and properties), removed from it."""
    import json
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = connection.channel()
    channel.queue_declare(queue, durable=True)
    messages = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        messages.append((json.loads(body), properties))
    connection.close()
    return messages


@contextlib.contextmanager
def pipeline(service_env: dict, *, incident_env: dict | None = None, incident_workers: int = 1):
    """On-call, alert ingestion and incident management running together (the alert path)."""
    started = []
    try:
        oncall = ServiceProcess("oncall", service_env).start()
        started.append(oncall)
        ingestion = ServiceProcess("alert-ingestion", service_env).start()
        started.append(ingestion)
        incidents = ServiceProcess("incident-management", {
            **service_env, "ONCALL_URL": oncall.url, **(incident_env or {})},
            workers=incident_workers).start()
        started.append(incidents)
        yield {"oncall": oncall, "ingestion": ingestion, "incidents": incidents}
    finally:
        for service in started:
            service.stop()


def make_incident(db, *, assigned_to=None, status="ASSIGNED", patient_id="P001",
                  alert_type="HEART_RATE_HIGH") -> int:
    """An incident in `status` (and the alert it comes from), assigned to `assigned_to` if given,
    written straight to the database for tests that need one without running the alert path."""
    with db.transaction() as cur:
        cur.execute("""
            INSERT INTO alerts (patient_id, alert_type, severity, category, room, occurred_at)
            SELECT p.patient_id, t.alert_type, t.severity, t.category, p.room, now()
            FROM patients p, alert_types t WHERE p.patient_id = %s AND t.alert_type = %s
            RETURNING alert_id, severity, category, room""", (patient_id, alert_type))
        alert = cur.fetchone()
        cur.execute("""
            INSERT INTO incidents (alert_id, patient_id, alert_type, severity, category, room, title,
                                   status, assigned_to, assigned_at)
            VALUES (%(alert_id)s, %(patient_id)s, %(alert_type)s, %(severity)s, %(category)s, %(room)s,
                    %(severity)s || ': ' || %(alert_type)s, %(status)s, %(assigned_to)s,
                    CASE WHEN %(assigned_to)s::text IS NOT NULL THEN now() END)
            RETURNING incident_id""", {**alert, "patient_id": patient_id, "alert_type": alert_type,
                                       "status": status, "assigned_to": assigned_to})
        incident_id = cur.fetchone()["incident_id"]
        if assigned_to:
            cur.execute("""
                INSERT INTO incident_assignments (incident_id, employee_id, reason)
                VALUES (%s, %s, 'AUTO')""", (incident_id, assigned_to))
    return incident_id
