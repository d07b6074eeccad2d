"""What the benchmarks share: a suite of the services on its own database and RabbitMQ vhost
(created, migrated, started, and dropped at the end whatever happens), the pgbench reference,
signing the seeded staff in, device alarms posted from keep-alive clients (as fast as they go,
or paced at an offered rate), WebSocket frames read by one thread, and percentiles.

Nothing here asserts: the benchmarks print and write figures (speed lives in bench/, never in
the tests)."""
import concurrent.futures
import contextlib
import http.client
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
for _path in (str(REPO / "services"), str(REPO)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import psycopg2  # noqa: E402
import requests  # noqa: E402

from healthguard.migrate import migrate  # noqa: E402
from tests.reach_edges import vapid_key_pair  # noqa: E402
from tests.support import ServiceProcess, rabbitmqctl  # noqa: E402

RESULTS = REPO / "bench" / "results"
DEVICE_KEY = "bench-device-key"
PASSWORD = "password123"  # noqa: S105 (the seeded demo staff's documented password)
ADMIN_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# The notification service as the Procfile and compose run it: one web worker, a thread per socket.
NOTIFICATION_ENV = {"GUNICORN_WORKERS": "1", "GUNICORN_THREADS": "1100"}  # and the services' worker class
# Web Push to the bench's local push service (bench/push_latency.py): a key pair of this run.
VAPID_PRIVATE_KEY, VAPID_PUBLIC_KEY = vapid_key_pair()
NOTIFICATION_ENV.update({"VAPID_PRIVATE_KEY": VAPID_PRIVATE_KEY, "VAPID_PUBLIC_KEY": VAPID_PUBLIC_KEY,
                         "VAPID_SUBJECT": "mailto:bench@hospital.example", "PUSH_ALLOW_LOCAL_HTTP": "true"})


def percentile(values, q):
    """Nearest-rank percentile (q in 0..100) of a non-empty list; None for an empty one."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def admin_url() -> str:
    return os.environ.get("ADMIN_DATABASE_URL", ADMIN_DATABASE_URL)


def database_url(admin: str, name: str) -> str:
    return urlunsplit(urlsplit(admin)._replace(path="/" + name))


def connect(url: str, *, patience: float = 120):
    """A connection; while the shared server has no free slot ("too many clients", other work on
    the machine), asked again for up to `patience` seconds."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return psycopg2.connect(url)
        except psycopg2.OperationalError as exc:
            if "too many clients" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(2)


def execute(url: str, sql: str, params=None, *, fetch: bool = False):
    """One statement on its own autocommit connection (CREATE/DROP DATABASE need one)."""
    conn = connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if fetch else None
    finally:
        conn.close()


def git_commit() -> str | None:
    """HEAD, with "-dirty" when the work tree has uncommitted changes to tracked files."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                                 capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if changed else "")


@contextlib.contextmanager
def terminated_as_interrupt():
    """SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so every `finally` cleans up; so does
    SIGINT even where it was ignored at start (a command started in the background by a shell)."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def pgbench_reference(seconds: int = 10, clients: int = 8) -> dict | None:
    """pgbench -N (no updates of the small tables, so no contention between clients) with
    `clients` clients for `seconds`, on a throw-away database of its own on the same server: how
    fast this machine writes at the moment. None when pgbench is not installed."""
    if not shutil.which("pgbench"):
        return None
    admin = admin_url()
    name = f"hg_bench_pgbench_{uuid.uuid4().hex[:10]}"
    url = database_url(admin, name)
    execute(admin, f'CREATE DATABASE "{name}"')
    try:
        subprocess.run(["pgbench", "-i", "-q", "-s", "1", url], check=True, capture_output=True, timeout=120)
        threads = str(min(clients, os.cpu_count() or 1))
        out = subprocess.run(["pgbench", "-N", "-c", str(clients), "-j", threads, "-T", str(seconds), url],
                             check=True, capture_output=True, text=True, timeout=seconds + 60).stdout
    finally:
        execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    tps = re.search(r"tps = ([0-9.]+)", out)
    latency = re.search(r"latency average = ([0-9.]+) ms", out)
    return {"command": f"pgbench -N -c {clients} -T {seconds}", "database": name, "clients": clients,
            "seconds": seconds,
            "tps": float(tps.group(1)) if tps else None,
            "latency_avg_ms": float(latency.group(1)) if latency else None}


class Suite:
    """The services on a database and vhost of their own, as `make up` runs them (web process
    under gunicorn with the services' own worker counts, and the worker process beside it):

        with Suite(prepare=...) as suite:
            suite.start("oncall", "alert-ingestion", ...)

    `prepare(db_url)` runs after migrating, before any service starts. On leaving (an error,
    Ctrl-C, SIGTERM too), every process is stopped and the database and vhost are dropped."""

    def __init__(self, *, prepare=None, env: dict | None = None, tag: str = "suite"):
        self.admin = admin_url()
        self.name = f"hg_bench_{tag}_{uuid.uuid4().hex[:8]}"
        self.db_url = database_url(self.admin, self.name)
        self.rabbitmq_url = f"amqp://guest:guest@127.0.0.1:5672/{self.name}"
        self.prepare = prepare
        self.env = {"DATABASE_URL": self.db_url, "RABBITMQ_URL": self.rabbitmq_url,
                    "SERVICE_TOKEN": uuid.uuid4().hex, "DEVICE_API_KEYS": DEVICE_KEY,
                    "DEVICE_ALERTS_PER_SECOND": "1000000",  # one key for the whole load
                    "ONCALL_URL": "http://127.0.0.1:9", "WEB_ORIGIN": "http://localhost:8080",
                    "HOSPITAL_TZ": "Europe/London", "LOG_LEVEL": "WARNING", **(env or {})}
        self.services: dict[str, ServiceProcess] = {}
        self._created = {"database": False, "vhost": False}
        self._signals = terminated_as_interrupt()

    def __enter__(self):
        self._signals.__enter__()
        try:
            execute(self.admin, f'CREATE DATABASE "{self.name}"')
            self._created["database"] = True
            rabbitmqctl("add_vhost", self.name)
            self._created["vhost"] = True
            rabbitmqctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")
            migrate(self.db_url, demo=True)  # the seeded staff sign in with the demo password
            if self.prepare:
                self.prepare(self.db_url)
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    @property
    def service_token(self) -> str:
        return self.env["SERVICE_TOKEN"]

    def start(self, *names: str, timeout: float = 90) -> None:
        """Start services in order (incident management is told where on-call answers)."""
        for name in names:
            env = dict(self.env)
            if name == "notification":
                env.update(NOTIFICATION_ENV)
            if name == "incident-management" and "oncall" in self.services:
                env["ONCALL_URL"] = self.services["oncall"].url
            service = ServiceProcess(name, env, workers=None)
            self.services[name] = service
            service.start(timeout=timeout)

    def url(self, name: str) -> str:
        return self.services[name].url

    def keep_logs(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name, service in self.services.items():
            if service.log_path.exists():
                shutil.copy(service.log_path, directory / f"{name}.log")

    def __exit__(self, *exc):
        try:
            for service in reversed(list(self.services.values())):
                with contextlib.suppress(Exception):
                    service.stop()
            if self._created["database"]:
                execute(self.admin, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            if self._created["vhost"]:
                rabbitmqctl("delete_vhost", self.name)
        finally:
            self._signals.__exit__(*exc)
        return False


def metric_total(service_url: str, name: str) -> float:
    """A counter of the service's /metrics summed over all its labels (0 when it has none)."""
    text = requests.get(service_url + "/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith((name + " ", name + "{")))


def registered_device_key(db_url: str, name: str = "bench monitor") -> str:
    """The key of a new device of the registry, unscoped: what a hospital's monitors post with.
    DEVICE_KEY, the bootstrap key of the demo profile, is checked in the process; a registered
    key costs a lookup (healthguard.auth.device_for_key) on every alarm."""
    from alert_ingestion.devices import register_device
    from healthguard.db import Database
    db = Database(db_url, maxconn=1)
    try:
        with db.transaction() as cur:
            return register_device(cur, name=name, ward=None, patient_id=None, created_by="D01")[1]
    finally:
        db.close()


def sign_everyone_in(oncall_url: str, db_url: str) -> dict[str, str]:
    """Every seeded clinician signs in through the on-call service (who is on duty now takes the
    alarms): employee_id -> session token."""
    rows = execute(db_url, "SELECT employee_id, login FROM employees ORDER BY employee_id", fetch=True)
    tokens = {}
    for employee_id, login in rows:
        answer = requests.post(oncall_url + "/api/v1/auth/login", json={"login": login, "password": PASSWORD},
                               timeout=30)
        answer.raise_for_status()
        tokens[employee_id] = answer.json()["token"]
    return tokens


def catalogue(ingest_url: str, api_key: str = DEVICE_KEY) -> tuple[list[str], list[dict]]:
    """The ids of the admitted patients in the device's scope and the alert types, as a device
    reads them (its beds: GET /devices/me; patient records need a clinician's session)."""
    headers = {"X-API-Key": api_key}
    types = requests.get(ingest_url + "/api/v1/alert-types", headers=headers, timeout=10)
    patients = requests.get(ingest_url + "/api/v1/devices/me", headers=headers, timeout=10)
    if types.status_code != 200 or patients.status_code != 200:
        sys.exit(f"cannot read the catalogue: {types.status_code} {patients.status_code} (wrong key?)")
    return [p["patient_id"] for p in patients.json()["patients"]], types.json()["alert_types"]


class AlertPoster:
    """Device alarms posted through the public API, one keep-alive session per client thread.
    Each answer is (alarm, status or None, alert JSON or None, seconds taken, wall time answered,
    error text or None)."""

    def __init__(self, ingest_url: str, api_key: str = DEVICE_KEY):
        # http.client rather than requests: a fifth of the client's CPU per request, which on a
        # shared 2-core machine is taken from the services being measured.
        parts = urlsplit(ingest_url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.path = parts.path.rstrip("/") + "/api/v1/alerts"
        self.headers = {"X-API-Key": api_key, "Content-Type": "application/json"}
        self.local = threading.local()

    def _send(self, body: bytes) -> tuple[int, bytes]:
        for attempt in (1, 2):
            conn = getattr(self.local, "conn", None)
            reused = conn is not None
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                conn.request("POST", self.path, body, self.headers)
                answer = conn.getresponse()
                return answer.status, answer.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                self.local.conn = None
                # The server closed an idle keep-alive connection: sent again on a new one (the
                # alarm's source_alarm_id makes a repeat harmless).
                if not reused or attempt == 2:
                    raise
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                raise
        raise AssertionError("unreachable")

    def post(self, alarm: tuple[str, str]):
        patient_id, alert_type = alarm
        body = json.dumps({"patient_id": patient_id, "alert_type": alert_type, "device_id": "BENCH",
                           "source_alarm_id": uuid.uuid4().hex, "source": "SIMULATOR"}).encode()
        started = time.perf_counter()
        try:
            status, data = self._send(body)
        except (OSError, http.client.HTTPException) as exc:
            return alarm, None, None, time.perf_counter() - started, time.time(), repr(exc)
        elapsed, answered = time.perf_counter() - started, time.time()
        if status != 201:
            return alarm, status, None, elapsed, answered, data[:200].decode(errors="replace")
        return alarm, 201, json.loads(data), elapsed, answered, None

    def as_fast_as_possible(self, alarms, clients: int, *, seconds: float | None = None):
        """Every alarm of `alarms` from `clients` threads, each posting its next as soon as the
        last is answered; with `seconds`, stops taking new ones after that long. Returns the
        answers and the wall time taken."""
        source = iter(alarms)
        lock = threading.Lock()
        answers = []
        deadline = time.monotonic() + seconds if seconds else None

        def client():
            mine = []
            while deadline is None or time.monotonic() < deadline:
                with lock:
                    alarm = next(source, None)
                if alarm is None:
                    break
                mine.append(self.post(alarm))
            with lock:
                answers.extend(mine)

        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            for future in [pool.submit(client) for _ in range(clients)]:
                future.result()
        return answers, time.perf_counter() - started

    def offered(self, alarms, rate: float, seconds: float, clients: int, *, hold=None, on_answer=None):
        """Open-loop load: one alarm every 1/`rate` seconds for `seconds`, whatever the answers
        take, with at most `clients` in flight (past that the offer waits: it is "up to" `rate`).
        `hold()` true pauses the offer (a bounded backlog). Returns the answers and how many were
        offered."""
        source = iter(alarms)
        futures = []
        free = threading.BoundedSemaphore(clients)

        def answered(future):
            free.release()
            if on_answer is not None:
                on_answer(future.result())

        started = time.monotonic()
        next_at = started
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            while time.monotonic() - started < seconds:
                if hold is not None and hold():
                    time.sleep(0.05)
                    next_at = time.monotonic()
                    continue
                now = time.monotonic()
                if next_at > now:
                    time.sleep(next_at - now)
                if not free.acquire(timeout=0.05):
                    next_at = max(next_at, time.monotonic() - 1.0)  # behind: no catching-up burst
                    continue
                alarm = next(source, None)
                if alarm is None:
                    free.release()
                    break
                future = pool.submit(self.post, alarm)
                future.add_done_callback(answered)
                futures.append(future)
                next_at += 1.0 / rate
            answers = [future.result() for future in futures]
        return answers, len(futures)


class FrameReader:
    """Many WebSockets read by one thread through a selector; `on_frame(ws, message, arrived)`
    gets each text frame (JSON decoded) with its wall-clock arrival time."""

    def __init__(self, on_frame):
        import websocket
        self._websocket = websocket
        self.on_frame = on_frame
        self.selector = selectors.DefaultSelector()
        self.closed = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def add(self, ws):
        with self._lock:
            self.selector.register(ws.sock, selectors.EVENT_READ, ws)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(10)

    def _run(self):
        websocket = self._websocket
        while not self._stop.is_set():
            for key, _ in self.selector.select(0.2):  # epoll: registering meanwhile is safe
                ws = key.data
                try:  # control frames too: after a ping, do not block waiting for the next frame
                    opcode, frame = ws.recv_data_frame(control_frame=True)
                except (websocket.WebSocketException, OSError):
                    self._drop(ws)
                    continue
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    self._drop(ws)
                    continue
                if opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                    self.on_frame(ws, json.loads(frame.data), time.time())

    def _drop(self, ws):
        with self._lock:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(ws.sock)
        self.closed += 1


def open_socket(ws_base: str, token: str):
    """A clinician's socket, as a program opens it (its session in the header)."""
    import websocket
    return websocket.create_connection(f"{ws_base}/ws", header=[f"Authorization: Bearer {token}"], timeout=30)


def close_sockets(sockets) -> None:
    import websocket
    for ws in sockets:
        with contextlib.suppress(websocket.WebSocketException, OSError):
            ws.close(timeout=0.2)
