"""The Compose suite for real (issue 18): docker-compose.yml, unchanged, built and started by
Compose v2 on a Docker engine, and tested from outside through its published ports (the web UI
on :8080 through nginx, Prometheus on :9090), as a developer would use it.

Run by `make compose-test` (scripts/compose-test.sh), which provides the engine (DOCKER_HOST),
Compose (HG_COMPOSE) and the images (stand-ins where upstream's cannot be pulled,
tests/compose/README.md). Not collected by the plain `pytest` run (its name is not test_*).

The tests run in file order, on two stacks of one Compose project of their own
(`hg-compose-test`, so a developer's own `healthguard-ops` project is never touched):
  - placeholders: `.env.example` as it is refuses to start anything that holds a secret;
  - demo (HG_DEMO=1): health, sign-in, alarm to WebSocket frame, Prometheus, a worker crash,
    down/up persistence, replicas;
  - real (HG_DEMO=0, fresh volumes, `--profile ha`): no demo password, create-admin, and the
    loss of the RabbitMQ node leading `alerts`.
Everything the project made (containers, networks, volumes) is removed at the end; the images
stay cached.
"""
import importlib.util
import itertools
import json
import os
import random
import re
import secrets
import shlex
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
import websocket

from tests.support import wait_for

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
COMPOSE = shlex.split(os.environ.get("HG_COMPOSE", ""))
if not COMPOSE:
    pytest.skip("run by `make compose-test` (scripts/compose-test.sh), which sets HG_COMPOSE",
                allow_module_level=True)
PROJECT = "hg-compose-test"
SKIP_GRAFANA = bool(os.environ.get("HG_COMPOSE_SKIP_GRAFANA"))
WEB = "http://127.0.0.1:8080"
WS = "ws://127.0.0.1:8080/ws"
PROMETHEUS = "http://127.0.0.1:9090"
PUBLISHED_PORTS = (8080, 9090) + (() if SKIP_GRAFANA else (3001,))
DEMO_PASSWORD = "password123"  # noqa: S105 (the documented demo password, refused outside the demo)
DEVICE_KEY = secrets.token_urlsafe(24)
# Containers that hold a secret: none may start while one is still `change-me` (issue 17).
SECRET_HOLDERS = {"postgres", "rabbitmq", "rabbitmq-2", "rabbitmq-3", "migrate", "grafana",
                  "alert-ingestion", "alert-ingestion-worker", "incident-management",
                  "incident-management-worker", "oncall", "oncall-worker", "notification",
                  "notification-worker"}
# Roles a cardiac arrest pages, in order (db/migrations/0002_seed.sql).
CARDIAC_ROLES = ("EMERGENCY_DOCTOR", "CARDIOLOGIST")
# Every seeded account (those the demo profile gives the demo password).
SEEDED_LOGINS = re.findall(r"\('([A-Z]\d\d)', '\$argon2id",
                           (REPO / "db/migrations/demo/demo_staff_passwords.sql").read_text())
# The `ha` profile's nodes; the lane of CRITICAL alarms, a quorum queue (healthguard.broker).
HA_NODES = ("rabbitmq", "rabbitmq-2", "rabbitmq-3")
CRITICAL_LANE = "alerts.critical"
UP_DEADLINE = 600  # seconds for `up --wait`: cold builds included


# --------------------------------------------------------------------------- compose
class Stack:
    """The project under one .env: `compose(...)` runs Compose v2 on it."""

    def __init__(self, env_file: Path, *, ha: bool = False):
        self.env_file, self.ha = env_file, ha

    def compose(self, *args, check=True, timeout=UP_DEADLINE, stdin=None) -> subprocess.CompletedProcess:
        # A clean environment: nothing of the caller's shell (or of `make`) fills a variable of
        # the compose file; every setting comes from the env file.
        env = {key: os.environ[key] for key in ("PATH", "HOME", "DOCKER_HOST", "DOCKER_BUILDKIT",
                                                 "COMPOSE_BAKE", "DOCKER_CONFIG", "DOCKER_CONTEXT")
               if key in os.environ}
        # `down` takes the `ha` nodes too, whichever stack made them.
        profile = ["--profile", "ha"] if self.ha or args[0] == "down" else []
        command = [*COMPOSE, "-p", PROJECT, "-f", str(COMPOSE_FILE), "--env-file", str(self.env_file),
                   *profile, *args]
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                                timeout=timeout, input=stdin)
        if check and result.returncode != 0:
            logs = ""
            if args[0] in ("up", "run"):  # what the containers said, for the failure report
                logs = subprocess.run([*command[:command.index(args[0])], "logs", "--tail", "40"],
                                      cwd=REPO, env=env, capture_output=True, text=True, timeout=120).stdout
            raise AssertionError(f"`compose {' '.join(args)}` exited {result.returncode}:\n"
                                 f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}\n{logs[-20000:]}")
        return result

    def services(self) -> list[str]:
        """Every long-running service of the file (the one-shot jobs start as dependencies);
        Grafana only where its image can be had; the `ha` nodes only with the profile."""
        names = self.compose("config", "--services").stdout.split()
        skipped = {"migrate", "check-secrets"} | ({"grafana"} if SKIP_GRAFANA else set())
        return [name for name in names if name not in skipped]

    def up(self, *, scale: dict | None = None) -> None:
        scaling = [arg for name, count in (scale or {}).items() for arg in ("--scale", f"{name}={count}")]
        self.compose("up", "-d", "--wait", "--wait-timeout", str(UP_DEADLINE), *scaling, *self.services())

    def containers(self) -> list[dict]:
        output = self.compose("ps", "-a", "--format", "json").stdout.strip()
        if output.startswith("["):
            return json.loads(output)
        return [json.loads(line) for line in output.splitlines() if line.strip()]

    def container_ids(self, service: str) -> list[str]:
        return self.compose("ps", "-a", "-q", service).stdout.split()

    def exec(self, service: str, *command, index: int = 1, check=True) -> str:
        return self.compose("exec", "-T", "--index", str(index), service, *command,
                            check=check, timeout=120).stdout

    def down(self, *, volumes: bool) -> None:
        self.compose("down", "--remove-orphans", "--timeout", "30", *(["-v"] if volumes else []))


def crash(container: str) -> None:
    """The container's main process dies of SIGKILL, as in an out-of-memory kill or a crash.

    Not `docker compose kill -s KILL`: the engine records a kill through its API as a stop by
    hand, and no restart policy restarts a container stopped by hand (moby, daemon/kill.go:
    HasBeenManuallyStopped), so that command can never show a restart. The signal is sent from
    a throw-away container in the engine's own process namespace (`--pid host`), which works
    wherever the engine runs (here, or a laptop's VM); it runs as the image's user, the same
    user as the process it kills."""
    pid = inspect(container, "{{.State.Pid}}")
    assert int(pid) > 0, f"{container} is not running"
    subprocess.run(["docker", "run", "--rm", "--pid", "host", "--network", "none",
                    "--entrypoint", "/bin/sh", "healthguard-ops/services:latest", "-c", f"kill -KILL {pid}"],
                   check=True, capture_output=True, text=True, timeout=120)


def inspect(container: str, template: str) -> str:
    """A field of a container as the engine reports it (`docker inspect -f`)."""
    return subprocess.run(["docker", "inspect", "-f", template, container], capture_output=True,
                          text=True, check=True, timeout=60).stdout.strip()


def make_env():
    """scripts/make_env.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("make_env", REPO / "scripts" / "make_env.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_env(directory: Path, *, demo: bool, placeholders: bool = False) -> Path:
    """.env.example with fresh random secrets (as scripts/make_env.py writes it, by its own
    function: a VAPID key must be a key, not any random string), or as it is."""
    text = (REPO / ".env.example").read_text()
    if not placeholders:
        text = make_env().with_fresh_secrets(text)
        text = re.sub(r"(?m)^DEVICE_API_KEYS=.*$", f"DEVICE_API_KEYS={DEVICE_KEY}", text)
    text = re.sub(r"(?m)^HG_DEMO=.*$", f"HG_DEMO={1 if demo else 0}", text)
    path = directory / ("placeholders.env" if placeholders else ("demo.env" if demo else "real.env"))
    path.write_text(text)
    path.chmod(0o600)
    return path


def port_taken(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))  # noqa: S104 (conflicts with a listener on any address)
        except OSError:
            return True
    return False


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    taken = [port for port in PUBLISHED_PORTS if port_taken(port)]
    if taken:
        pytest.fail(f"port(s) {taken} of this machine are in use, and the compose file publishes "
                    "them: stop what listens there and run `make compose-test` again")
    directory = tmp_path_factory.mktemp("compose")
    yield directory
    # Whatever state a test left: the project's containers, networks and volumes go.
    Stack(write_env(directory, demo=False, placeholders=True)).down(volumes=True)


@pytest.fixture(scope="module")
def demo(workdir):
    return Stack(write_env(workdir, demo=True))


@pytest.fixture(scope="module")
def real(workdir):
    return Stack(write_env(workdir, demo=False), ha=True)


# --------------------------------------------------------------------------- clients
def sign_in(login: str, password: str) -> requests.Response:
    return requests.post(f"{WEB}/api/v1/auth/login", json={"login": login, "password": password},
                         timeout=15)


def token_of(login: str, password: str = DEMO_PASSWORD) -> str:
    response = sign_in(login, password)
    assert response.status_code == 200, response.text
    return response.json()["token"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def get(path: str, token: str) -> requests.Response:
    return requests.get(WEB + path, headers=bearer(token), timeout=15)


def open_socket(token: str) -> websocket.WebSocket:
    """A clinician's live socket, as the SPA opens it: a one-time ticket, then /ws?ticket=."""
    response = requests.post(f"{WEB}/api/v1/ws-ticket", headers=bearer(token), timeout=15)
    assert response.status_code == 201, response.text
    return websocket.create_connection(f"{WS}?ticket={response.json()['ticket']}", timeout=5)


def frames_until(sock: websocket.WebSocket, predicate, timeout: float, what: str) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            frame = json.loads(sock.recv())
        except websocket.WebSocketTimeoutException:
            continue
        if predicate(frame):
            return frame
    raise TimeoutError(f"no WebSocket frame with {what} within {timeout}s")


def post_alarm(patient_id: str, alert_type: str, *, session=requests) -> requests.Response:
    return session.post(f"{WEB}/api/v1/alerts", headers={"X-API-Key": DEVICE_KEY},
                        json={"patient_id": patient_id, "alert_type": alert_type}, timeout=15)


class AlarmPairs:
    """(patient, alert type) pairs never sounded before on this stack: an alarm of a fresh pair
    opens an incident of its own (a repeat within the correlation window would join one)."""

    def __init__(self, token: str, severity: str | None = None):
        patients = [p["patient_id"] for p in get("/api/v1/patients", token).json()["patients"]
                    if p["status"] == "ADMITTED"]
        types = [t["alert_type"] for t in get("/api/v1/alert-types", token).json()["alert_types"]
                 if severity in (None, t["severity"])]
        # Cardiac arrests (paged to the test's clinician) are kept apart, one patient each.
        pairs = [(p, t) for p in patients for t in types if t != "CARDIAC_ARREST"]
        random.Random(18).shuffle(pairs)
        self._pairs = iter(pairs)
        self._arrests = iter(p for p in patients if p != "P001")

    def take(self, count: int) -> list[tuple[str, str]]:
        taken = list(itertools.islice(self._pairs, count))
        assert len(taken) == count, "ran out of fresh (patient, alert type) pairs"
        return taken

    def cardiac_arrest(self) -> tuple[str, str]:
        return next(self._arrests), "CARDIAC_ARREST"


class AlarmStream:
    """Devices sounding fresh alarms through nginx, one every `interval` s, in a thread, until
    stopped; remembers every alarm accepted (201) and what else was answered."""

    def __init__(self, pairs: list[tuple[str, str]], interval: float = 0.1):
        self.pairs, self.interval = pairs, interval
        self.accepted: dict[int, tuple[str, str]] = {}
        self.refused: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(60)

    def _run(self):
        session = requests.Session()
        for pair in self.pairs:
            if self._stop.is_set():
                return
            try:
                response = post_alarm(*pair, session=session)
                if response.status_code == 201:
                    self.accepted[response.json()["alert_id"]] = pair
                else:
                    self.refused.append(f"{pair}: {response.status_code} {response.text[:200]}")
            except requests.RequestException as exc:
                # A device retries an alarm it could not deliver; this one goes unaccepted (and so
                # is not owed an incident), which the test tolerates only within limits.
                self.refused.append(f"{pair}: {exc!r}")
            self._stop.wait(self.interval)

    def wait_accepted(self, count: int, timeout: float = 60):
        wait_for(lambda: len(self.accepted) >= count, timeout, 0.1, f"{count} alarms accepted")

    def wait_sent(self, timeout: float = 120):
        """Until every alarm of the stream has been sent (and answered)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the alarm stream did not end within {timeout}s"


def incidents_since(token: str, first_id: int) -> list[dict]:
    """Every incident with an id above `first_id`, as the API lists them (newest first, paged)."""
    found, cursor = [], None
    while True:
        query = "?limit=500" + (f"&cursor={cursor}" if cursor else "")
        page = get(f"/api/v1/incidents{query}", token).json()
        found += [i for i in page["incidents"] if i["incident_id"] > first_id]
        cursor = page.get("next")
        if not cursor or not page["incidents"] or page["incidents"][-1]["incident_id"] <= first_id:
            return found


def last_incident_id(token: str) -> int:
    incidents = get("/api/v1/incidents?limit=1", token).json()["incidents"]
    return incidents[0]["incident_id"] if incidents else 0


def assert_one_incident_per_alarm(token: str, accepted: dict[int, tuple[str, str]], first_id: int,
                                  timeout: float = 120) -> None:
    """Every accepted alarm became an incident, and exactly one: its own (each alarm is of a
    fresh pair), with no second incident for any of them."""
    def incident_of(alert_id):
        body = get(f"/api/v1/alerts/{alert_id}", token).json()
        return body["incident_id"]

    pending = dict(accepted)
    incident_for: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for alert_id in list(pending):
            incident_id = incident_of(alert_id)
            if incident_id is not None:
                incident_for[alert_id] = incident_id
                del pending[alert_id]
        if pending:
            time.sleep(0.5)
    assert not pending, f"{len(pending)} accepted alarms never became an incident: {sorted(pending)[:10]}"
    assert len(set(incident_for.values())) == len(accepted), "two alarms of fresh pairs share an incident"

    def all_listed():
        listed = incidents_since(token, first_id)
        return listed if {i["incident_id"] for i in listed} >= set(incident_for.values()) else None
    listed = wait_for(all_listed, 30, 0.5, "every alarm's incident to be listed")
    ours = [i for i in listed if (i["patient_id"], i["alert_type"]) in set(accepted.values())]
    assert len(ours) == len(accepted), (
        f"{len(ours)} incidents for {len(accepted)} alarms: an alarm was handled twice")


# --------------------------------------------------------------------------- placeholders
def test_env_example_as_it_is_starts_nothing_that_holds_a_secret(workdir):
    """`cp .env.example .env` leaves every secret at `change-me`: `up` fails, naming the
    placeholder, and no container holding a secret (postgres, rabbitmq, Grafana included) runs."""
    stack = Stack(write_env(workdir, demo=False, placeholders=True), ha=True)
    result = stack.compose("up", "-d", *stack.services(), check=False)
    assert result.returncode != 0, "compose started the suite with the `change-me` placeholders"
    logs = stack.compose("logs", "check-secrets").stdout
    assert "change-me" in logs and "POSTGRES_PASSWORD" in logs and "GRAFANA_ADMIN_PASSWORD" in logs, (
        result.stdout[-3000:] + result.stderr[-3000:] + logs)
    started = [c["Service"] for c in stack.containers()
               if c["Service"] in SECRET_HOLDERS and c["State"] != "created"]
    assert not started, f"started with placeholder secrets: {started}"
    stack.down(volumes=True)


# --------------------------------------------------------------------------- demo stack
@pytest.fixture(scope="module")
def demo_up(demo):
    demo.up()
    return demo


@pytest.fixture(scope="module")
def clinician(demo_up):
    """A clinician a cardiac arrest is paged to now: D01 when on duty, else whoever of the
    roles it routes to is (the rota turns with the hour), signed in through nginx."""
    d01 = token_of("D01")
    on_duty = get("/api/v1/oncall/current", d01).json()["clinicians"]
    candidates = sorted((CARDIAC_ROLES.index(c["role"]), c["employee_id"] != "D01", c["employee_id"])
                        for c in on_duty if c["role"] in CARDIAC_ROLES)
    assert candidates, f"nobody on duty for a cardiac arrest: {on_duty}"
    employee_id = candidates[0][2]
    if employee_id != "D01":
        # Only the chosen clinician may be signed in of those roles: the incident must be theirs.
        requests.post(f"{WEB}/api/v1/auth/logout", headers=bearer(d01), timeout=15)
    token = d01 if employee_id == "D01" else token_of(employee_id)
    return {"employee_id": employee_id, "token": token}


@pytest.fixture(scope="module")
def demo_pairs(clinician):
    return AlarmPairs(clinician["token"])


def test_every_container_is_healthy_and_the_migration_completed(demo_up):
    containers = {c["Service"]: c for c in demo_up.containers()}
    expected = set(demo_up.services())
    assert expected <= set(containers), f"not started: {sorted(expected - set(containers))}"
    for name in expected:
        assert containers[name]["State"] == "running", (name, containers[name]["State"])
        assert containers[name]["Health"] == "healthy", (name, containers[name]["Health"])
    assert containers["migrate"]["State"] == "exited" and containers["migrate"]["ExitCode"] == 0
    assert containers["check-secrets"]["ExitCode"] == 0


@pytest.mark.skipif(SKIP_GRAFANA, reason="Grafana left out: its image cannot be pulled here "
                                         "(its provisioning and dashboards are checked statically)")
def test_grafana_asks_for_its_admin_password(demo_up, demo):
    """On 127.0.0.1 only; no anonymous access; the admin password from .env signs in."""
    health = requests.get("http://127.0.0.1:3001/api/health", timeout=10)
    assert health.status_code == 200
    anonymous = requests.get("http://127.0.0.1:3001/api/search", timeout=10)
    assert anonymous.status_code == 401
    settings = dict(line.split("=", 1) for line in demo.env_file.read_text().splitlines()
                    if "=" in line and not line.startswith("#"))
    signed_in = requests.get("http://127.0.0.1:3001/api/search", timeout=10,
                             auth=(settings["GRAFANA_ADMIN_USER"], settings["GRAFANA_ADMIN_PASSWORD"]))
    assert signed_in.status_code == 200


def test_an_alarm_reaches_its_clinician_through_nginx(demo_up, clinician):
    """Sign-in through nginx; a device alarm becomes an incident assigned to the clinician; its
    notification arrives on the clinician's socket, opened with a ticket through nginx's /ws."""
    me = get("/api/v1/auth/me", clinician["token"])
    assert me.status_code == 200 and me.json()["employee"]["employee_id"] == clinician["employee_id"]
    sock = open_socket(clinician["token"])
    try:
        response = post_alarm("P001", "CARDIAC_ARREST")
        assert response.status_code == 201, response.text
        frame = frames_until(sock, lambda f: f.get("type") == "notification"
                             and f.get("event_type") == "INCIDENT_ASSIGNED"
                             and f["data"]["patient_id"] == "P001", 60, "P001's assignment")
    finally:
        sock.close()
    assert frame["employee_id"] == clinician["employee_id"]
    incident = get(f"/api/v1/incidents/{frame['incident_id']}", clinician["token"]).json()
    assert incident["status"] == "ASSIGNED"
    assert incident["assigned_to"] == clinician["employee_id"]
    alert = get(f"/api/v1/alerts/{response.json()['alert_id']}", clinician["token"]).json()
    assert alert["incident_id"] == frame["incident_id"]


def test_prometheus_sees_every_target_up(demo_up):
    def all_up():
        targets = requests.get(f"{PROMETHEUS}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        jobs = {t["labels"]["job"]: t["health"] for t in targets}
        return jobs if jobs and all(health == "up" for health in jobs.values()) else None
    jobs = wait_for(all_up, 90, 1, "every Prometheus target up")
    assert set(jobs) == {"prometheus", "alert-ingestion", "incident-management", "oncall", "notification"}


def test_a_killed_worker_is_restarted_and_every_alarm_becomes_one_incident(demo_up, clinician, demo_pairs):
    token = clinician["token"]
    first_id = last_incident_id(token)
    [worker] = demo_up.container_ids("incident-management-worker")
    restarts_before = inspect(worker, "{{.RestartCount}}")
    with AlarmStream(demo_pairs.take(150)) as stream:
        stream.wait_accepted(30)
        crash(worker)
        stream.wait_accepted(90)
    # The restart policy brings the same container back, and it becomes healthy again.
    wait_for(lambda: inspect(worker, "{{.State.Status}} {{.State.Health.Status}}") == "running healthy",
             120, 1, "the killed worker to be running and healthy again")
    assert int(inspect(worker, "{{.RestartCount}}")) > int(restarts_before)
    assert not stream.refused, stream.refused
    assert_one_incident_per_alarm(token, stream.accepted, first_id)


def test_incidents_and_sessions_survive_down_and_up(demo_up, clinician):
    token = clinician["token"]
    before = incidents_since(token, 0)
    assert before
    demo_up.down(volumes=False)
    assert not demo_up.containers()
    demo_up.up()
    me = get("/api/v1/auth/me", token)
    assert me.status_code == 200, "the session did not survive `down` and `up`"
    assert me.json()["employee"]["employee_id"] == clinician["employee_id"]
    after = {i["incident_id"]: i for i in incidents_since(token, 0)}
    for incident in before:
        assert incident["incident_id"] in after, f"incident {incident['incident_id']} lost"
        assert after[incident["incident_id"]]["patient_id"] == incident["patient_id"]


def established_websockets(stack: Stack, index: int) -> int:
    """Sockets the notification replica `index` holds: TCP connections established to its port
    8004 from nginx, read from its own /proc (every other request there is short-lived)."""
    table = stack.exec("notification", "cat", "/proc/net/tcp", index=index)
    return sum(1 for line in table.splitlines()[1:]
               if line.split()[1].endswith(":1F44") and line.split()[3] == "01")


def test_replicas_share_the_work_and_nginx_reaches_every_one(demo_up, clinician, demo_pairs):
    scale = {"incident-management-worker": 2, "notification": 2, "incident-management": 2}
    demo_up.up(scale=scale)
    for name, count in scale.items():
        assert len(demo_up.container_ids(name)) == count, name
    token = clinician["token"]
    # nginx resolves the service name per request (resolver 127.0.0.11): sockets land on both.
    # Four sign-ins of the clinician (as four workstations), four sockets each: a session holds
    # at most WS_SOCKETS_PER_SESSION (5) at once.
    sessions = [token] + [token_of(clinician["employee_id"]) for _ in range(3)]
    sockets = [open_socket(session) for session in sessions for _ in range(4)]
    try:
        held = wait_for(lambda: [established_websockets(demo_up, i) for i in (1, 2)]
                        if sum(established_websockets(demo_up, i) for i in (1, 2)) >= 16 else None,
                        30, 0.5, "16 sockets held by the notification replicas")
        assert all(count > 0 for count in held), f"every socket on one replica: {held}"
        first_id = last_incident_id(token)
        patient, alert_type = demo_pairs.cardiac_arrest()
        response = post_alarm(patient, alert_type)
        assert response.status_code == 201, response.text
        for sock in sockets:
            frame = frames_until(sock, lambda f: f.get("type") == "notification"
                                 and f.get("event_type") == "INCIDENT_ASSIGNED"
                                 and f["data"]["patient_id"] == patient, 60, f"{patient}'s assignment")
            assert frame["employee_id"] == clinician["employee_id"]
    finally:
        for sock in sockets:
            sock.close()
    with AlarmStream(demo_pairs.take(60)) as stream:
        stream.wait_accepted(60)
    assert not stream.refused, stream.refused
    accepted = {**stream.accepted, response.json()["alert_id"]: (patient, alert_type)}
    assert_one_incident_per_alarm(token, accepted, first_id)


def test_the_demo_stack_goes_with_its_volumes(demo_up):
    demo_up.down(volumes=True)
    assert not demo_up.containers()


# --------------------------------------------------------------------------- real deployment, ha
@pytest.fixture(scope="module")
def real_up(real):
    real.up()
    return real


def test_no_seeded_account_signs_in_with_the_demo_password(real_up):
    assert len(SEEDED_LOGINS) >= 20
    for login in SEEDED_LOGINS:
        response = sign_in(login, DEMO_PASSWORD)
        assert response.status_code == 401, (login, response.status_code, response.text)


@pytest.fixture(scope="module")
def admin(real_up):
    """The first supervisor, as the README makes one: `docker compose run --rm migrate python -m
    oncall.accounts create-admin`; its one-time password signs in only to be changed."""
    result = real_up.compose("run", "--rm", "-T", "migrate", "python", "-m", "oncall.accounts",
                             "create-admin", "--login", "ADM01", "--name", "Dr. Ada Byrne")
    match = re.search(r"one-time password \(shown only now\): (\S+)", result.stdout)
    assert match, result.stdout
    return {"login": "ADM01", "one_time": match.group(1)}


def test_create_admin_gives_a_supervisor_who_must_change_the_password(admin):
    refused = sign_in(admin["login"], admin["one_time"])
    assert refused.status_code == 403, refused.text
    assert "password_change_required" in refused.text
    new_password = secrets.token_urlsafe(18)
    changed = requests.post(f"{WEB}/api/v1/auth/password", timeout=15, json={
        "login": admin["login"], "current_password": admin["one_time"], "new_password": new_password})
    assert changed.status_code == 204, changed.text
    signed_in = sign_in(admin["login"], new_password)
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["employee"]["is_supervisor"] is True
    admin["token"] = signed_in.json()["token"]


def leader_of(stack: Stack, queue: str) -> str:
    """The node leading a quorum queue now, as `rabbitmq` (or another running node) sees it."""
    for node in HA_NODES:
        result = stack.compose("exec", "-T", node, "rabbitmqctl", "-q", "list_queues", "name", "leader",
                               check=False, timeout=120)
        for line in result.stdout.splitlines():
            fields = line.split()
            if len(fields) == 2 and fields[0] == queue:
                return fields[1].split("@", 1)[1]
    raise LookupError(f"no node reports queue {queue}")


def test_losing_the_node_that_leads_alerts_loses_no_alarm(real_up, admin):
    """CRITICAL alarms stream while the node leading their lane (the quorum queue
    `alerts.critical`) is stopped: every one is accepted, and becomes exactly one incident."""
    token = admin["token"]
    containers = {c["Service"]: c for c in real_up.containers()}
    for node in HA_NODES:
        assert containers[node]["Health"] == "healthy", node
    leader = leader_of(real_up, CRITICAL_LANE)
    assert leader in HA_NODES
    first_id = last_incident_id(token)
    pairs = AlarmPairs(token, severity="CRITICAL").take(60)
    with AlarmStream(pairs, interval=0.2) as stream:
        stream.wait_accepted(15)
        real_up.compose("stop", leader)
        stream.wait_sent()
    assert not stream.refused, stream.refused
    assert len(stream.accepted) == len(pairs)
    try:
        assert_one_incident_per_alarm(token, stream.accepted, first_id, timeout=180)
    except AssertionError as failure:
        logs = real_up.compose("logs", "--tail", "60", "alert-ingestion-worker",
                               "incident-management-worker", check=False).stdout
        raise AssertionError(f"{failure}\n(stopped {leader})\n{logs[-15000:]}") from None
    # Another node leads the lane now.
    assert leader_of(real_up, CRITICAL_LANE) in set(HA_NODES) - {leader}
