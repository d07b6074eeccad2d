"""The edge as a client meets it (issue 17, finding 9): every error through nginx is the services'
JSON error body, whether nginx, gunicorn or the app refuses; nginx logs no query string, in its
access log or its error log; and the Content-Security-Policy names the configured origin, never
the request's Host. The shipped nginx config (rendered for loopback) in front of real services
under gunicorn."""
import json
import re
import socket

import pytest
import requests

from tests.support import ServiceProcess, free_port, running_nginx, wait_for

pytestmark = pytest.mark.module_database

WEB_ORIGIN = "https://healthguard.hospital.example"
PATIENT = "SMITH-JOHN-1942"  # what a search would carry in its query string


@pytest.fixture(scope="module")
def edge(module_service_env, tmp_path_factory):
    """oncall and incident management under gunicorn, nginx in front; the notification service is
    not started, to show what a service that is down looks like."""
    services = {}
    try:
        services["oncall"] = ServiceProcess("oncall", module_service_env, background=False).start()
        services["incident-management"] = ServiceProcess(
            "incident-management", {**module_service_env, "ONCALL_URL": services["oncall"].url},
            background=False).start()
        ports = {name: service.port for name, service in services.items()}
        ports["alert-ingestion"] = ports["notification"] = free_port()  # nothing listens there
        run_dir = tmp_path_factory.mktemp("edge-nginx")
        (run_dir / "html").mkdir()
        (run_dir / "html" / "index.html").write_text("<!doctype html><title>HealthGuard</title>")
        with running_nginx(run_dir, html_root=run_dir / "html", ports=ports, web_origin=WEB_ORIGIN) as port:
            yield {"port": port, "url": f"http://127.0.0.1:{port}", "services": services,
                   "logs": (run_dir / "access.log", run_dir / "error.log")}
    finally:
        for service in services.values():
            service.stop()


def raw(port: int, request: bytes) -> tuple[int, dict, str]:
    """Send bytes as they are (no client library tidies them up); the answer, read to its end."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        try:
            sock.sendall(request)
        except OSError:
            pass  # refused before it was all sent: the answer is still there to read
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body.decode("utf-8", "replace")


def request(method: str, target: str, *headers: str, body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def assert_json_error(answer, status: int, where: str) -> dict:
    got, headers, body = answer
    assert got == status, f"{where}: {got} {body[:200]}"
    assert headers.get("content-type", "").startswith("application/json"), f"{where}: {headers} {body[:200]}"
    error = json.loads(body)
    assert error["status"] == status and error["message"] and error["error"], f"{where}: {error}"
    assert "<html" not in body.lower()
    return error


# What the red team found answered in HTML, and the rest of what nginx or gunicorn may refuse.
REFUSALS = [
    ("TRACE", request("TRACE", "/"), 405),
    ("TRACE of an API", request("TRACE", "/api/v1/incidents"), 405),
    ("POST to a page", request("POST", "/", body=b"x"), 405),
    ("a missing asset", request("GET", "/assets/missing.js"), 404),
    ("a header over nginx's buffer", request("GET", "/api/v1/incidents", "X-Big: " + "a" * 9000), 431),
    ("a request line over nginx's buffer", request("GET", "/api/v1/incidents?q=" + "a" * 9000), 414),
    # Under nginx's limits, over gunicorn's: gunicorn's own refusal, passed through.
    ("a request line over gunicorn's limit", request("GET", "/api/v1/incidents?q=" + "a" * 5000), 414),
    ("more header fields than gunicorn takes",
     request("GET", "/api/v1/incidents", *(f"X-H{n}: 1" for n in range(120))), 431),
    ("a body over nginx's limit", request("POST", f"/api/v1/incidents/1/notes?q={PATIENT}",
                                          "Content-Type: application/json", body=b"x" * 200_000), 413),
    ("a NUL byte in the path", request("GET", "/api/v1/incidents/%00"), 400),
    ("a malformed request line", b"GET /api/v1/incidents HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400),
    ("an unknown transfer coding",
     request("POST", "/api/v1/incidents/1/notes", "Transfer-Encoding: gzip"), 501),
    ("an unknown HTTP version", b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505),
    ("a service that is down", request("GET", f"/api/v1/notifications?q={PATIENT}"), 502),
    ("an unknown API path", request("GET", "/api/v1/nothing"), 404),
]


@pytest.mark.parametrize(("what", "sent", "status"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_every_refusal_through_nginx_is_a_json_error(edge, what, sent, status):
    answer = raw(edge["port"], sent)
    assert_json_error(answer, status, what)
    # The security headers come with errors as with pages.
    assert "frame-ancestors 'none'" in answer[1].get("content-security-policy", ""), what


def test_gunicorns_own_refusals_are_json_straight_to_a_service(edge):
    """Without nginx in front: gunicorn's limits and parse errors are the same JSON body."""
    port = edge["services"]["oncall"].port
    assert_json_error(raw(port, request("GET", "/health?q=" + "a" * 5000)), 414, "request line")
    assert_json_error(raw(port, request("GET", "/health", *(f"X-H{n}: 1" for n in range(120)))), 431,
                      "header fields")
    assert_json_error(raw(port, b"GET /health HTTP/1.1 extra\r\nHost: x\r\n\r\n"), 400, "request line")
    assert_json_error(raw(port, request("POST", "/health", "Transfer-Encoding: gzip")), 400, "coding")


def test_nginx_logs_no_query_string_of_an_api_call(edge):
    """A patient search in a query string, answered 401, 413, 414 and 502, is in neither log;
    each request is in the access log by method, path and status."""
    base = edge["url"]
    requests.get(f"{base}/api/v1/incidents", params={"q": PATIENT}, timeout=10)
    requests.post(f"{base}/api/v1/incidents/1/notes", params={"q": PATIENT}, data=b"x" * 200_000,
                  headers={"Content-Type": "application/json"}, timeout=10)
    requests.get(f"{base}/api/v1/notifications", params={"q": PATIENT}, timeout=10)
    raw(edge["port"], request("GET", f"/api/v1/incidents?q={PATIENT}" + "a" * 5000))
    raw(edge["port"], request("TRACE", f"/api/v1/incidents?q={PATIENT}"))
    access_log, error_log = edge["logs"]
    expected = ['"GET /api/v1/incidents HTTP/1.1" 401', '"POST /api/v1/incidents/1/notes HTTP/1.1" 413',
                '"GET /api/v1/notifications HTTP/1.1" 502', '"GET /api/v1/incidents HTTP/1.1" 414',
                '"TRACE /api/v1/incidents HTTP/1.1" 405']
    # nginx writes a request's line once it is done, which may be just after the answer arrived.
    wait_for(lambda: all(line in access_log.read_text() for line in expected), 5,
             what=f"{expected} in the access log")
    errors = error_log.read_text() if error_log.exists() else ""
    for log in (access_log.read_text(), errors):
        assert PATIENT not in log and "?q=" not in log


def test_the_policy_names_the_configured_origin_never_the_host_header(edge):
    for host in ("127.0.0.1", "evil.example", "evil.example;script-src 'unsafe-inline'"):
        for path in ("/", "/api/v1/nothing", "/assets/missing.js"):
            policy = requests.get(edge["url"] + path, headers={"Host": host}, timeout=10) \
                .headers["Content-Security-Policy"]
            directives = {part.split()[0]: part.split()[1:] for part in policy.split("; ")}
            assert directives["connect-src"] == ["'self'", WEB_ORIGIN, "wss://healthguard.hospital.example"]
            assert "evil" not in policy and not re.search(r"script-src|unsafe", policy), policy


def test_an_origin_that_is_not_a_plain_origin_leaves_connect_src_at_self(tmp_path):
    (tmp_path / "index.html").write_text("<!doctype html>")
    with running_nginx(tmp_path, html_root=tmp_path, web_origin="https://x.example; script-src *") as port:
        policy = requests.get(f"http://127.0.0.1:{port}/", timeout=10).headers["Content-Security-Policy"]
        assert "connect-src 'self' ;" in policy and "script-src" not in policy, policy
