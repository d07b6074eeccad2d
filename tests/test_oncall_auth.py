"""Signing in and out of the on-call service: hashed passwords, server-side sessions that every
service honours, expiry, the 401 and 429 answers, CORS and the published OpenAPI document."""
import datetime as dt
import importlib

import pytest
import requests

from healthguard.auth import new_session_token, token_hash
from tests.api_contract import checked_document, fuzz
from tests.support import SERVICE_MODULES, ServiceProcess

PASSWORD = "password123"  # the demo profile's password (db/migrations/demo/)


pytestmark = pytest.mark.module_database  # one on-call service for the module
APP_SERVICE = "oncall"  # the in-process `app` (conftest)


@pytest.fixture(scope="module")
def oncall(start_module_service):
    # The shift length as the code's default says (a .env, which the suite's own local-runner test
    # may write from .env.example, must not change what these tests measure).
    return start_module_service("oncall", env={"SESSION_TTL_HOURS": "14", "SESSION_IDLE_MINUTES": "30"})


def test_a_session_lasts_a_shift_and_its_handovers_and_a_browsers_30_idle_minutes_by_default(
        service_env, monkeypatch, tmp_path):
    from oncall.app import create_app
    monkeypatch.chdir(tmp_path)  # no .env to read: the defaults in code
    for name in ("SESSION_TTL_HOURS", "SESSION_IDLE_MINUTES", "ONE_TIME_PASSWORD_HOURS"):
        monkeypatch.delenv(name, raising=False)
    app = create_app(dict(service_env))
    try:
        settings = app.extensions["healthguard"].settings
        assert settings.SESSION_TTL_HOURS == 14
        assert settings.session_idle == dt.timedelta(minutes=30)
        assert settings.one_time_password_lifetime == dt.timedelta(hours=24)
    finally:
        app.extensions["healthguard"].db.close()


@pytest.fixture
def fresh(db):
    """No sessions and no recorded sign-in attempts: the database as migrated."""


def login(oncall, login_name, password=PASSWORD):
    return requests.post(oncall.url + "/api/v1/auth/login", json={"login": login_name, "password": password},
                         timeout=10)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def logout(oncall, token):
    return requests.post(oncall.url + "/api/v1/auth/logout", headers=bearer(token), timeout=10)


def me(base_url, token):
    return requests.get(base_url + "/api/v1/auth/me", headers=bearer(token), timeout=10)


def signed_in(db, employee_id):
    with db.transaction() as cur:
        cur.execute("""
            SELECT e.employee_id IN (SELECT employee_id FROM signed_in_clinicians(now())) AS signed_in,
                   e.last_login
            FROM employees e WHERE e.employee_id = %s""", (employee_id,))
        return cur.fetchone()


def protected_get_route_elsewhere(service_env):
    """A protected GET route (no path parameters) of another service, or None if none has one yet."""
    for name, module in SERVICE_MODULES.items():
        if name == "oncall":
            continue
        app = importlib.import_module(f"{module}.app").create_app(dict(service_env))
        for rule in app.url_map.iter_rules():
            view = app.view_functions[rule.endpoint]
            if ("GET" in rule.methods and not rule.arguments and rule.endpoint != "static"
                    and not getattr(view, "hg_public", False)):
                return name, rule.rule
    return None


def test_login_me_logout_and_the_token_is_refused_by_another_service(oncall, fresh, db, service_env,
                                                                     start_service, clock):
    response = login(oncall, "N01")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["employee"] == {"employee_id": "N01", "login": "N01", "name": "Maria Gonzalez",
                                "role": "NURSE", "tier": 1, "is_supervisor": True,
                                "is_account_admin": False, "is_privacy_officer": False}
    token = body["token"]
    expires_at = dt.datetime.fromisoformat(body["expires_at"])
    # A 12-hour shift and its handovers (SESSION_TTL_HOURS, default 14).
    assert dt.timedelta(hours=13, minutes=59) < expires_at - clock.now() <= dt.timedelta(hours=14)
    state = signed_in(db, "N01")
    assert state["signed_in"] and state["last_login"] is not None
    with db.transaction() as cur:
        cur.execute("SELECT token_hash FROM sessions WHERE employee_id = 'N01'")
        assert [row["token_hash"] for row in cur.fetchall()] == [token_hash(token)]  # never the token

    answer = me(oncall.url, token)
    assert answer.status_code == 200
    assert answer.json()["employee"]["employee_id"] == "N01"
    assert answer.json()["timezone"] == "Europe/London"  # HOSPITAL_TZ: the web UI shows times in it
    assert "password_hash" not in answer.text

    # Another process sees the same session: another service if one has a protected route, or
    # else a second on-call process.
    found = protected_get_route_elsewhere(service_env)
    other_name, other_path = found if found else ("oncall", "/api/v1/auth/me")
    other = start_service(other_name)
    assert requests.get(other.url + other_path, headers=bearer(token), timeout=10).status_code != 401

    assert logout(oncall, token).status_code == 204
    assert not signed_in(db, "N01")["signed_in"]
    for base_url, path in ((oncall.url, "/api/v1/auth/me"), (other.url, other_path)):
        refused = requests.get(base_url + path, headers=bearer(token), timeout=10)
        assert refused.status_code == 401
        assert "sign in again" in refused.json()["message"]


def test_signing_out_of_one_workstation_keeps_the_clinician_signed_in_on_the_other(oncall, fresh, db):
    first, second = login(oncall, "D02").json()["token"], login(oncall, "D02").json()["token"]
    assert logout(oncall, first).status_code == 204
    assert me(oncall.url, first).status_code == 401
    assert me(oncall.url, second).status_code == 200
    assert signed_in(db, "D02")["signed_in"]  # still reachable for incidents
    logout(oncall, second)
    assert not signed_in(db, "D02")["signed_in"]


def test_a_session_signs_in_until_it_expires_at_the_instant_asked_about(oncall, fresh, db):
    """Signed in is judged at an instant the caller passes (the clock), not at SQL's now()."""
    login(oncall, "N03")
    with db.transaction() as cur:
        cur.execute("""
            SELECT 'N03' IN (SELECT employee_id FROM signed_in_clinicians(now())) AS now,
                   'N03' IN (SELECT employee_id FROM signed_in_clinicians(now() + interval '15 hours'))
                       AS after_expiry""")
        assert cur.fetchone() == {"now": True, "after_expiry": False}


def test_a_session_expires_after_its_lifetime(oncall, fresh, clock):
    token = login(oncall, "N02").json()["token"]
    assert me(oncall.url, token).status_code == 200
    clock.advance(14 * 3600 - 60)  # a minute before the end of the 14 hours
    assert me(oncall.url, token).status_code == 200
    clock.advance(2 * 60)
    refused = me(oncall.url, token)
    assert refused.status_code == 401 and refused.json()["error"] == "Unauthorized"


# --------------------------------------------------------------------------- the browser's session
def browser_login(oncall, login_name, password=PASSWORD):
    return requests.post(oncall.url + "/api/v1/auth/login", timeout=10, json={
        "login": login_name, "password": password, "session_cookie": True})


def from_browser(method, url, session_token, csrf=None):
    """What the browser sends: the cookie by itself, the CSRF header only if the page adds it."""
    return requests.request(method, url, cookies={"hg_session": session_token}, timeout=10,
                            headers={"X-CSRF-Token": csrf} if csrf else {})


def me_from_browser(base_url, session_token):
    return from_browser("GET", base_url + "/api/v1/auth/me", session_token)


def test_the_web_uis_session_is_an_httponly_strict_cookie_and_the_page_never_sees_the_token(
        oncall, fresh, db):
    answer = browser_login(oncall, "D01")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "token" not in body and len(body["csrf_token"]) == 64
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("hg_session=")
    assert {"HttpOnly", "SameSite=Strict", "Path=/api/v1"} <= {part.strip() for part in cookie.split(";")}
    assert "Secure" not in cookie  # WEB_ORIGIN is http://localhost:8080 here
    session_token = answer.cookies["hg_session"]
    with db.transaction() as cur:
        cur.execute("SELECT token_hash FROM sessions WHERE employee_id = 'D01'")
        assert [row["token_hash"] for row in cur.fetchall()] == [token_hash(session_token)]
    # A new tab has only the cookie: /auth/me tells it who is signed in, and the CSRF token.
    new_tab = me_from_browser(oncall.url, session_token)
    assert new_tab.status_code == 200
    assert new_tab.json()["employee"]["employee_id"] == "D01"
    assert new_tab.json()["session"]["csrf_token"] == body["csrf_token"]
    assert new_tab.json()["session"]["idle_minutes"] == 30


def test_a_cookie_alone_changes_nothing_without_the_csrf_token(oncall, fresh, start_service):
    answer = browser_login(oncall, "D02")
    session_token, csrf = answer.cookies["hg_session"], answer.json()["csrf_token"]
    notification = start_service("notification")
    # A forged request carries the cookie (were it sent at all) but cannot know the CSRF token.
    for base, path in ((notification.url, "/api/v1/ws-ticket"), (oncall.url, "/api/v1/auth/logout")):
        for forged in (None, "0" * 64, csrf[:-1]):
            refused = from_browser("POST", base + path, session_token, forged)
            assert refused.status_code == 403, (path, refused.text)
            assert "X-CSRF-Token" in refused.json()["message"]
    # Reading is allowed with the cookie alone (another site's page cannot read the answer).
    assert from_browser("GET", notification.url + "/api/v1/notifications", session_token).status_code == 200
    ticket = from_browser("POST", notification.url + "/api/v1/ws-ticket", session_token, csrf)
    assert ticket.status_code in (200, 201), ticket.text
    # Sign-out with the CSRF token ends the session (every tab shares it) and drops the cookie.
    out = from_browser("POST", oncall.url + "/api/v1/auth/logout", session_token, csrf)
    assert out.status_code == 204
    assert out.headers["Set-Cookie"].startswith("hg_session=;")
    for base, path in ((oncall.url, "/api/v1/auth/me"), (notification.url, "/api/v1/notifications")):
        assert from_browser("GET", base + path, session_token).status_code == 401


def test_the_service_token_is_no_session_cookie(oncall, fresh, service_env):
    refused = from_browser("GET", oncall.url + "/api/v1/employees", service_env["SERVICE_TOKEN"])
    assert refused.status_code == 401
    assert requests.get(oncall.url + "/api/v1/employees", headers=bearer(service_env["SERVICE_TOKEN"]),
                        timeout=10).status_code == 200


def test_a_browser_session_lasts_the_shift_while_used_and_ends_after_30_idle_minutes(
        oncall, fresh, db, clock):
    session_token = browser_login(oncall, "N04").cookies["hg_session"]
    for _ in range(3 * 13):  # a page asks at least every 20 minutes: the whole 13 hours
        clock.advance(20 * 60)
        assert me_from_browser(oncall.url, session_token).status_code == 200
    clock.advance(29 * 60)
    assert me_from_browser(oncall.url, session_token).status_code == 200
    assert signed_in(db, "N04")["signed_in"]
    # The browser closed: 30 minutes without a request end the session, for every service.
    clock.advance(31 * 60)
    assert me_from_browser(oncall.url, session_token).status_code == 401
    with db.transaction() as cur:
        cur.execute("SELECT 'N04' IN (SELECT employee_id FROM signed_in_clinicians(%s)) AS signed_in",
                    (clock.now(),))
        assert cur.fetchone()["signed_in"] is False


def test_a_used_browser_session_still_ends_with_the_shift(oncall, fresh, clock):
    session_token = browser_login(oncall, "N05").cookies["hg_session"]
    for _ in range(14 * 3):  # used every 20 minutes: 14 hours on, the shift is over all the same
        clock.advance(20 * 60)
        me_from_browser(oncall.url, session_token)
    assert me_from_browser(oncall.url, session_token).status_code == 401


def test_idle_and_shift_length_come_from_the_configuration(service_env, fresh, clock):
    for setting in ({"SESSION_IDLE_MINUTES": "0"}, {"SESSION_IDLE_MINUTES": "soon"},
                    {"SESSION_TTL_HOURS": "1", "SESSION_IDLE_MINUTES": "90"},
                    {"ONE_TIME_PASSWORD_HOURS": "0"}):
        from healthguard.settings import ConfigError
        from oncall.app import create_app
        with pytest.raises(ConfigError, match=next(iter(setting.keys() - {"SESSION_TTL_HOURS"}))):
            create_app({**service_env, **setting})
    service = ServiceProcess("oncall", {**service_env, "SESSION_IDLE_MINUTES": "5"}).start()
    try:
        session_token = browser_login(service, "N06").cookies["hg_session"]
        clock.advance(4 * 60)
        assert me_from_browser(service.url, session_token).status_code == 200
        clock.advance(6 * 60)
        assert me_from_browser(service.url, session_token).status_code == 401
    finally:
        service.stop()


def test_session_lifetime_comes_from_the_configuration(service_env, fresh, clock):
    service = ServiceProcess("oncall", {**service_env, "SESSION_TTL_HOURS": "1"}).start()
    try:
        body = login(service, "N03").json()
    finally:
        service.stop()
    left = dt.datetime.fromisoformat(body["expires_at"]) - clock.now()
    assert dt.timedelta(minutes=59) < left <= dt.timedelta(hours=1)


def test_wrong_login_or_password_get_the_same_401(oncall, fresh):
    wrong_password = login(oncall, "N04", "password124")
    unknown_login = login(oncall, "NOBODY")
    assert wrong_password.status_code == unknown_login.status_code == 401
    assert wrong_password.json()["message"] == unknown_login.json()["message"] == "wrong login or password"
    assert "token" not in wrong_password.json()


@pytest.mark.parametrize("body, field", [
    ({"login": "N01"}, "password"), ({"password": PASSWORD}, "login"),
    ({"login": 7, "password": PASSWORD}, "login"), ({"login": "", "password": PASSWORD}, "login"),
    ({"login": "N01", "password": "x" * 257}, "password"), ([], None)])
def test_malformed_sign_in_requests(oncall, fresh, db, body, field):
    """Not what the document describes: 400 naming the field, and no attempt is recorded."""
    response = requests.post(oncall.url + "/api/v1/auth/login", json=body, timeout=10)
    assert response.status_code == 400 and response.json()["status"] == 400
    assert response.json().get("field") == field
    not_json = requests.post(oncall.url + "/api/v1/auth/login", data="login=N01", timeout=10)
    assert not_json.status_code == 400
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM login_attempts")
        assert cur.fetchone()["n"] == 0


def test_a_password_is_compared_as_sent(oncall, fresh):
    assert login(oncall, " N01 ").status_code == 200  # the login is stripped of blanks
    assert login(oncall, "N01", f" {PASSWORD}").status_code == 401  # a password is not


def test_failures_from_one_address_delay_it_progressively(oncall, fresh, clock):
    """All from this test's one address: five failures are free, each further one doubles the
    wait (30 s, then 60 s) before that address may try the login again, right password or not.
    Other addresses: tests/test_accounts.py."""
    for _ in range(5):
        assert login(oncall, "N05", "guess").status_code == 401
    locked = login(oncall, "N05")  # even the right password
    assert locked.status_code == 429
    retry_after = int(locked.headers["Retry-After"])
    assert 25 < retry_after <= 30
    assert locked.json()["retry_after_seconds"] == retry_after
    assert login(oncall, "N06").status_code == 200  # other logins are not affected
    clock.advance(retry_after - 5)
    assert login(oncall, "N05").status_code == 429
    clock.advance(5)
    assert login(oncall, "N05", "guess").status_code == 401  # the sixth failure: 60 s now
    second = login(oncall, "N05")
    assert second.status_code == 429 and 55 < int(second.headers["Retry-After"]) <= 60
    clock.advance(60)
    assert login(oncall, "N05").status_code == 200


def test_a_success_resets_the_failure_count(oncall, fresh):
    for _ in range(4):
        login(oncall, "E01", "guess")
    assert login(oncall, "E01").status_code == 200
    for _ in range(4):
        assert login(oncall, "E01", "guess").status_code == 401
    assert login(oncall, "E01").status_code == 200


def test_no_clear_password_or_token_anywhere_in_the_database(oncall, fresh, db):
    token = login(oncall, "S01").json()["token"]
    login(oncall, "S02", "hunter2-wrong")
    with db.transaction() as cur:
        cur.execute("""SELECT table_name FROM information_schema.tables
                       WHERE table_schema = 'public' AND table_type = 'BASE TABLE'""")
        tables = [row["table_name"] for row in cur.fetchall()]
        for table in tables:
            cur.execute(f'SELECT count(*) AS n FROM "{table}" t '  # noqa: S608 - names from the catalogue
                        "WHERE row_to_json(t)::text LIKE ANY (%s)",
                        (["%password123%", "%hunter2%", f"%{token}%"],))
            assert cur.fetchone()["n"] == 0, f"a clear secret in table {table}"


def test_cors_allows_only_the_web_origin(oncall, service_env):
    allowed = service_env["WEB_ORIGIN"]
    for origin, expected in ((allowed, allowed), ("https://evil.example", None)):
        preflight = requests.options(oncall.url + "/api/v1/auth/login", timeout=10, headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type"})
        assert preflight.headers.get("Access-Control-Allow-Origin") == expected
        simple = requests.get(oncall.url + "/api/v1/openapi.json", headers={"Origin": origin}, timeout=10)
        assert simple.headers.get("Access-Control-Allow-Origin") == expected
        assert "*" not in simple.headers.get("Access-Control-Allow-Origin", "")


def test_openapi_document_is_valid_and_lists_every_route(app, oncall):
    document = checked_document(app)
    assert requests.get(oncall.url + "/api/v1/openapi.json", timeout=10).json() == document
    # Signing in and changing a password (after a reset there is no session) are the public
    # operations; everything else inherits the bearer requirement.
    public = {path for path, item in document["paths"].items() for op in item.values()
              if op.get("security") == []}
    assert public == {"/api/v1/auth/login", "/api/v1/auth/password"}
    assert document["security"] == [{"bearerAuth": []}]
    assert "429" in document["paths"]["/api/v1/auth/login"]["post"]["responses"]


def test_schema_valid_requests_are_accepted_and_answers_match_the_document(app, db, fresh):
    def supervisor_session() -> dict:
        """Each call its own session of a supervising doctor: a call may sign out."""
        token = new_session_token()
        with db.transaction() as cur:
            cur.execute("INSERT INTO sessions (employee_id, token_hash, expires_at) "
                        "VALUES ('D01', %s, now() + interval '1 hour')", (token_hash(token),))
        return {"Authorization": f"Bearer {token}"}

    with db.transaction() as cur:
        cur.execute("""
            INSERT INTO oncall_overrides (employee_id, starts_at, ends_at, created_by)
            SELECT 'D03', now() + interval '1 day', now() + interval '2 days', 'D01'
            FROM generate_series(1, 20) RETURNING override_id""")
        overrides = [row["override_id"] for row in cur.fetchall()]
    answered = fuzz(app, headers=supervisor_session,
                    known_ids={"override_id": overrides, "employee_id": ["D01", "N03", "S12"]})
    # Every route, the account administrators' three and the privacy officers' two included.
    assert len(answered) == 17
    # The run reached past the refusals: every operation succeeded at least once, but signing
    # in and changing a password, whose generated credentials are nobody's (401), overrides,
    # whose generated employee ids and periods name nobody or fall outside the rota (422), and
    # the PHI access log, which a supervisor may not read (403; test_phi_access reads it).
    succeeded = {label for label, statuses in answered.items() if any(200 <= s < 300 for s in statuses)}
    assert set(answered) - succeeded == {"POST /api/v1/auth/login", "POST /api/v1/auth/password",
                                         "POST /api/v1/schedules/overrides", "GET /api/v1/privacy/access-log",
                                         "GET /api/v1/privacy/access-log/export"}, answered


def test_old_sign_in_records_are_pruned_and_recent_ones_kept(db, fresh):
    from healthguard.auth import token_hash as hash_of
    from oncall.prune_sign_in_records import prune_sign_in_records
    with db.transaction() as cur:
        cur.execute("""
            INSERT INTO login_attempts (login, succeeded, attempted_at) VALUES
              ('N01', false, now() - interval '2 days'), ('N01', false, now() - interval '10 minutes')""")
        cur.execute("""
            INSERT INTO sessions (employee_id, token_hash, created_at, expires_at, revoked_at) VALUES
              ('N01', %s, now() - interval '3 days', now() - interval '2 days', NULL),
              ('N01', %s, now() - interval '3 days', now() + interval '1 day', now() - interval '2 days'),
              ('N01', %s, now() - interval '1 hour', now() + interval '11 hours', NULL),
              ('N01', %s, now() - interval '5 hours', now() - interval '1 hour', NULL)
        """, [hash_of(f"t{n}") for n in range(4)])
        assert prune_sign_in_records(cur) == {"login_attempts": 1, "sessions": 2}
        cur.execute("SELECT token_hash FROM sessions ORDER BY created_at DESC")
        assert [row["token_hash"] for row in cur.fetchall()] == [hash_of("t2"), hash_of("t3")]
        cur.execute("SELECT count(*) AS n FROM login_attempts")
        assert cur.fetchone()["n"] == 1
