"""No input is a server error (issue 12). Every value of tests/hostile_corpus.py goes into every
body field, query parameter and path parameter of every route of every service, as each service's
own OpenAPI document lists them, and every hostile body to every route: the answer is never a 5xx,
an error is the one JSON error body, and the rows stored before are all still there unchanged.
The same corpus then goes through nginx to the services running under gunicorn, and to the
notification WebSocket."""
import json
import re
import struct

import pytest
import requests
import websocket

from healthguard.auth import new_session_token, public, token_hash
from healthguard.context import platform
from tests import hostile_corpus as corpus
from tests.support import (
    DEVICE_KEY,
    SERVICE_MODULES,
    ServiceProcess,
    build_app,
    running_nginx,
)

pytestmark = pytest.mark.module_database

DOCUMENT = "/api/v1/openapi.json"
# The tables whose rows a request could change (sessions and sign-in attempts are the test's own).
STORED_TABLES = ("employees", "patients", "alert_types", "alerts", "outbox", "incidents",
                 "incident_assignments", "incident_history", "incident_notes", "notifications",
                 "shifts", "oncall_rotations", "oncall_rotation_members", "oncall_overrides",
                 "escalation_policies")


@pytest.fixture(scope="module")
def apps(module_service_env):
    """Every service's app in-process, incident management asking a real on-call service: a
    claim, reassignment or decline needs to know who is on duty (503 without it)."""
    oncall = ServiceProcess("oncall", module_service_env, background=False).start()
    try:
        env = {**module_service_env, "ONCALL_URL": oncall.url}
        built = {name: build_app(module, env) for name, module in SERVICE_MODULES.items()}
        yield built
        for app in built.values():
            app.extensions["healthguard"].db.close()
    finally:
        oncall.stop()


@pytest.fixture
def session_of(db):
    """A fresh session token of a clinician (a row in sessions only: no employee row changes)."""
    def mint(employee_id="D01") -> str:
        token = new_session_token()
        with db.transaction() as cur:
            cur.execute("""INSERT INTO sessions (employee_id, token_hash, expires_at)
                           VALUES (%s, %s, now() + interval '1 hour')""", (employee_id, token_hash(token)))
        return token
    return mint


@pytest.fixture
def stored(db, make_incident):
    """Rows the hostile requests aim at (an assigned incident of the caller, with its alert), and
    a fingerprint of every stored row, to tell after each request whether anything changed."""
    incident_id = make_incident(assigned_to="D01")
    every_row = " UNION ALL ".join(f"SELECT '{table} ' || to_jsonb(t)::text FROM {table} t"  # noqa: S608
                                   for table in STORED_TABLES)

    def fingerprint() -> str:
        with db.transaction() as cur:
            cur.execute(f"SELECT md5(string_agg(row, ',' ORDER BY row)) AS rows "  # noqa: S608
                        f"FROM ({every_row}) AS s(row)")
            return cur.fetchone()["rows"]
    return {"incident_id": incident_id, "fingerprint": fingerprint}


class StoredRows:
    """Checks, request by request, that a refused request changed nothing stored. An accepted one
    may (a note that merely looks like a date is a note), and becomes the new baseline."""
    MUTATING = {"POST", "PUT", "PATCH", "DELETE"}

    def __init__(self, fingerprint):
        self.fingerprint = fingerprint
        self.last = fingerprint()

    def check(self, where: str, method: str, status: int) -> None:
        if method not in self.MUTATING:
            return
        now = self.fingerprint()
        assert status < 400 or now == self.last, f"{where}: refused ({status}), yet stored rows changed"
        self.last = now


# --------------------------------------------------------------------------- the document's routes
def _resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _sample(document: dict, schema: dict):
    """A valid-looking value of a schema: its example, else one of its type."""
    schema = _resolve(document, schema)
    if schema.get("examples"):
        return schema["examples"][0]
    if "example" in schema:
        return schema["example"]
    if schema.get("enum"):
        return schema["enum"][0]
    for branch in schema.get("anyOf", ()):
        if _resolve(document, branch).get("type") != "null":
            return _sample(document, branch)
    kind, fmt = schema.get("type"), schema.get("format")
    if kind == "string":
        return {"date-time": "2026-03-01T10:00:00Z", "date": "2026-03-01"}.get(fmt, "ZZ1")
    if kind == "array":
        return [_sample(document, schema.get("items", {}))]
    return {"integer": 1, "number": 1.0, "boolean": False, "object": {}}.get(kind, "ZZ1")


class Operation:
    def __init__(self, document, path, method, spec):
        self.path, self.method = path, method.upper()
        self.label = f"{self.method} {path}"
        self.public = spec.get("security") == []  # sign-in: a 401 there is its answer
        parameters = spec.get("parameters", [])
        self.path_params = [p for p in parameters if p["in"] == "path"]
        self.query_params = [p["name"] for p in parameters if p["in"] == "query"]
        self.body_fields, self.body = [], None
        content = spec.get("requestBody", {}).get("content", {}).get("application/json")
        if content:
            schema = _resolve(document, content["schema"])
            properties = schema.get("properties", {})
            self.body_fields = list(properties)
            self.body = {name: _sample(document, properties[name]) for name in schema.get("required", ())}

    def url(self, known_ids: dict, **override) -> str:
        def segment(match):
            name = match.group(1)
            if name in override:
                return override[name]
            param = next(p for p in self.path_params if p["name"] == name)
            return str(known_ids["int"] if param["schema"].get("type") == "integer" else known_ids["str"])
        return re.sub(r"\{([^}]+)\}", segment, self.path)

    def body_with(self, field: str, raw: str) -> str:
        """The sample body with one field's value replaced by raw JSON text."""
        parts = [f"{json.dumps(name)}: {json.dumps(value)}" for name, value in (self.body or {}).items()
                 if name != field]
        parts.append(f"{json.dumps(field)}: {raw}")
        return "{" + ", ".join(parts) + "}"


def operations(document: dict) -> list[Operation]:
    return [Operation(document, path, method, spec)
            for path, item in document["paths"].items()
            for method, spec in item.items() if method in ("get", "post", "put", "patch", "delete")]


def hostile_requests(operation: Operation, known_ids: dict):
    """(what, url, body) of every corpus entry aimed at this operation."""
    url = operation.url(known_ids)
    for field in operation.body_fields:
        for name, raw in corpus.FIELD_VALUES.items():
            yield f"{field}={name}", url, operation.body_with(field, raw)
    for name, raw in corpus.BODIES.items():
        yield f"body {name}", url, raw
    base_body = json.dumps(operation.body) if operation.body is not None else None
    for param in operation.query_params:
        for name, raw in corpus.QUERY_VALUES.items():
            yield f"?{param}={name}", f"{url}?{param}={raw}", base_body
    yield "NUL in a query parameter's name", f"{url}?a%00b=1", base_body
    for param in operation.path_params:
        for name, raw in corpus.PATH_VALUES.items():
            yield f"/{{{param['name']}}}={name}", operation.url(known_ids, **{param["name"]: raw}), base_body


def check_answer(where: str, status: int, content_type: str, text: str) -> None:
    assert status < 500, f"{where}: {status} {text[:300]}"
    if status >= 400:
        assert content_type.startswith("application/json"), f"{where}: {status} {content_type} {text[:200]}"
        body = json.loads(text)
        assert body["status"] == status and body["message"], f"{where}: {body}"


def _known_ids(stored) -> dict:
    # An employee other than the caller (D01): a password reset of the caller would end the very
    # session the corpus is sent with.
    return {"int": stored["incident_id"], "str": "S01"}


# --------------------------------------------------------------------------- in-process, every route
@pytest.mark.parametrize("service", sorted(SERVICE_MODULES))
def test_no_hostile_input_is_a_server_error_or_changes_what_is_stored(service, apps, stored, session_of):
    app = apps[service]
    client = app.test_client()
    document = client.get(DOCUMENT).get_json()
    rows = StoredRows(stored["fingerprint"])
    token = session_of()
    accepted, sent = [], 0
    for operation in operations(document):
        for what, url, body in hostile_requests(operation, _known_ids(stored)):
            where = f"{service} {operation.label} {what}"
            headers = {"Authorization": f"Bearer {token}", "X-API-Key": DEVICE_KEY}
            if body is not None:
                headers["Content-Type"] = "application/json"
            answer = client.open(url, method=operation.method, headers=headers,
                                 data=body.encode("utf-8", "surrogatepass") if body is not None else None)
            sent += 1
            check_answer(where, answer.status_code, answer.content_type, answer.get_data(as_text=True))
            rows.check(where, operation.method, answer.status_code)
            if not operation.public:
                assert answer.status_code != 401, f"{where}: the session was refused, so nothing was tried"
            if answer.status_code < 400:
                accepted.append(what)
                if "logout" in operation.path:
                    token = session_of()
    never = [what for what in accepted  # a body field's value (a query's "1e309" is mere text)
             if what[0] not in "?/" and what.split("=", 1)[-1] in corpus.NEVER_ACCEPTED]
    assert not never, f"{service} accepted: {never}"
    assert sent > 50


def test_json_nested_too_deep_is_refused_before_parsing(apps, session_of):
    client = apps["incident-management"].test_client()
    answer = client.post("/api/v1/incidents/1/notes", data='{"note": ' + "[" * 33 + "]" * 33 + "}",
                         headers={"Authorization": f"Bearer {session_of()}",
                                  "Content-Type": "application/json"})
    assert answer.status_code == 400
    assert "nested deeper than 32" in answer.get_json()["message"]


def test_an_invented_http_method_is_counted_as_other(apps):
    """A method name is a label value of http_requests_total: one a client invents must not add a
    series (an unauthenticated way to grow Prometheus without bound)."""
    client = apps["oncall"].test_client()
    assert client.open("/health", method="ZZQD").status_code == 405
    assert client.open("/health", method="PATCH").status_code == 405
    exposition = client.get("/metrics").get_data(as_text=True)
    assert 'method="ZZQD"' not in exposition
    assert re.search(r'http_requests_total\{[^}]*method="other"[^}]*status="405"', exposition)
    assert re.search(r'http_requests_total\{[^}]*method="PATCH"[^}]*status="405"', exposition)


# --------------------------------------------------------------------------- gunicorn and nginx
@pytest.fixture(scope="module")
def site(module_service_env, tmp_path_factory):
    """The four services under gunicorn (web processes only) and the shipped nginx.conf in front."""
    services = {}
    try:
        oncall = ServiceProcess("oncall", module_service_env, background=False).start()
        services["oncall"] = oncall
        for name in ("alert-ingestion", "incident-management", "notification"):
            services[name] = ServiceProcess(name, {**module_service_env, "ONCALL_URL": oncall.url},
                                            background=False).start()
        run_dir = tmp_path_factory.mktemp("hostile-nginx")
        empty_root = run_dir / "html"
        empty_root.mkdir()
        (empty_root / "index.html").write_text("<!doctype html><title>HealthGuard</title>")
        with running_nginx(run_dir, html_root=empty_root,
                           ports={name: service.port for name, service in services.items()}) as port:
            yield {"url": f"http://127.0.0.1:{port}", "services": services}
    finally:
        for service in services.values():
            service.stop()


def test_the_corpus_through_nginx(site, stored, session_of):
    """Whole hostile bodies and every hostile query value and path segment, on every route,
    through nginx to gunicorn: the wire adds its own ways to go wrong (nginx decodes nothing,
    gunicorn parses the request line)."""
    base = site["url"]
    rows = StoredRows(stored["fingerprint"])
    token = session_of()
    sent = 0
    with requests.Session() as http:
        for name, service in site["services"].items():
            document = requests.get(f"{service.url}{DOCUMENT}", timeout=10).json()
            for operation in operations(document):
                for what, url, body in hostile_requests(operation, _known_ids(stored)):
                    if what.startswith(tuple(f"{field}=" for field in operation.body_fields)):
                        continue  # field by field was done in-process; here the wire's part
                    headers = {"Authorization": f"Bearer {token}", "X-API-Key": DEVICE_KEY,
                               "Content-Type": "application/json"}
                    answer = http.request(operation.method, base + url, headers=headers, timeout=10,
                                          data=body.encode("utf-8", "surrogatepass") if body else None)
                    sent += 1
                    where = f"nginx {name} {operation.label} {what}"
                    check_answer(where, answer.status_code, answer.headers.get("Content-Type", ""),
                                 answer.text)
                    rows.check(where, operation.method, answer.status_code)
                    if answer.status_code < 400 and "logout" in operation.path:
                        token = session_of()
    assert sent > 200


def test_the_services_name_no_server_software(site):
    for name, service in site["services"].items():
        for path in ("/health", "/api/v1/no-such-route", DOCUMENT):
            server = requests.get(service.url + path, timeout=10).headers.get("Server", "")
            assert "gunicorn" not in server.lower(), f"{name} {path}: {server}"
            assert not re.search(r"\d", server), f"{name} {path} names a version: {server}"


def test_public_readiness_names_no_host_port_or_driver_text(site):
    """/ready and nginx's /ready/<service> are public: they say which part is down, never where
    it is (the down case is in test_platform); here every answer is checked for addresses."""
    for name, service in site["services"].items():
        for url in (f"{service.url}/ready", f"{site['url']}/ready/{name}"):
            answer = requests.get(url, timeout=10)
            assert answer.status_code == 200, answer.text
            assert not re.search(r"127\.0\.0\.1|localhost|:\d{2,5}\b|port|host", answer.text), answer.text


def _socket(site, token):
    url = f"ws://{site['url'].removeprefix('http://')}/ws"
    return websocket.create_connection(url, timeout=10, header=[f"Authorization: Bearer {token}"])


def _next_frame(ws) -> tuple[int | None, dict | None]:
    """The next frame that is not a ping: (None, message) or (close code, None)."""
    while True:
        opcode, frame = ws.recv_data_frame()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return (struct.unpack("!H", frame.data[:2])[0] if len(frame.data) >= 2 else 1005), None
        message = json.loads(frame.data)
        if message.get("type") != "ping":
            return None, message


def test_hostile_socket_frames_get_an_error_frame_and_the_socket_stays_open(site, session_of):
    ws = _socket(site, session_of())
    try:
        for name, frame in corpus.SOCKET_FRAMES.items():
            assert len(frame.encode("utf-8", "surrogatepass")) <= 4096, name
            ws.send(frame)
            close_code, message = _next_frame(ws)
            assert close_code is None, f"{name}: closed with {close_code}"
            assert message["type"] == "error" and message["message"], name
        ws.send('{"type": "ping"}')
        assert _next_frame(ws) == (None, {"type": "pong"})
    finally:
        ws.close()


def test_a_socket_frame_over_the_limit_closes_with_1009(site, session_of):
    ws = _socket(site, session_of())
    try:
        ws.send("[" * 3000 + "]" * 3000)
        close_code, _ = _next_frame(ws)
        assert close_code == 1009
    finally:
        ws.close()


def test_a_value_the_database_refuses_is_a_logged_400(module_service_env, capsys):
    """psycopg2.DataError is the last line of defence: a value the models let through and
    PostgreSQL refuses (here a number out of a smallint's range) is the caller's 400, logged."""
    app = build_app("oncall", module_service_env)

    @app.get("/test/out-of-range")
    @public
    def out_of_range():
        with platform().db.transaction() as cur:
            cur.execute("SELECT %s::smallint", (10**6,))
        return {}

    try:
        answer = app.test_client().get("/test/out-of-range")
    finally:
        app.extensions["healthguard"].db.close()
    assert answer.status_code == 400
    assert answer.get_json()["message"] == "a value in the request is out of range or invalid"
    assert "smallint" not in answer.get_data(as_text=True)
    assert "database refused a value the models let through" in capsys.readouterr().err  # the JSON log
