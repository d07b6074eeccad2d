"""Every route of every service refuses a missing, malformed, expired or revoked session token
with a 401 JSON error. The routes are read from each app's url_map, so a route added later is
covered without touching this file; only routes marked public escape, and those are listed."""
import re

import pytest

from healthguard.auth import new_session_token, token_hash
from tests.support import SERVICE_MODULES

# Routes anyone may call. Anything else marked public must refuse a request without credentials
# (a device route without its X-API-Key, a WebSocket endpoint without a handshake).
OPEN_ROUTES = {("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics"), ("GET", "/api/v1/openapi.json"),
               ("POST", "/api/v1/auth/login"),
               ("POST", "/api/v1/auth/password"),  # proven by the current password in the body
               ("GET", "/api/v1/preferences/hospital"),  # its time zone: the status page, before sign-in
               ("GET", "/api/v1/push/vapid-public-key"),  # a public key, for subscribing to push
               ("POST", "/api/v1/channel-ack")}  # proven by the single-use token in the body
_SAMPLE_ARGUMENTS = {"int": "1", "float": "1.0", "uuid": "00000000-0000-0000-0000-000000000000"}


def sample_url(rule) -> str:
    """A concrete URL for a rule: every path parameter gets a plausible value."""
    def value(match):
        converter = (match.group(1) or "default").strip(":").split("(")[0]
        return _SAMPLE_ARGUMENTS.get(converter, "X1")
    return re.sub(r"<(?:([^:<>]+):)?[^<>]+>", value, rule.rule)


def operations(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule, getattr(view, "hg_public", False)


pytestmark = pytest.mark.module_database  # the apps are built once for the module


@pytest.fixture
def tokens(db):
    """Session tokens of a supervising doctor: live, expired and revoked."""
    def session(expires: str, revoked: bool) -> str:
        token = new_session_token()
        with db.transaction() as cur:
            cur.execute("""
                INSERT INTO sessions (employee_id, token_hash, expires_at, revoked_at)
                VALUES ('D01', %s, now() + %s::interval, CASE WHEN %s THEN now() END)
            """, (token_hash(token), expires, revoked))
        return token

    return {"expired": lambda: session("-1 minute", False), "revoked": lambda: session("1 hour", True),
            "live": lambda: session("1 hour", False)}


def call(client, method, url, headers):
    # No body: authentication is decided before any input is read.
    return client.open(url, method=method, headers=headers)


@pytest.mark.parametrize("service", sorted(SERVICE_MODULES))
def test_every_protected_route_refuses_missing_expired_and_revoked_tokens(service, apps, tokens):
    app = apps[service]
    client = app.test_client()
    expired, revoked = tokens["expired"](), tokens["revoked"]()
    bad_credentials = {
        "missing": {},
        "not bearer": {"Authorization": f"Basic {expired}"},
        "unknown": {"Authorization": f"Bearer {new_session_token()}"},
        "expired": {"Authorization": f"Bearer {expired}"},
        "revoked": {"Authorization": f"Bearer {revoked}"},
    }
    checked = []
    for method, rule, public in operations(app):
        if public:
            continue
        url = sample_url(rule)
        for what, headers in bad_credentials.items():
            response = call(client, method, url, headers)
            assert response.status_code == 401, f"{service} {method} {rule.rule} with a {what} token"
            body = response.get_json(silent=True)
            assert body and body["status"] == 401 and body["message"], f"{service} {method} {rule.rule}"
        # The refusals above are about the token: a live session of the same clinician passes
        # authentication (whatever the route then answers to an empty request).
        passed = call(client, method, url, {"Authorization": f"Bearer {tokens['live']()}"})
        assert passed.status_code != 401, f"{service} {method} {rule.rule} refused a live session"
        checked.append((method, rule.rule))
    if service == "oncall":
        assert ("GET", "/api/v1/oncall/available") in checked and len(checked) >= 10


@pytest.mark.parametrize("service", sorted(SERVICE_MODULES))
def test_only_health_metrics_documents_login_and_device_routes_are_open(service, apps):
    """The issue: every route but /health and /metrics requires a session (devices use their API
    key). API documents and the login form are open by nature; nothing else may be."""
    app = apps[service]
    client = app.test_client()
    for method, rule, public in operations(app):
        if not public or (method, rule.rule) in OPEN_ROUTES:
            continue
        response = call(client, method, sample_url(rule), {})
        # 401: a device (or device-or-session) route. 400: a WebSocket endpoint, which refuses a
        # plain request and checks the session in its handshake (tested by its service's tests).
        assert response.status_code in (400, 401), (
            f"{service} {method} {rule.rule} answers {response.status_code} without any credential")
