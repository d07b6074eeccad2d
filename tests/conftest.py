"""Real PostgreSQL and RabbitMQ for the tests, a fresh database per test, a clock tests can move.

With HG_TEST_USE_DOCKER=1 and a Docker engine answering, testcontainers starts both servers.
Otherwise (CI, this machine, a laptop whose engine runs `make compose-test`), the servers named by
HG_TEST_POSTGRES_URL / HG_TEST_RABBITMQ_URL are used, defaulting to the local ones: an engine that
merely answers is not used, since testcontainers would pull images (and its Ryuk container)
where no registry may be reachable. Either way a run never touches a developer's data, and leaves
nothing behind:

- PostgreSQL: one template database per run (`hg_test_<run>_template`), migrated and seeded once;
  every test that uses the database gets its own copy (`CREATE DATABASE ... TEMPLATE ...`, a few
  hundred ms) and it is dropped after the test. A module whose tests share services started once
  for the module (`pytestmark = pytest.mark.module_database`) gets one copy for the module,
  put back to the template's contents before each of its tests.
- RabbitMQ: one vhost per run; the platform's queues are deleted before each test, or purged
  where a module's services are running (their consumers would declare them again at once).
- Time: `healthguard.clock.now()` reads an offset from the file HG_TEST_CLOCK_FILE names. Each
  test (or module, for module services) has its own file; the `clock` fixture moves it.
"""
import contextlib
import datetime as dt
import itertools
import os
import shutil
import uuid
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import psycopg2
import psycopg2.errors
import pytest
from psycopg2 import sql

from healthguard import clock as hg_clock
from healthguard.db import Database
from healthguard.migrate import migrate
from tests.support import (
    APP_PASSWORD,
    DEVICE_KEY,
    SERVICE_MODULES,
    WORK_QUEUES,
    PlatformApi,
    ServiceProcess,
    as_app_role,
    build_app,
    delete_queues,
    drain_queue,
    purge_queues,
    rabbitmqctl,
    wait_for,
)

RUN_ID = uuid.uuid4().hex[:10]
DATABASE_PREFIX = f"hg_test_{RUN_ID}_"
TEMPLATE_DATABASE = DATABASE_PREFIX + "template"
HOSPITAL_TZ = ZoneInfo("Europe/London")
# A Wednesday mid-morning, hours from any shift change: tests that depend on who is on duty pin
# the clock here (clock.pin_rota()), so they never race the rota at 08:00 or 20:00.
ROTA_INSTANT = dt.datetime(2026, 3, 11, 10, 0, tzinfo=HOSPITAL_TZ)
_database_numbers = itertools.count(1)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "module_database: the module's tests share one database (put back to the template "
                   "before each test), for services started once per module")


def _docker_engine_answers() -> bool:
    if not os.environ.get("HG_TEST_USE_DOCKER") or os.environ.get("HG_TEST_NO_DOCKER"):
        return False
    try:
        import docker
        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def docker_engine():
    return _docker_engine_answers()


@pytest.fixture(scope="session")
def postgres_admin_url(docker_engine):
    if os.environ.get("HG_TEST_POSTGRES_URL"):
        yield os.environ["HG_TEST_POSTGRES_URL"]
    elif docker_engine:
        from testcontainers.postgres import PostgresContainer
        with PostgresContainer("postgres:15-alpine", driver=None) as container:
            yield container.get_connection_url()
    else:
        yield "postgresql://postgres@127.0.0.1:5432/postgres"


class Databases:
    """Creates and drops this run's databases through one admin connection."""

    def __init__(self, admin_url: str):
        self.admin_url = admin_url
        self.conn = psycopg2.connect(admin_url)
        self.conn.autocommit = True

    def url(self, name: str) -> str:
        return urlunsplit(urlsplit(self.admin_url)._replace(path="/" + name))

    def create(self, name: str, *, template: str | None = None) -> str:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with self.conn.cursor() as cur:
            cur.execute(statement)
        return self.url(name)

    def drop(self, name: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def drop_all_of_this_run(self) -> None:
        """Whatever a test interrupted half-way left behind; the template last."""
        with self.conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s) "
                        "ORDER BY datname = %s, datname", (DATABASE_PREFIX, TEMPLATE_DATABASE))
            names = [row[0] for row in cur.fetchall()]
        for name in names:
            self.drop(name)

    def close(self) -> None:
        self.conn.close()


class TemplateContents:
    """Every row and sequence position of the migrated template, to put a module's database back
    to them between its tests (services started for the module keep their connections, so the
    database itself cannot be replaced)."""

    def __init__(self, url: str):
        with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
            cur.execute("""
                SELECT relname, relkind = 'p' FROM pg_class
                WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') ORDER BY 1""")
            found = cur.fetchall()
            tables = [name for name, _ in found]
            # A partitioned table (the PHI access log) is truncated as a whole, and its rows are
            # copied partition by partition (COPY cannot read a partitioned table).
            self.partitioned = {name for name, partitioned in found if partitioned}
            cur.execute("""
                SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint
                WHERE contype = 'f' AND connamespace = 'public'::regnamespace AND conrelid <> confrelid""")
            parents = {}
            for child, parent in cur.fetchall():
                parents.setdefault(child, set()).add(parent)
            self.tables = _parents_first(tables, parents)
            self.rows = {}
            for table in self.tables:
                if table in self.partitioned:
                    continue
                buffer = _Buffer()
                cur.copy_expert(sql.SQL("COPY {} TO STDOUT").format(sql.Identifier(table)).as_string(conn),
                                buffer)
                if buffer.data:
                    self.rows[table] = b"".join(buffer.data)
            cur.execute("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'")
            self.sequences = cur.fetchall()

    def restore(self, database: Database) -> None:
        # The module's services keep running while their database is reset: a background task
        # holding a share lock on one table while it waits for another can deadlock with the
        # TRUNCATE, and PostgreSQL may pick the TRUNCATE as the victim. It is tried again.
        for attempt in range(5):
            try:
                return self._restore(database)
            except psycopg2.errors.DeadlockDetected:
                if attempt == 4:
                    raise

    def _restore(self, database: Database) -> None:
        import io
        with database.transaction() as cur:
            # The rows are put back as they were: no trigger fills a table (unresolved_incidents)
            # that is restored from its own copy.
            cur.execute("SET LOCAL session_replication_role = replica")
            cur.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
                sql.SQL(", ").join(sql.Identifier(t) for t in self.tables)))
            for table in self.tables:
                if table in self.rows:
                    cur.copy_expert(sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(table))
                                    .as_string(cur.connection), io.BytesIO(self.rows[table]))
            for sequence, last_value in self.sequences:
                if last_value is None:
                    cur.execute(sql.SQL("ALTER SEQUENCE {} RESTART").format(sql.Identifier(sequence)))
                else:
                    cur.execute("SELECT setval(%s::regclass, %s, true)",
                                (sql.Identifier(sequence).as_string(cur.connection), last_value))


class _Buffer:
    def __init__(self):
        self.data = []

    def write(self, chunk):
        self.data.append(chunk if isinstance(chunk, bytes) else chunk.encode())


def _parents_first(tables: list[str], parents: dict) -> list[str]:
    ordered, placed = [], set()
    while len(ordered) < len(tables):
        ready = [t for t in tables if t not in placed and parents.get(t, set()) <= placed]
        if not ready:
            raise RuntimeError(f"foreign keys form a cycle among {set(tables) - placed}")
        ordered += ready
        placed.update(ready)
    return ordered


@pytest.fixture(scope="session")
def databases(postgres_admin_url):
    manager = Databases(postgres_admin_url)
    yield manager
    manager.drop_all_of_this_run()
    manager.close()


@pytest.fixture(scope="session")
def template_database_url(databases):
    """This run's migrated, seeded database; never connected to after migrating (a template
    with a connection cannot be copied)."""
    url = databases.create(TEMPLATE_DATABASE)
    # The demo staff sign in with password123; the services' role with this run's password
    # (where the server asks for one: testcontainers' does, the local one trusts).
    migrate(url, demo=True, app_password=APP_PASSWORD)
    return url


@pytest.fixture(scope="session")
def template_contents(template_database_url):
    return TemplateContents(template_database_url)


@contextlib.contextmanager
def _database_copy(databases):
    name = f"{DATABASE_PREFIX}{next(_database_numbers)}"
    try:
        yield databases.create(name, template=TEMPLATE_DATABASE)
    finally:
        databases.drop(name)


def _module_shares_database(request) -> bool:
    return request.node.get_closest_marker("module_database") is not None


@pytest.fixture(scope="session")
def rabbitmq_url(docker_engine):
    if os.environ.get("HG_TEST_RABBITMQ_URL"):
        yield os.environ["HG_TEST_RABBITMQ_URL"]
    elif docker_engine:
        from testcontainers.rabbitmq import RabbitMqContainer
        with RabbitMqContainer("rabbitmq:3.13-alpine") as container:
            params = container.get_connection_params()
            yield f"amqp://guest:guest@{params.host}:{params.port}/%2F"
    else:
        if not shutil.which("rabbitmqctl"):
            pytest.exit("rabbitmqctl not found: set HG_TEST_RABBITMQ_URL to a broker vhost for tests")
        vhost = f"hg_test_{RUN_ID}"
        _rabbitmqctl("add_vhost", vhost)
        try:
            _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
            yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
        finally:
            _rabbitmqctl("delete_vhost", vhost)


def _rabbitmqctl(*args):
    rabbitmqctl(*args)


# --------------------------------------------------------------------------- the clock
class TestClock:
    """The platform's clock as the test moves it: every service started by the test reads the
    same file. `advance` instead of sleeping a timeout out; `pin_rota` before anything that
    depends on who is on duty."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, path):
        self.path = path
        self.offset = 0.0
        self.set_offset(0)

    def set_offset(self, seconds: float) -> None:
        hg_clock.write_test_offset(self.path, seconds)
        self.offset = float(seconds)

    def advance(self, seconds: float) -> None:
        self.set_offset(self.offset + seconds)

    def set(self, instant: dt.datetime) -> None:
        """Now is `instant` (and time goes on from there at its usual pace)."""
        self.set_offset((instant - dt.datetime.now(dt.UTC)).total_seconds())

    def pin_rota(self) -> dt.datetime:
        self.set(ROTA_INSTANT)
        return ROTA_INSTANT

    def now(self) -> dt.datetime:
        return hg_clock.now()


@pytest.fixture(scope="module")
def module_clock_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("clock") / "offset"
    hg_clock.write_test_offset(path, 0)
    return str(path)


@pytest.fixture
def clock_path(request, tmp_path, monkeypatch):
    """This test's clock file, at wall time when the test starts; the test process reads it too."""
    if _module_shares_database(request):
        path = request.getfixturevalue("module_clock_path")
    else:
        path = str(tmp_path / "clock-offset")
    hg_clock.write_test_offset(path, 0)
    monkeypatch.setenv(hg_clock.TEST_CLOCK_ENV, path)
    yield path
    hg_clock.write_test_offset(path, 0)


@pytest.fixture
def clock(clock_path):
    return TestClock(clock_path)


# --------------------------------------------------------------------------- per-test state
@pytest.fixture(scope="module")
def module_database_url(databases, template_database_url):
    """The database of a `module_database` module, shared by its services and its tests."""
    with _database_copy(databases) as url:
        yield url


@pytest.fixture
def database_url(request, databases, template_database_url, rabbitmq_url):
    """This test's own database (a copy of the template), and empty work queues."""
    if _module_shares_database(request):
        url = request.getfixturevalue("module_database_url")
        database = Database(url, maxconn=1)
        try:
            # The module's services may still be publishing what the previous test's last
            # transaction committed: let the relays finish, so no late event lands in this test.
            _wait_for_empty_outbox(database)
            purge_queues(rabbitmq_url, WORK_QUEUES)
            request.getfixturevalue("template_contents").restore(database)
        finally:
            database.close()
        yield url
        return
    delete_queues(rabbitmq_url, WORK_QUEUES)
    with _database_copy(databases) as url:
        yield url


def _wait_for_empty_outbox(database: Database, timeout: float = 30) -> None:
    """When an outbox relay serves this database (its LISTEN connection is there), until the
    outbox is empty: every event committed so far is on its queue (rows go only after the
    broker's confirm). Without a relay the rows stay, and the restore drops them."""
    def settled():
        with database.transaction() as cur:
            cur.execute("""
                SELECT NOT EXISTS (SELECT 1 FROM outbox)
                    OR NOT EXISTS (SELECT 1 FROM pg_stat_activity
                                   WHERE datname = current_database()
                                     AND application_name = 'outbox-relay') AS settled""")
            return cur.fetchone()["settled"]
    wait_for(settled, timeout, 0.05, "the previous test's events to be published")


@pytest.fixture
def db(database_url):
    database = Database(database_url, maxconn=2)
    yield database
    database.close()


SERVICE_TOKEN = uuid.uuid4().hex


def _service_env(database_url: str, rabbitmq_url: str, clock_path: str) -> dict:
    """The environment the services get, as in .env.example but pointing at this test's servers
    (as the services' role)."""
    return {
        "DATABASE_URL": as_app_role(database_url),
        "RABBITMQ_URL": rabbitmq_url,
        "SERVICE_TOKEN": SERVICE_TOKEN,
        "DEVICE_API_KEYS": DEVICE_KEY,
        # Nothing listens here: tests that need assignments start the on-call service and pass
        # its URL instead. Without one, incidents stay OPEN (and the service stays healthy).
        "ONCALL_URL": "http://127.0.0.1:9",
        "WEB_ORIGIN": "http://localhost:8080",
        "HOSPITAL_TZ": HOSPITAL_TZ.key,
        "LOG_LEVEL": "INFO",
        hg_clock.TEST_CLOCK_ENV: clock_path,
    }


@pytest.fixture
def service_env(database_url, rabbitmq_url, clock_path):
    return _service_env(database_url, rabbitmq_url, clock_path)


@pytest.fixture(scope="module")
def module_service_env(module_database_url, rabbitmq_url, module_clock_path):
    """service_env for services a `module_database` module starts once for all its tests."""
    return _service_env(module_database_url, rabbitmq_url, module_clock_path)


@pytest.fixture
def start_service(service_env):
    """Start services as gunicorn subprocesses on free ports; all are stopped after the test."""
    started = []

    def start(name, *, env=None, workers=1, wait_healthy=True):
        proc = ServiceProcess(name, {**service_env, **(env or {})}, workers=workers)
        started.append(proc)
        return proc.start(wait_healthy=wait_healthy)

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="module")
def apps(module_service_env):
    """Every service's app in-process (no background tasks), built once for a `module_database`
    module: name -> Flask app."""
    built = {name: build_app(module, module_service_env) for name, module in SERVICE_MODULES.items()}
    yield built
    for app in built.values():
        app.extensions["healthguard"].db.close()


@pytest.fixture(scope="module")
def start_module_service(module_service_env):
    """start_service for a `module_database` module: services started once, stopped after the
    module's last test."""
    started = []

    def start(name, *, env=None, workers=1):
        proc = ServiceProcess(name, {**module_service_env, **(env or {})}, workers=workers)
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def login_as(db, clock_path):
    """Sign a clinician in the way the on-call service does (a session row holding the token's
    hash, its times from the platform's clock) and return the bearer token. For tests of other
    services; the login route itself is tested in the on-call tests."""
    from healthguard.auth import new_session_token, token_hash

    def login(employee_id: str, *, expires_in: str = "12 hours") -> str:
        token = new_session_token()
        now = hg_clock.now()
        with db.transaction() as cur:
            cur.execute("""
                INSERT INTO sessions (employee_id, token_hash, created_at, expires_at)
                VALUES (%s, %s, %s, %s + %s::interval)""",
                        (employee_id, token_hash(token), now, now, expires_in))
            cur.execute("UPDATE employees SET last_login = %s WHERE employee_id = %s", (now, employee_id))
        return token

    return login


@pytest.fixture
def make_incident(db, clock_path):
    """An incident (and the alert it comes from), straight into the database:
    make_incident(severity="CRITICAL", assigned_to="S01", status="ASSIGNED", assigned_ago="1 hour").
    Without assigned_to it is OPEN. Returns its id."""
    def make(*, severity="CRITICAL", patient_id="P001", alert_type="CARDIAC_ARREST", assigned_to=None,
             status=None, assigned_ago="0 seconds", title=None):
        status = status or ("ASSIGNED" if assigned_to else "OPEN")
        with db.transaction() as cur:
            cur.execute("""
                INSERT INTO alerts (patient_id, alert_type, severity, category, room, occurred_at)
                SELECT p.patient_id, t.alert_type, %(severity)s, t.category, p.room, now()
                FROM patients p, alert_types t
                WHERE p.patient_id = %(patient_id)s AND t.alert_type = %(alert_type)s
                RETURNING alert_id, room, category""",
                        {"patient_id": patient_id, "alert_type": alert_type, "severity": severity})
            alert = cur.fetchone()
            assigned_at = hg_clock.now() - _interval(assigned_ago) if assigned_to else None
            cur.execute("""
                INSERT INTO incidents (alert_id, patient_id, alert_type, severity, category, room, title,
                                       status, assigned_to, assigned_at, last_alert_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                RETURNING incident_id""",
                        (alert["alert_id"], patient_id, alert_type, severity, alert["category"],
                         alert["room"], title or f"{severity}: {alert_type}, room {alert['room']}",
                         status, assigned_to, assigned_at, hg_clock.now()))
            incident_id = cur.fetchone()["incident_id"]
            if assigned_to:
                cur.execute("""
                    INSERT INTO incident_assignments (incident_id, employee_id, reason, assigned_at)
                    VALUES (%s, %s, 'AUTO', %s)""", (incident_id, assigned_to, assigned_at))
        return incident_id
    return make


def _interval(text: str) -> dt.timedelta:
    amount, unit = text.split()
    return dt.timedelta(**{unit if unit.endswith("s") else unit + "s": float(amount)})


@pytest.fixture
def api(services, db, clock):
    """The platform's API, for a module that starts its pipeline once as `services`; who is on
    duty is the same whenever the tests run (the rota is pinned)."""
    clock.pin_rota()
    return PlatformApi(services)


@pytest.fixture
def doctors(login_as):
    """Every emergency doctor signed in (two are on duty at the pinned rota): id -> token."""
    return {doctor: login_as(doctor) for doctor in ("D01", "D02", "D03", "D04")}


# --------------------------------------------------------------------------- the queues
@pytest.fixture
def queued(rabbitmq_url):
    """queued(queue): every message now on the queue, removed from it (bodies; with their
    properties for a dead-letter queue)."""
    def take(queue):
        messages = drain_queue(rabbitmq_url, queue)
        return messages if queue.endswith(".dead") else [message for message, _ in messages]
    return take


@pytest.fixture
def notification_events(queued):
    """notification_events(until=predicate, what=...): the events on the `notifications` queue,
    collected (and removed) until predicate(events) holds; all collected so far are kept, so
    a test can wait for more later."""
    collected = []

    def wait(until, what="notification events", timeout: float = 15):
        def enough():
            collected.extend(queued("notifications"))
            return until(collected)
        wait_for(enough, timeout, 0.1, what)
        return list(collected)
    return wait
