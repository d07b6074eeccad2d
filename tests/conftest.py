"""Session-wide real PostgreSQL and RabbitMQ for the tests.

With a Docker engine answering, testcontainers starts both. Without one (CI and this machine),
the servers named by HG_TEST_POSTGRES_URL / HG_TEST_RABBITMQ_URL are used, defaulting to the
local ones. Either way every run gets its own throw-away database and RabbitMQ vhost, dropped at
the end, so a run never touches a developer's data and two runs never collide.
"""
import os
import shutil
import subprocess
import uuid
from urllib.parse import urlsplit, urlunsplit

import pika
import psycopg2
import pytest
from psycopg2 import sql

from healthguard.db import Database
from healthguard.migrate import migrate
from tests.support import ServiceProcess

RUN_ID = uuid.uuid4().hex[:10]

# Tables holding what the platform records at run time; seed tables are left as migrated.
RUNTIME_TABLES = ("outbox", "incident_notes", "incident_history", "incident_assignments",
                  "notifications", "incidents", "alerts", "sessions", "login_attempts",
                  "oncall_overrides")


def _docker_engine_answers() -> bool:
    if os.environ.get("HG_TEST_NO_DOCKER"):
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


@pytest.fixture(scope="session")
def database_url(postgres_admin_url):
    """A migrated, seeded database of this run's own."""
    name = f"hg_test_{RUN_ID}"
    admin = psycopg2.connect(postgres_admin_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlunsplit(urlsplit(postgres_admin_url)._replace(path="/" + name))
    try:
        migrate(url)
        yield url
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


def _rabbitmqctl(*args):
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


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


@pytest.fixture(scope="session")
def service_env(database_url, rabbitmq_url):
    """The environment the services get, as in .env.example but pointing at this run's servers."""
    return {
        "DATABASE_URL": database_url,
        "RABBITMQ_URL": rabbitmq_url,
        "SERVICE_TOKEN": uuid.uuid4().hex,
        "DEVICE_API_KEYS": "test-device-key",
        # Nothing listens here: tests that need assignments start the on-call service and pass
        # its URL instead. Without one, incidents stay OPEN (and the service stays healthy).
        "ONCALL_URL": "http://127.0.0.1:9",
        "WEB_ORIGIN": "http://localhost:8080",
        "HOSPITAL_TZ": "Europe/London",
        "LOG_LEVEL": "INFO",
    }


@pytest.fixture(scope="session")
def db(database_url):
    database = Database(database_url)
    yield database
    database.close()


@pytest.fixture
def clean_state(db, rabbitmq_url):
    """Empty the runtime tables and the work queues before a data-path test."""
    with db.transaction() as cur:
        cur.execute("TRUNCATE " + ", ".join(RUNTIME_TABLES) + " RESTART IDENTITY CASCADE")
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = connection.channel()
    for queue in ("alerts", "alerts.dead", "notifications", "notifications.dead"):
        channel.queue_delete(queue)
    connection.close()
    yield


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


@pytest.fixture
def login_as(db):
    """Sign a clinician in the way the on-call service does (a session row holding the token's
    hash) and return the bearer token. For tests of other services; the login route itself is
    tested in the on-call tests."""
    from healthguard.auth import new_session_token, token_hash

    def login(employee_id: str, *, expires_in: str = "12 hours") -> str:
        token = new_session_token()
        with db.transaction() as cur:
            cur.execute("""
                INSERT INTO sessions (employee_id, token_hash, expires_at)
                VALUES (%s, %s, now() + %s::interval)""", (employee_id, token_hash(token), expires_in))
            cur.execute("UPDATE employees SET last_login = now() WHERE employee_id = %s",
                        (employee_id,))
        return token

    return login


@pytest.fixture(autouse=True)
def _sign_everyone_out(request):
    """Sessions and sign-in state do not leak from one test into the next."""
    yield
    if "db" in request.fixturenames:
        db = request.getfixturevalue("db")
        with db.transaction() as cur:
            cur.execute("UPDATE sessions SET revoked_at = now() WHERE revoked_at IS NULL")
            cur.execute("UPDATE employees SET availability = 'AVAILABLE'")
