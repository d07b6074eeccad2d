"""The connection budget: when something else takes every connection PostgreSQL will give, a
service keeps answering on the connections its pool holds, answers 503 JSON where it cannot get
one, and recovers by itself once the connections come back. On a throw-away server: the shared
one must never be filled."""
import concurrent.futures
import contextlib
import uuid

import psycopg2
import pytest

from healthguard.migrate import migrate
from tests.support import APP_PASSWORD, ThrowawayPostgres, as_app_role, build_app, wait_for


@pytest.fixture
def small_server():
    # 12 connections, 3 of them reserved for superusers: 9 for the services' role.
    pg = ThrowawayPostgres().start(max_connections=12, superuser_reserved_connections=3)
    try:
        migrate(pg.url, demo=True, app_password=APP_PASSWORD)
        yield pg
    finally:
        pg.destroy()


def _oncall_app(pg):
    """The on-call service as its factory builds it: it needs only the database."""
    return build_app("oncall", {
        "DATABASE_URL": as_app_role(pg.url), "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:9/%2F",
        "SERVICE_TOKEN": uuid.uuid4().hex, "HOSPITAL_TZ": "Europe/London",
        "DB_POOL_MAX": "2", "DB_POOL_WAIT_SECONDS": "1"})


@contextlib.contextmanager
def _every_connection_taken(pg):
    """Open connections as the services' role until the server refuses one (what a leaking
    process or a burst of new processes does), and hold them."""
    hog = []
    try:
        while True:
            try:
                hog.append(psycopg2.connect(as_app_role(pg.url), connect_timeout=3))
            except psycopg2.OperationalError as exc:
                assert "remaining connection slots are reserved" in str(exc) or "too many" in str(exc)
                break
            assert len(hog) < 20, "the server should have refused long ago"
        yield hog
    finally:
        for conn in hog:
            conn.close()


def _signed_in(client) -> dict:
    answer = client.post("/api/v1/auth/login", json={"login": "D01", "password": "password123"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return {"Authorization": f"Bearer {answer.get_json()['token']}"}


def test_a_full_server_leaves_pooled_requests_answering_and_the_rest_503_until_it_recovers(small_server):
    warm, cold = _oncall_app(small_server), _oncall_app(small_server)
    try:
        client = warm.test_client()
        auth = _signed_in(client)
        db = warm.extensions["healthguard"].db
        with db.transaction(), db.transaction():  # two units of work at once: it holds both
            pass

        with _every_connection_taken(small_server):
            # The warm process serves on the connection it holds, however many ask at once.
            with concurrent.futures.ThreadPoolExecutor(6) as pool:
                answers = list(pool.map(lambda _: client.get("/api/v1/oncall/current", headers=auth),
                                        range(12)))
            assert [a.status_code for a in answers] == [200] * 12
            ready = client.get("/ready")
            assert ready.status_code == 200 and ready.get_json()["status"] == "ok"

            # A process that holds no connection cannot get one: 503 JSON, at once, naming
            # neither the server nor the driver's text.
            cold_client = cold.test_client()
            down = cold_client.get("/ready")
            assert down.status_code == 503
            assert down.get_json()["checks"]["database"] == {"status": "down",
                                                            "error": "database unreachable"}
            refused = cold_client.get("/api/v1/oncall/current", headers=auth)
            assert refused.status_code == 503 and refused.get_json()["status"] == 503
            assert "too many" not in refused.get_data(as_text=True)

            # While every connection of the warm process is busy (two long units of work),
            # a request waits DB_POOL_WAIT_SECONDS at most, then gets 503 with Retry-After.
            with db.transaction(), db.transaction():
                busy = client.get("/api/v1/oncall/current", headers=auth)
            assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
            assert busy.get_json()["message"] == "every database connection is busy; retry shortly"
            assert client.get("/api/v1/oncall/current", headers=auth).status_code == 200

        # Once the connections are given back, the cold process recovers by itself.
        wait_for(lambda: cold_client.get("/ready").status_code == 200, 15,
                 what="the cold process to be ready again")
        assert cold_client.get("/api/v1/oncall/current", headers=auth).status_code == 200
    finally:
        for app in (warm, cold):
            app.extensions["healthguard"].db.close()


def test_the_pool_closes_connections_idle_past_their_time(small_server):
    """A quiet process gives its connections back to the server (DB_POOL_IDLE_SECONDS)."""
    from healthguard.db import Database
    database = Database(as_app_role(small_server.url), maxconn=3, idle_seconds=1)
    try:
        with database.transaction(), database.transaction(), database.transaction():
            pass
        assert database.stats() == {"open": 3, "idle": 3, "max": 3}
        wait_for(lambda: database.stats()["open"] == 0, 15, what="idle connections to be closed")
        with psycopg2.connect(small_server.url) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = 'healthguard_app'")
            assert cur.fetchone()[0] == 0
        with database.transaction() as cur:  # and opens one again when asked
            cur.execute("SELECT 1 AS one")
            assert cur.fetchone()["one"] == 1
    finally:
        database.close()
