"""Real servers for tests: throw-away PostgreSQL and RabbitMQ instances a test may stop and
start, and the services themselves as gunicorn subprocesses. Never touches the machine's shared
PostgreSQL or RabbitMQ processes."""
import contextlib
import glob
import importlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pika
import requests

from healthguard.broker import (
    ALERT_LANES,
    NOTIFICATIONS_QUEUE,
    Outgoing,
    RetryPolicy,
    declare_durable_queue,
    declare_queue,
    retry_queue,
)
from healthguard.migrate import APP_ROLE
from healthguard.settings import ConfigError

REPO = Path(__file__).resolve().parents[1]
DEVICE_KEY = "test-device-key"  # the DEVICE_API_KEYS of conftest's service_env
# The platform's queues: deleted before each test, so no message of another test reaches it.
# The work queues, their dead-letter queues and their delay queues at the default retry policy:
# a message parked for a retry by one test must not flow back into the next one.
_DEFAULT_RETRY = RetryPolicy()
WORK_QUEUES = tuple(
    name for queue in (*ALERT_LANES, NOTIFICATIONS_QUEUE)
    for name in (queue, f"{queue}.dead", *sorted({
        retry_queue(queue, _DEFAULT_RETRY.delay(n)) for n in range(1, _DEFAULT_RETRY.max_attempts)})))
SERVICE_MODULES = {
    "alert-ingestion": "alert_ingestion",
    "incident-management": "incident_management",
    "oncall": "oncall",
    "notification": "notification",
}


_PLACEHOLDER = "http://127.0.0.1:9/unused-by-this-test"
# The password this run gives the services' role (migrate(app_password=...)): where the server
# asks for one (testcontainers' does; the local one trusts 127.0.0.1).
APP_PASSWORD = secrets.token_hex(16)


def as_app_role(database_url: str) -> str:
    """The URL of the same database for the services' own role (migration 0011), as the services
    connect in production: never as the administrator the tests set up data with."""
    parts = urlsplit(database_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{APP_ROLE}:{APP_PASSWORD}@{host}"))


def build_app(module: str, service_env: dict):
    """The service's app as its factory builds it, with this run's settings. A setting a service
    requires that this test does not know (another service's URL, say) gets a placeholder."""
    config = dict(service_env)
    for _ in range(5):
        try:
            return importlib.import_module(f"{module}.app").create_app(dict(config))
        except ConfigError as exc:
            missing = re.findall(r"\b[A-Z][A-Z0-9_]{2,}\b", str(exc).split("(")[0])
            if not missing or all(name in config for name in missing):
                raise
            config.update({name: _PLACEHOLDER for name in missing if name not in config})
    raise AssertionError(f"cannot configure {module}")


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

    def start(self, **settings):
        """Start it; keyword arguments are server settings (max_connections=10)."""
        extra = "".join(f" -c {name}={value}" for name, value in settings.items())
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.dir / "log"), "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off{extra}",
                  "start")
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
    """A private RabbitMQ node (own node name, port and data dir) that a test may stop.
    `home` is the directory holding the Erlang cookie (a cluster's nodes share one); by default
    the rabbitmq user's own."""

    def __init__(self, home: Path | None = None):
        self.port = free_port()
        self.dist_port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="hg-rmq-"))
        self.home = home or (Path("/var/lib/rabbitmq") if os.geteuid() == 0 else self.dir)
        self.nodename = f"hgtest{self.port}@localhost"
        (self.dir / "enabled_plugins").write_text("[].\n")
        if os.geteuid() == 0:
            for path in (self.dir, self.dir / "enabled_plugins"):
                shutil.chown(path, "rabbitmq")
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"
        self.proc = None

    def start(self, timeout: float = 60, *, wait: bool = True):
        env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq"),
            "RABBITMQ_PID_FILE": str(self.dir / "pid"),
        }
        log = open(self.dir / "server.out", "ab")
        # HOME (where Erlang finds its cookie) is set after runuser, which would reset it.
        self.proc = subprocess.Popen(
            [*_as_service_user("rabbitmq"), "env", f"HOME={self.home}",
             "/usr/lib/rabbitmq/bin/rabbitmq-server"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        if wait:
            self.wait_listening(timeout)
        return self

    def wait_listening(self, timeout: float = 60) -> None:
        def listening():
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"throw-away RabbitMQ exited (log: {self.dir / 'server.out'})")
            return port_open(self.port)
        wait_for(listening, timeout, 0.2, f"throw-away RabbitMQ to listen (log: {self.dir / 'server.out'})")

    def ctl(self, *args, tool: str = "rabbitmqctl", timeout: float = 60) -> str:
        """Run a RabbitMQ CLI command against this node; its output."""
        done = subprocess.run(
            [*_as_service_user("rabbitmq"), "env", f"HOME={self.home}",
             f"/usr/lib/rabbitmq/bin/{tool}", "-n", self.nodename, *args],
            capture_output=True, text=True, timeout=timeout, env=_without_rabbitmq_settings())
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} on {self.nodename} failed: "
                               f"{done.stdout}{done.stderr}")
        return done.stdout

    def stop(self):
        if self.proc is not None:
            _kill_group(self.proc, signal.SIGKILL)  # a crash, as far as clients can tell
            self.proc = None
        wait_for(lambda: not port_open(self.port), 10, 0.1, "throw-away RabbitMQ to stop")

    def destroy(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class ThrowawayRabbitCluster:
    """A private cluster of RabbitMQ nodes on spare ports, sharing a private Erlang cookie (so
    neither the machine's broker nor another test's cluster can be reached or joined by
    mistake). `url` names every node, as a service's RABBITMQ_URL; a test may kill any node."""

    def __init__(self, size: int = 3):
        self.home = Path(tempfile.mkdtemp(prefix="hg-rmq-cluster-"))
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20))
        cookie.chmod(0o400)
        if os.geteuid() == 0:
            for path in (self.home, cookie):
                shutil.chown(path, "rabbitmq", "rabbitmq")
        self.nodes = [ThrowawayRabbitMQ(home=self.home) for _ in range(size)]

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def start(self, timeout: float = 90, attempts: int = 3):
        """Boot every node, then join the others to the first (each stops its app, joins, starts).
        A spare port may be taken by another process between free_port() and the node's bind
        (the machine is shared): such a node is replaced by one on other ports."""
        for node in self.nodes:  # booting in parallel
            node.start(wait=False)
        for index in range(len(self.nodes)):
            for attempt in range(1, attempts + 1):
                node = self.nodes[index]
                try:
                    node.wait_listening(timeout)
                    node.ctl("await_startup", timeout=timeout)  # our node, not a port's other owner
                    break
                except (RuntimeError, TimeoutError):
                    if attempt == attempts:
                        raise
                    node.destroy()
                    self.nodes[index] = ThrowawayRabbitMQ(home=self.home).start(wait=False)
        first, *others = self.nodes
        for node in others:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.nodename)
            node.ctl("start_app")
        for node in self.nodes:
            node.ctl("await_startup", timeout=timeout)
        status = json.loads(first.ctl("cluster_status", "--formatter", "json"))
        assert sorted(status["running_nodes"]) == sorted(node.nodename for node in self.nodes), status
        return self

    def node(self, nodename: str) -> ThrowawayRabbitMQ:
        return next(node for node in self.nodes if node.nodename == nodename)

    def running(self) -> list[ThrowawayRabbitMQ]:
        return [node for node in self.nodes if node.proc is not None]

    def leader(self, queue: str, vhost: str = "/") -> ThrowawayRabbitMQ:
        """The node leading a quorum queue now, as a running node sees it (for a classic queue,
        which has no leader, the one node holding it)."""
        output = self.running()[0].ctl("-q", "list_queues", "-p", vhost, "name", "leader", "pid")
        for line in output.splitlines():
            name, leader, pid = (line.split("\t") + ["", ""])[:3]
            if name == queue:  # a pid reads <node@host.1.2.3>
                return self.node(leader.strip() or pid.strip("<> ").rsplit(".", 3)[0])
        raise LookupError(f"no queue {queue} on the cluster: {output}")

    def destroy(self):
        """Kill every node and remove every directory, whatever state the test left them in."""
        errors = []
        for node in self.nodes:
            try:
                node.destroy()
            except Exception as exc:  # noqa: BLE001 - the other nodes must still go
                errors.append(exc)
        shutil.rmtree(self.home, ignore_errors=True)
        if errors:
            raise errors[0]


class ServiceProcess:
    """One of the four services exactly as `make up` and the images run it: its web process
    under gunicorn and, unless background=False, its worker process (consumers, relays,
    periodic tasks) beside it, sharing the metrics directory. Both log to one file."""

    def __init__(self, name: str, env: dict, *, workers: int | None = 1, port: int | None = None,
                 background: bool = True):
        self.name = name
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"hg-{name}-"))
        self.metrics_dir = str(self.run_dir / "metrics")
        self.heartbeat = self.run_dir / "worker.heartbeat"
        self.log_path = self.run_dir / "service.log"
        # workers=None: as many web workers as the service's settings say (the benchmarks).
        self.env = {**os.environ, **env, "PORT": str(self.port), "BIND_HOST": "127.0.0.1",
                    **({"GUNICORN_WORKERS": str(workers)} if workers is not None else {}),
                    "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir,
                    "WORKER_HEARTBEAT_FILE": str(self.heartbeat)}
        self.background = background
        self.proc = self.worker_proc = None

    def _spawn(self, argv: list[str]) -> subprocess.Popen:
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(argv, cwd=REPO / "services", env=self.env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def start(self, *, wait_healthy: bool = True, timeout: float = 30):
        """Start both processes; wait until the web process is ready (or, without wait_healthy,
        merely answers) and the worker has started its tasks (its first heartbeat)."""
        self.start_web(wait=False)
        if self.background:
            self.start_worker(wait=False)
        try:
            wait_for(lambda: (self.ready() if wait_healthy else self._answers()) and self._worker_beats(),
                     timeout, 0.1, f"{self.name} to start (log: {self.log_path})")
        except BaseException as failed:
            # One that did not start leaves no process behind (its caller holds no handle yet to
            # stop it), and its log, removed with it, goes with the error.
            if self.log_path.exists():
                failed.add_note(f"{self.name}'s log (the end):\n{self.log()}")
            self.stop()
            raise
        return self

    def start_web(self, *, wait: bool = True, timeout: float = 30):
        self.proc = self._spawn([sys.executable, "-m", "gunicorn", "-c", "python:healthguard.gunicorn_conf",
                                 f"{SERVICE_MODULES[self.name]}.app:create_app()"])
        if wait:
            wait_for(self.ready, timeout, 0.1, f"{self.name} web process to start (log: {self.log_path})")
        return self

    def stop_web(self) -> None:
        _kill_group(self.proc, signal.SIGTERM)

    def start_worker(self, *, wait: bool = True, timeout: float = 30):
        self.heartbeat.unlink(missing_ok=True)
        self.worker_proc = self._spawn([sys.executable, "-m", "healthguard.worker",
                                        SERVICE_MODULES[self.name]])
        if wait:
            wait_for(self._worker_beats, timeout, 0.1, f"{self.name} worker to start (log: {self.log_path})")
        return self

    def _check_running(self) -> None:
        for what, proc in (("web process", self.proc), ("worker", self.worker_proc)):
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{self.name} {what} exited ({proc.returncode}): {self.log()}")

    def _answers(self) -> bool:
        self._check_running()
        return port_open(self.port)

    def _worker_beats(self) -> bool:
        self._check_running()
        return self.worker_proc is None or self.heartbeat.exists()

    def ready(self) -> bool:
        """/ready answers 200: the service can do its job (database and broker reachable)."""
        self._check_running()
        try:
            return requests.get(self.url + "/ready", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self):
        """SIGKILL both process groups: master, web workers and worker die without cleanup."""
        for proc in (self.proc, self.worker_proc):
            if proc is not None:
                _kill_group(proc, signal.SIGKILL)

    def stop_worker(self) -> int:
        """SIGTERM the worker as a supervisor would; returns its exit status."""
        _kill_group(self.worker_proc, signal.SIGTERM)
        return self.worker_proc.returncode

    def stop(self):
        for proc in (self.worker_proc, self.proc):
            if proc is not None:
                _kill_group(proc, signal.SIGTERM)
        shutil.rmtree(self.run_dir, ignore_errors=True)


@contextlib.contextmanager
def running_nginx(directory: Path, *, port: int | None = None, nginx: str = "nginx", **rendering):
    """The shipped nginx config rendered for loopback in `directory` (scripts.local_config's
    render_nginx, with `rendering`: ports, html_root, web_origin) and nginx running it on `port`
    (a free one by default) until the block ends. Yields the port; the logs are in `directory`."""
    from scripts.local_config import render_nginx

    port = port or free_port()
    conf = render_nginx(directory, listen=port, **rendering)
    startup_log = directory / "startup.log"
    process = subprocess.Popen([nginx, "-p", str(directory), "-c", str(conf), "-e", str(startup_log)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)

    def listening():
        if process.poll() is not None:
            said = startup_log.read_text(errors="replace") if startup_log.exists() else ""
            raise AssertionError(f"nginx exited: {said}")
        return port_open(port)

    try:
        wait_for(listening, 15, 0.05, "nginx to listen")
        yield port
    finally:
        _kill_group(process, timeout=10)


def run_simulator(url: str, api_key: str, *args: str) -> subprocess.CompletedProcess:
    """The device simulator (alert_ingestion.simulator) posting to `url` with `api_key`, run to
    its end: `args` are its other options (--count, --rate, --seed)."""
    return subprocess.run([sys.executable, "-m", "alert_ingestion.simulator", *args, "--url", url,
                           "--api-key", api_key],
                          cwd=REPO / "services", capture_output=True, text=True, timeout=60)


def purge_queues(rabbitmq_url: str, queues) -> None:
    """Empty the queues, keeping them. For a module whose services are running: their consumers
    declare a deleted queue again at once, and a quorum queue deleted and declared again in the
    same instant can be left without its Raft cluster ("cluster_not_formed"), refused for the rest
    of the run in that vhost (seen with RabbitMQ 3.10)."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        channel = connection.channel()
        for queue in queues:
            try:
                channel.queue_purge(queue)
            except pika.exceptions.ChannelClosedByBroker as closed:
                if closed.reply_code != 404:  # a queue no service has declared yet is empty
                    raise
                channel = connection.channel()
    finally:
        connection.close()


def delete_queues(rabbitmq_url: str, queues) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        channel = connection.channel()
        for queue in queues:
            channel.queue_delete(queue)
    finally:
        connection.close()


def insert_alerts(db, alarms) -> list[int]:
    """Alerts as ingestion stores them (without publishing them): (patient, alert type) each."""
    ids = []
    with db.transaction() as cur:
        for patient_id, alert_type in alarms:
            cur.execute("""
                INSERT INTO alerts (patient_id, alert_type, severity, category, room, occurred_at)
                SELECT p.patient_id, t.alert_type, t.severity, t.category, p.room, now()
                FROM patients p, alert_types t WHERE p.patient_id = %s AND t.alert_type = %s
                RETURNING alert_id""", (patient_id, alert_type))
            ids.append(cur.fetchone()["alert_id"])
    return ids


def publish(publisher, queue: str, payload, *, message_id: str) -> None:
    """One message to a work queue by the product's one publish path (Publisher.publish_many),
    confirmed before this returns; raises the broker's refusal."""
    [error] = publisher.publish_many([Outgoing.to_queue(queue, payload, message_id=message_id)])
    if error is not None:
        raise error


def publish_to_lanes(rabbitmq_url: str, messages) -> None:
    """Publish (lane, body) pairs straight to the alert lanes, declared first; a body that is not
    already a string is sent as JSON. Each publish is confirmed by the broker before this returns:
    a test counting on the queues must not race messages still on their way in."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for lane in ALERT_LANES:
            declare_queue(channel, lane)
        for lane, body in messages:
            channel.basic_publish("", lane, body if isinstance(body, str) else json.dumps(body))
    finally:
        connection.close()


def queue_depth(rabbitmq_url: str, queue: str) -> int:
    """Messages ready on `queue` (not those delivered and not yet acknowledged); 0 for a queue
    not declared (yet). Passive: it never declares a queue with other arguments than its owner."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        return connection.channel().queue_declare(queue, durable=True, passive=True).method.message_count
    except pika.exceptions.ChannelClosedByBroker:
        return 0
    finally:
        if connection.is_open:
            connection.close()


def wait_until_in_hand(rabbitmq_url, lane: str, *, ready_at_most: int, what: str) -> None:
    """Wait until the consumer holds messages of `lane`: at most `ready_at_most` still ready on
    it (its prefetch took the others). Times out naming the depths seen (failed once in CI
    waiting for exactly 20, without saying what it saw)."""
    seen = []

    def taken():
        seen.append(queue_depth(rabbitmq_url, lane))
        return seen[-1] <= ready_at_most
    try:
        wait_for(taken, 30, 0.05, what)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; {lane} depths seen: first {seen[:3]}, last {seen[-3:]}") from None


def _without_rabbitmq_settings() -> dict:
    """This process's environment minus RABBITMQ_*/ERL* variables: a CLI given another node's
    cookie or name is refused by the node it means to ask."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL"))}


def rabbitmqctl(*args, attempts: int = 5) -> str:
    """rabbitmqctl against the machine's broker, as its own user with its own Erlang cookie (HOME
    named explicitly, no RABBITMQ_*/ERL* variables of this process passed on: a CLI that presented
    another cookie was refused at the end of a run, "Invalid challenge reply"), and asked again
    when the node is briefly unavailable."""
    env = _without_rabbitmq_settings()
    command = ["rabbitmqctl", *args]
    if os.geteuid() == 0 and Path("/usr/lib/rabbitmq/bin/rabbitmqctl").exists():
        command = ["runuser", "-u", "rabbitmq", "--", "env", "HOME=/var/lib/rabbitmq",
                   "/usr/lib/rabbitmq/bin/rabbitmqctl", *args]
    for attempt in range(1, attempts + 1):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env,
                                cwd="/")
        if result.returncode == 0:
            return result.stdout
        if attempt == attempts:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed ({result.returncode}): "
                               f"{(result.stderr or result.stdout).strip()[:500]}")
        time.sleep(2 * attempt)  # not a synchronisation: a pause before asking the broker again


def queue_idle(rabbitmq_url: str, queue: str) -> bool:
    """Nothing on `queue`, neither waiting nor delivered and unacknowledged: every message sent
    to it has been handled. (RabbitMQ's message_count leaves out unacknowledged deliveries; a
    passive declare does not count them either, so this asks the management command.)"""
    output = rabbitmqctl("-q", "list_queues", "-p", _vhost(rabbitmq_url), "name", "messages")
    for line in output.splitlines():
        name, _, count = line.partition("\t")
        if name == queue:
            return int(count) == 0
    return True


def _vhost(rabbitmq_url: str) -> str:
    from urllib.parse import unquote, urlsplit
    return unquote(urlsplit(rabbitmq_url).path.lstrip("/")) or "/"


def drain_queue(rabbitmq_url: str, queue: str) -> list[tuple[dict, "pika.BasicProperties"]]:
    """Every message now on `queue` (JSON body decoded, or the raw bytes that are not JSON, and
    properties), removed from it."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = connection.channel()
    declare_durable_queue(channel, queue)
    messages = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        try:
            messages.append((json.loads(body), properties))
        except ValueError:  # a dead letter may be what could not be parsed
            messages.append((body, properties))
    connection.close()
    return messages


def metric_value(service_url: str, name: str, **labels) -> float | None:
    """A sample of the service's /metrics (labels matched exactly), or None when it has none."""
    import re
    text = requests.get(service_url + "/metrics", timeout=5).text
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    pattern = re.escape(f"{name}{{{wanted}}}" if labels else name) + r"(?:\{\})? ([0-9.e+-]+)$"
    match = re.search("^" + pattern, text, re.M)
    return float(match.group(1)) if match else None


class PlatformApi:
    """What clients of the running pipeline do: devices post alerts, clinicians act on incidents."""

    def __init__(self, services):
        self.ingestion = services["ingestion"].url
        self.url = services["incidents"].url
        self.oncall = services["oncall"].url
        self.service_token = services["incidents"].env["SERVICE_TOKEN"]

    def post_alert(self, patient_id="P001", alert_type="CARDIAC_ARREST", **fields) -> int:
        body = {"patient_id": patient_id, "alert_type": alert_type, **fields}
        response = requests.post(self.ingestion + "/api/v1/alerts", headers={"X-API-Key": DEVICE_KEY},
                                 json=body, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()["alert_id"]

    def incident_of(self, alert_id: int, status="ASSIGNED", timeout: float = 15) -> dict:
        """Wait (bounded) until the alert's incident reaches `status`; return it as the API shows it."""
        def reached():
            alert = requests.get(f"{self.ingestion}/api/v1/alerts/{alert_id}", timeout=5,
                                 headers=self.auth(self.service_token)).json()
            return alert["incident_id"] if alert["incident_status"] == status else None
        incident_id = wait_for(reached, timeout, 0.05, f"alert {alert_id} to become a {status} incident")
        return self.get(incident_id)

    def wait_until(self, incident_id: int, predicate, what: str, timeout: float = 15) -> dict:
        """The incident as the API shows it, once predicate(incident) holds."""
        def reached():
            incident = self.get(incident_id)
            return incident if predicate(incident) else None
        return wait_for(reached, timeout, 0.1, what)

    @staticmethod
    def auth(token):
        return {"Authorization": f"Bearer {token}"}

    def get(self, incident_id, token=None) -> dict:
        response = requests.get(f"{self.url}/api/v1/incidents/{incident_id}", timeout=5,
                                headers=self.auth(token or self.service_token))
        assert response.status_code == 200, response.text
        return response.json()

    def act(self, token, incident_id, action, body=None) -> requests.Response:
        return requests.patch(f"{self.url}/api/v1/incidents/{incident_id}/{action}", json=body,
                              headers=self.auth(token), timeout=10)

    def note(self, token, incident_id, text) -> requests.Response:
        return requests.post(f"{self.url}/api/v1/incidents/{incident_id}/notes", json={"note": text},
                             headers=self.auth(token), timeout=10)

    def on_duty(self, role: str) -> list[str]:
        """Who the on-call service says is on duty now in `role`, by id."""
        answer = requests.get(self.oncall + "/api/v1/oncall/current", params={"role": role},
                              headers=self.auth(self.service_token), timeout=5)
        assert answer.status_code == 200, answer.text
        return sorted(c["employee_id"] for c in answer.json()["clinicians"])

    def metric(self, name: str, **labels) -> float:
        return metric_value(self.url, name, **labels) or 0.0

    def list(self, token=None, **params) -> requests.Response:
        return requests.get(f"{self.url}/api/v1/incidents", params=params, timeout=5,
                            headers=self.auth(token or self.service_token))


@contextlib.contextmanager
def pipeline(service_env: dict, *, env: dict | None = None, incident_env: dict | None = None,
             incident_workers: int = 1):
    """On-call, alert ingestion and incident management running together (the alert path), with
    `env` added to every service's settings and `incident_env` to incident management's."""
    service_env = {**service_env, **(env or {})}
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
