"""The clinicians' web UI in a real browser: Chromium driven by Playwright, the built SPA served
by the shipped nginx.conf (rendered for loopback), the four services as gunicorn processes on
this run's PostgreSQL and RabbitMQ. Each test asserts what a clinician sees on the screen."""
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import threading
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.support import DEVICE_KEY, REPO, ServiceProcess, free_port, running_nginx, wait_for

# The site runs once for the module; each test starts from the database as migrated (so nothing
# one test leaves, an unread notification say, shows in the next).
pytestmark = pytest.mark.module_database

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-dev.txt")
expect = sync_api.expect

WEB_UI = REPO / "web-ui"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "password123"
WAIT_MS = 20000  # how long the page may take to show something pushed through the whole pipeline


def _dist_is_stale() -> bool:
    built = WEB_UI / "dist" / "index.html"
    if not built.exists():
        return True
    sources = [WEB_UI / name for name in ("index.html", "package.json", "package-lock.json",
                                          "vite.config.js")]
    sources += [path for folder in ("src", "public") for path in (WEB_UI / folder).rglob("*")
                if path.is_file()]
    return any(path.stat().st_mtime > built.stat().st_mtime for path in sources)


@pytest.fixture(scope="session")
def web_dist() -> Path:
    """The production build of the SPA, rebuilt when a source is newer than it."""
    if _dist_is_stale():
        if not shutil.which("npm"):
            pytest.fail("npm is needed to build web-ui (scripts/bootstrap.sh installs it)")
        if not (WEB_UI / "node_modules").is_dir():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=WEB_UI, check=True,
                           capture_output=True, timeout=600)
        build = subprocess.run(["npm", "run", "build"], cwd=WEB_UI, capture_output=True, text=True,
                               timeout=600)
        assert build.returncode == 0, build.stdout + build.stderr
    return WEB_UI / "dist"


@contextlib.contextmanager
def running_site(web_dist: Path, service_env: dict, run_dir: Path, *, notification_env: dict | None = None):
    """The whole product on loopback: four services and nginx in front, serving `web_dist`.
    Yields nginx's URL. `notification_env` adds to the notification service's settings (the
    off-tab channels' keys and edges: tests/test_push_e2e.py)."""
    started = []

    def start(name, **env):
        service = ServiceProcess(name, {**service_env, **env})
        started.append(service)
        return service.start()

    try:
        oncall = start("oncall")
        incidents = start("incident-management", ONCALL_URL=oncall.url, ASSIGNMENT_RETRY_SECONDS="1")
        services = {"oncall": oncall,
                    "alert-ingestion": start("alert-ingestion"),
                    "incident-management": incidents,
                    "notification": start("notification", GUNICORN_THREADS="32",
                                          WS_SESSION_CHECK_SECONDS="0.5", ONCALL_URL=oncall.url,
                                          INCIDENT_MANAGEMENT_URL=incidents.url, **(notification_env or {}))}
        port = free_port()
        with running_nginx(run_dir, port=port, html_root=web_dist, web_origin=f"http://127.0.0.1:{port}",
                           ports={name: service.port for name, service in services.items()}):
            yield f"http://127.0.0.1:{port}"
    finally:
        for service in started:
            service.stop()


@pytest.fixture(scope="module")
def site(web_dist, module_service_env, tmp_path_factory):
    """The whole product on loopback: four services and nginx in front. Yields nginx's URL."""
    with running_site(web_dist, module_service_env, tmp_path_factory.mktemp("web-ui-nginx")) as url:
        yield url


def serious_axe_violations(tab) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now: "rule: targets"."""
    # Evaluated through DevTools rather than as a <script>: the page's CSP rightly refuses
    # inline scripts, and the test must not weaken it.
    tab.evaluate(AXE_SOURCE)
    return tab.evaluate("""async () => (await axe.run(document, {resultTypes: ["violations"]}))
        .violations.filter((v) => v.impact === "serious" || v.impact === "critical")
        .map((v) => `${v.id}: ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`)""")


def _put_on_duty_now(base: str, employee_id: str, clock):
    """Whatever the clock says, the clinician is on duty for the next hours (a supervisor's
    override, as a charge nurse would enter it), so new incidents are routed to them."""
    token = api_login(base, "D01")
    now = clock.now()
    answer = requests.post(f"{base}/api/v1/schedules/overrides", timeout=10,
                           headers={"Authorization": f"Bearer {token}"},
                           json={"employee_id": employee_id, "reason": "browser tests",
                                 "starts_at": (now - dt.timedelta(hours=1)).isoformat(),
                                 "ends_at": (now + dt.timedelta(hours=6)).isoformat()})
    assert answer.status_code == 201, answer.text
    requests.post(f"{base}/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def api_login(base: str, login: str) -> str:
    answer = requests.post(f"{base}/api/v1/auth/login", json={"login": login, "password": PASSWORD},
                           timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def device_alert(base: str, alert_type: str, patient_id: str = "P001", value=None) -> dict:
    """A bedside monitor reports an alarm (device key, no clinician session)."""
    body = {"patient_id": patient_id, "alert_type": alert_type, "device_id": "monitor-7",
            "source_alarm_id": uuid.uuid4().hex}
    if value is not None:
        body["value"] = value
    answer = requests.post(f"{base}/api/v1/alerts", json=body, headers={"X-API-Key": DEVICE_KEY},
                           timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/bootstrap.sh)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, site, db, clock):
    """A fresh browser profile per test (no session cookie left over), on the database
    as migrated with D01 put on duty."""
    _put_on_duty_now(site, "D01", clock)
    context = browser.new_context(base_url=site, viewport={"width": 1366, "height": 900})
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    errors = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    # The page runs under nginx's Content-Security-Policy: anything it refuses is a failure.
    tab.on("console", lambda message: errors.append(message.text)
           if "Content Security Policy" in message.text else None)
    yield tab
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def sign_in(page, login="D01", password=PASSWORD):
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Staff ID").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def session_cookie(page):
    """The browser's session token: in its HttpOnly cookie, which no script of the page can read
    (Playwright reads the browser's cookie store), or None."""
    return next((c["value"] for c in page.context.cookies() if c["name"] == "hg_session"), None)


def signed_in_as_d01(page):
    """Signs D01 in through the page; the session token, for the test's own API calls as D01."""
    sign_in(page)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Dr. Michael Brooks")
    expect(page.get_by_role("status").filter(has_text="Live")).to_be_visible()
    assert page.evaluate("document.cookie").find("hg_session") == -1  # HttpOnly
    return session_cookie(page)


def my_incident(base: str, token: str, alert_id: int) -> dict:
    """The incident the alert became, once it is assigned (read through the API, as the page does)."""
    def assigned():
        answer = requests.get(f"{base}/api/v1/incidents", params={"mine": "true", "limit": 50},
                              headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.status_code == 200, answer.text
        return next((i for i in answer.json()["incidents"] if i["alert_id"] == alert_id), None)
    return wait_for(assigned, WAIT_MS / 1000, 0.2, f"alert {alert_id} to become D01's incident")


# --------------------------------------------------------------------------- headers
def test_the_page_and_its_assets_come_with_the_security_headers(site):
    index = requests.get(site + "/", timeout=10)
    assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', index.text)
    assert assets, index.text
    for answer in (index, *(requests.get(site + path, timeout=10) for path in assets)):
        assert answer.status_code == 200, answer.url
        headers = answer.headers
        assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        policy = headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy, answer.url
        origin = urlsplit(site).netloc  # the WEB_ORIGIN nginx is configured with
        assert f"connect-src 'self' http://{origin} ws://{origin};" in policy, answer.url


# --------------------------------------------------------------------------- sign-in
def test_a_wrong_password_shows_the_error_and_stays_on_the_login_page(page):
    sign_in(page, password="not-the-password")
    expect(page.get_by_role("alert")).to_contain_text("wrong login or password")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.url.endswith("/login")
    assert page.evaluate("localStorage.getItem('healthguard.session')") is None
    assert session_cookie(page) is None


def test_signing_in_shows_the_dashboard_with_the_clinicians_name(page):
    token = signed_in_as_d01(page)
    assert page.url.endswith("/")
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("Incidents")
    expect(page.get_by_role("heading", name="My active incidents")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    # The session is the server's: the token the page holds is who the API says it is.
    me = requests.get(page.url.rstrip("/") + "/api/v1/auth/me", timeout=10,
                      headers={"Authorization": f"Bearer {token}"}).json()
    assert me["employee"]["employee_id"] == "D01"


# --------------------------------------------------------------------------- live dashboard
def test_a_device_alert_appears_on_the_assignees_dashboard_without_a_reload(page, site):
    signed_in_as_d01(page)
    expect(page.get_by_role("heading", name="My active incidents")).to_be_visible()
    # A marker that a reload would wipe out.
    page.evaluate("window.__sameDocument = true")
    alert = device_alert(site, "CARDIAC_ARREST", patient_id="P001")

    mine = page.get_by_role("table", name="My active incidents")
    row = mine.get_by_role("row").filter(has_text="Cardiac arrest")
    expect(row).to_be_visible(timeout=WAIT_MS)
    expect(row).to_contain_text("John Whitfield")
    expect(row).to_contain_text("CRITICAL")
    expect(row.get_by_role("button", name="Acknowledge")).to_be_visible()
    # Critical work assigned to me is put in front of me, and I am told about it.
    expect(page.locator(".critical-banner")).to_contain_text("critical incident")
    toast = page.get_by_role("alert", name="New alarm for you")
    expect(toast).to_contain_text("Cardiac arrest")
    expect(page.get_by_role("button", name="Notifications, 1 unread")).to_be_visible()
    assert page.evaluate("window.__sameDocument") is True

    # The bell lists it; opening it leads to the incident and marks it read.
    page.get_by_role("button", name="Notifications, 1 unread").click()
    panel = page.get_by_role("region", name="Notifications")
    panel.get_by_role("button").filter(has_text="Cardiac arrest").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("CRITICAL: Cardiac arrest, room 312")
    expect(page.get_by_role("button", name="Notifications, 0 unread")).to_be_visible()
    context = page.get_by_role("region", name="Patient and reading")
    expect(context.locator(".fact").filter(has_text="Device").locator("dd")).to_have_text("monitor-7")
    assert alert["alert_id"]


def test_after_a_lost_connection_the_page_resumes_and_shows_what_it_missed(page, site):
    sockets, sent, blocked, urls = [], [], [False], []

    def through_to_the_server(socket):
        if blocked[0]:
            socket.close()  # the network is still down: the page must keep retrying
            return
        server = socket.connect_to_server()
        sockets.append(socket)
        urls.append(socket.url)
        socket.on_message(lambda message: (sent.append(message), server.send(message)))

    page.route_web_socket("**/ws*", through_to_the_server)
    token = signed_in_as_d01(page)
    expect(page.get_by_role("heading", name="My active incidents")).to_be_visible()
    blocked[0] = True
    sockets[-1].close()
    expect(page.get_by_role("status").filter(has_text="Offline")).to_be_visible()

    # While the page is offline the incident is created, assigned and its notification stored.
    alert = device_alert(site, "STROKE_SUSPECTED", patient_id="P005")
    incident = my_incident(site, token, alert["alert_id"])
    wait_for(lambda: any(n["incident_id"] == incident["incident_id"] for n in requests.get(
        f"{site}/api/v1/notifications", headers={"Authorization": f"Bearer {token}"}, timeout=10,
    ).json()["notifications"]), 10, 0.2, "the notification to be stored")
    blocked[0] = False

    expect(page.get_by_role("status").filter(has_text="Live")).to_be_visible()
    # Replayed by the server after the resume: the toast and the bell, and the list refreshed.
    expect(page.get_by_role("alert", name="New alarm for you")).to_contain_text("Suspected stroke")
    mine = page.get_by_role("table", name="My active incidents")
    expect(mine.get_by_role("row").filter(has_text="Suspected stroke")).to_be_visible()
    # The replay answers the page's resume: by now the page has sent it (read only now, not as
    # soon as "Live" shows, when it may still be on its way).
    assert any('"type":"resume"' in message.replace(" ", "") for message in sent), sent
    # Every connection (the first and the reconnection) opened with its own one-time ticket,
    # never with the session token in the URL.
    tickets = [parse_qs(urlsplit(url).query) for url in urls]
    assert len(tickets) >= 2 and all(set(query) == {"ticket"} for query in tickets), urls
    assert len({query["ticket"][0] for query in tickets}) == len(tickets)
    assert not any(token in url for url in urls)


def test_acknowledge_start_and_resolve_from_the_detail_page_with_the_audit_trail(page, site):
    token = signed_in_as_d01(page)
    alert = device_alert(site, "BP_HIGH", patient_id="P002", value=212)
    incident = my_incident(site, token, alert["alert_id"])
    page.goto(f"/incidents/{incident['incident_id']}")
    status = page.get_by_test_id("incident-status")
    expect(status).to_have_text("Assigned")
    trail = page.get_by_role("list", name="Audit trail")
    expect(trail).to_contain_text("Alarm raised")
    expect(trail).to_contain_text("Assigned")
    # Not allowed yet: resolving needs work to have started.
    expect(page.get_by_role("button", name="Resolve incident")).to_have_count(0)

    page.get_by_role("button", name="Acknowledge", exact=True).click()
    expect(status).to_have_text("Acknowledged")
    expect(page.get_by_role("heading", name="Actions")).to_be_focused()  # not lost to <body>
    acknowledged = trail.get_by_role("listitem").filter(has_text="Acknowledged")
    expect(acknowledged).to_contain_text("Dr. Michael Brooks")

    page.get_by_role("button", name="Start work").click()
    expect(status).to_have_text("In progress")

    page.get_by_label("Add a note").fill("Labetalol 20 mg IV given.")
    page.get_by_role("button", name="Add note").click()
    expect(page.get_by_role("region", name="Notes")).to_contain_text("Labetalol 20 mg IV given.")

    page.get_by_label("Resolution notes").fill("BP down to 150/90, handed over to ward team.")
    page.get_by_role("button", name="Resolve incident").click()
    expect(status).to_have_text("Resolved")
    resolved = trail.get_by_role("listitem").filter(has_text="Resolved")
    expect(resolved).to_contain_text("BP down to 150/90")
    expect(resolved).to_contain_text("Dr. Michael Brooks")
    expect(page.get_by_text("This incident is resolved; no further actions.")).to_be_visible()
    expect(page.get_by_role("button", name="Acknowledge", exact=True)).to_have_count(0)


def test_a_conflicting_action_shows_the_current_status_and_what_is_allowed(page, site):
    # This page gets no live updates (its socket is answered by the test, silently), so it still
    # offers "Acknowledge" after the incident was acknowledged from another device.
    page.route_web_socket("**/ws*", lambda socket: None)
    token = signed_in_as_d01(page)
    alert = device_alert(site, "BP_LOW", patient_id="P003", value=70)
    incident = my_incident(site, token, alert["alert_id"])
    page.goto(f"/incidents/{incident['incident_id']}")
    expect(page.get_by_test_id("incident-status")).to_have_text("Assigned")
    answer = requests.patch(f"{site}/api/v1/incidents/{incident['incident_id']}/acknowledge", timeout=10,
                            headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text

    page.get_by_role("button", name="Acknowledge", exact=True).click()
    error = page.get_by_role("alert").filter(has_text="cannot acknowledge")
    expect(error).to_contain_text(f"incident {incident['incident_id']}: it is ACKNOWLEDGED")
    expect(error).to_contain_text("The incident is now Acknowledged")
    # And the page shows the incident as it now is, with what D01 may now do: their own next step,
    # never a claim of what is theirs.
    expect(page.get_by_test_id("incident-status")).to_have_text("Acknowledged")
    expect(page.get_by_role("button", name="Start work")).to_be_visible()
    expect(page.get_by_role("button", name="Acknowledge", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Claim (take over)")).to_have_count(0)


# --------------------------------------------------------------------------- other pages
def test_a_clinician_triggers_a_test_alert_from_the_alerts_page(page):
    signed_in_as_d01(page)
    page.get_by_role("link", name="Alerts").click()
    page.get_by_label("Patient").select_option("P004")
    page.get_by_label("Alert type").select_option("SEPSIS_SUSPECTED")
    page.get_by_role("button", name="Trigger test alert").click()
    expect(page.get_by_role("status").filter(has_text="Test alert #")).to_contain_text("Suspected sepsis")
    recent = page.get_by_role("region", name="Recent alerts")
    row = recent.get_by_role("row").filter(has_text="Suspected sepsis")
    expect(row).to_contain_text("Test by D01")
    # It became an incident (routed to the doctor on duty: this one), linked from the list.
    expect(row.get_by_role("link")).to_contain_text("#", timeout=WAIT_MS)


def test_on_call_shows_who_is_on_duty_and_toggles_my_availability(page):
    signed_in_as_d01(page)
    page.get_by_role("link", name="On-Call").click()
    on_duty = page.get_by_role("region", name="On duty now")
    expect(on_duty.get_by_role("region", name="Emergency doctor")).to_contain_text("Dr. Michael Brooks")
    rota = page.get_by_role("region", name="Schedule, next 7 days")
    expect(rota).to_contain_text("Emergency doctor")
    # In the hospital's zone, said so; a 24-hour shift is "24 h", a night shift ends the next day.
    expect(rota).to_contain_text("Times in the hospital's time zone (Europe/London)")
    expect(rota).to_contain_text("24 h from 00:00")
    expect(rota).to_contain_text("20:00–08:00 (+1 day)")
    expect(rota).not_to_contain_text("00:00–00:00")

    page.get_by_role("button", name="Set me Away").click()
    expect(page.get_by_role("region", name="My availability")).to_contain_text("You are Away")
    page.reload()  # the server keeps it, not the page
    expect(page.get_by_role("region", name="My availability")).to_contain_text("You are Away")
    page.get_by_role("button", name="Set me Available").click()
    expect(page.get_by_role("region", name="My availability")).to_contain_text("You are Available")


def test_metrics_show_response_and_resolution_times_and_their_trends_in_charts(page, site, db):
    token = signed_in_as_d01(page)
    # An alarm D01 took through to the end, so there is something to measure.
    incident = my_incident(site, token, device_alert(site, "CARDIAC_ARREST")["alert_id"])
    for action, body in (("acknowledge", None), ("start", None), ("resolve", {"resolution_notes": "ROSC"})):
        answer = requests.patch(f"{site}/api/v1/incidents/{incident['incident_id']}/{action}", json=body,
                                headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.status_code == 200, answer.text
    with db.transaction() as cur:  # acknowledged within a second: shown in ms, never "0 s"
        cur.execute("UPDATE incidents SET response_seconds = 0.148 WHERE incident_id = %s",
                    (incident["incident_id"],))
    page.get_by_role("link", name="Metrics").click()
    mtta = page.get_by_role("region", name="MTTA — mean time to acknowledge")
    expect(mtta.locator(".timing-main")).to_have_text("148 ms")
    expect(page.get_by_role("region", name="MTTR — mean time to resolve")).to_be_visible()
    hourly = page.get_by_role("figure", name="MTTA and MTTR per hour, last 24 h")
    expect(hourly).to_contain_text("Latest MTTA 148 ms")
    expect(hourly.get_by_role("application")).to_be_visible()  # the chart itself, keyboard-reachable
    expect(hourly.locator(".recharts-text").filter(has_text=re.compile(r"^\d+ ms$")).first).to_be_visible()
    expect(page.get_by_role("figure", name="MTTA and MTTR per day, last 30 days")).to_contain_text("148 ms")
    alarms = page.get_by_role("figure", name="Alarms per hour by severity, last 24 h")
    expect(alarms).to_contain_text("1 alarm, 1 critical.")
    expect(alarms.locator(".recharts-bar-rectangle").first).to_be_visible()
    expect(page.get_by_text("Hours and days in the hospital's time zone (Europe/London).")).to_be_visible()
    expect(page.get_by_role("region", name="By severity")).to_contain_text("Critical")
    expect(page.get_by_role("region", name="By clinician")).to_contain_text("Dr. Michael Brooks")


# --------------------------------------------------------------------------- signing out
def test_signing_out_returns_to_login_and_the_old_token_is_refused(page, site):
    token = signed_in_as_d01(page)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("You are signed out")
    assert page.evaluate("localStorage.getItem('healthguard.session')") is None
    assert session_cookie(page) is None  # the server dropped the cookie
    answer = requests.get(f"{site}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 401
    page.goto("/incidents")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_any_refused_request_sends_the_page_back_to_login(page, site):
    page.route_web_socket("**/ws*", lambda socket: None)  # only the REST calls see the 401
    token = signed_in_as_d01(page)
    # The dashboard's own requests are done (every tile and the bell show their figures): the
    # first request refused is the one the click makes.
    expect(page.locator(".tile-value").filter(has_text="…")).to_have_count(0)
    expect(page.get_by_role("button", name="Notifications, 0 unread")).to_be_visible()
    requests.post(f"{site}/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    page.get_by_role("link", name="Incidents", exact=True).click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Your session has ended")


def test_a_session_signed_out_elsewhere_closes_the_live_page(page, site):
    token = signed_in_as_d01(page)
    requests.post(f"{site}/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    # No click: the notification service closes the socket of the ended session, and the page
    # goes back to the login page on its own.
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Your session has ended")


def test_a_supervisor_reassigns_and_another_clinician_claims_from_the_detail_page(
        page, browser, site, db, clock):
    with db.transaction() as cur:
        cur.execute("SELECT employee_id, name FROM employees WHERE employee_id IN ('D02', 'D03', 'S02')")
        names = {row["employee_id"]: row["name"] for row in cur.fetchall()}
    # An alarm goes only to a clinician on duty and signed in, reassigned or claimed alike.
    for colleague in ("D02", "S02"):
        _put_on_duty_now(site, colleague, clock)
    token = signed_in_as_d01(page)
    alert = device_alert(site, "HEART_RATE_HIGH", patient_id="P004", value=168)
    incident = my_incident(site, token, alert["alert_id"])
    url = f"/incidents/{incident['incident_id']}"
    page.goto(url)
    status = page.get_by_test_id("incident-status")
    expect(status).to_have_text("Assigned")

    # D01 supervises: they hand the incident to a colleague, seeing who is signed in (D02, on
    # another workstation, now that the alarm is D01's) and who is not (D03).
    api_login(site, "D02")
    page.reload()
    choices = page.get_by_label("Reassign to")
    expect(choices.locator("option", has_text=names["D03"])).to_contain_text("signed out")
    expect(choices.locator("option", has_text=names["D02"])).not_to_contain_text("signed out")
    choices.select_option("D02")
    page.get_by_role("button", name="Reassign", exact=True).click()
    expect(status).to_have_text("Reassigned")
    expect(page.get_by_test_id("incident-assignee")).to_have_text(f"Assigned to {names['D02']}")
    trail = page.get_by_role("list", name="Audit trail")
    expect(trail.get_by_role("listitem").filter(has_text="Reassigned")).to_contain_text("Dr. Michael Brooks")

    # A cardiologist on duty (the alarm is routed to cardiology), no supervisor, may not reassign,
    # but may take it over from a colleague who has not acknowledged it.
    colleague = browser.new_context(base_url=site, viewport={"width": 1366, "height": 900})
    colleague.set_default_timeout(WAIT_MS)
    try:
        tab = colleague.new_page()
        sign_in(tab, "S02")
        expect(tab.get_by_role("heading", level=1)).to_contain_text(names["S02"])
        tab.goto(url)
        expect(tab.get_by_test_id("incident-status")).to_have_text("Reassigned")
        expect(tab.get_by_label("Reassign to")).to_have_count(0)
        expect(tab.get_by_role("button", name="Acknowledge", exact=True)).to_have_count(0)
        tab.get_by_role("button", name="Claim (take over)").click()
        expect(tab.get_by_text("You now own this incident.")).to_be_visible()
        expect(tab.get_by_test_id("incident-assignee")).to_have_text("Assigned to you")
        expect(tab.get_by_role("button", name="Acknowledge", exact=True)).to_be_visible()
        trail = tab.get_by_role("list", name="Audit trail")
        expect(trail.get_by_role("listitem").filter(has_text="Taken over")).to_contain_text(names["S02"])
    finally:
        colleague.close()



def test_a_nurse_viewing_a_critical_cardiac_arrest_sees_no_claim_and_the_api_refuses_hers(page, site, clock):
    # The arrest goes to D01 (on duty, signed in); the nurse is on duty and signed in too, so only
    # the alarm's routing (emergency doctors, cardiologists) keeps it from her.
    doctor = api_login(site, "D01")
    alert = device_alert(site, "CARDIAC_ARREST", patient_id="P002")
    incident = my_incident(site, doctor, alert["alert_id"])
    _put_on_duty_now(site, "N02", clock)
    sign_in(page, "N02")
    expect(page.get_by_role("heading", level=1)).to_contain_text("James O'Connor")
    page.goto(f"/incidents/{incident['incident_id']}")
    expect(page.get_by_test_id("incident-status")).to_have_text("Assigned")
    expect(page.locator(".incident-head .badge").first).to_have_text("CRITICAL")
    expect(page.get_by_test_id("no-actions")).to_be_visible()
    actions = page.get_by_role("region", name="Actions")
    expect(actions.get_by_role("button")).to_have_count(0)
    expect(page.get_by_role("button", name="Claim (take over)")).to_have_count(0)
    # What she was not offered, the server refuses: her claim, with her own session.
    answer = requests.patch(f"{site}/api/v1/incidents/{incident['incident_id']}/claim", timeout=10,
                            headers={"Authorization": f"Bearer {session_cookie(page)}"})
    assert answer.status_code == 403 and answer.json()["rule"] == "override_not_allowed", answer.text
    seen = requests.get(f"{site}/api/v1/incidents/{incident['incident_id']}", timeout=10,
                        headers={"Authorization": f"Bearer {session_cookie(page)}"})
    assert seen.json()["allowed_actions"] == []


def test_a_live_update_keeps_the_rows_loaded_with_load_more(page, site, db):
    """Sixty resolved incidents from earlier: the list shows 50, Load more shows them all, and a
    new alarm arriving live adds its row without dropping the ones loaded further down."""
    with db.transaction() as cur:
        for n in range(60):
            cur.execute("""
                INSERT INTO alerts (patient_id, alert_type, severity, category, room, occurred_at)
                VALUES ('P005', 'FALL_DETECTED', 'HIGH', 'SAFETY', '204', now() - interval '1 day')
                RETURNING alert_id""")
            cur.execute("""
                INSERT INTO incidents (alert_id, patient_id, alert_type, severity, category, room, title,
                                       status, created_at, resolved_at, resolution_notes)
                VALUES (%s, 'P005', 'FALL_DETECTED', 'HIGH', 'SAFETY', '204', %s, 'RESOLVED',
                        now() - interval '1 day', now() - interval '23 hours', 'checked')""",
                        (cur.fetchone()["alert_id"], f"HIGH: Fall detected, room 204 (#{n})"))
        cur.execute("SELECT count(*) AS n FROM incidents")
        every_incident = cur.fetchone()["n"]
    assert every_incident == 60  # the database is this test's: nothing else is listed
    signed_in_as_d01(page)
    page.goto("/incidents?status=all")
    rows = page.locator("table.incidents tbody tr")
    expect(rows).to_have_count(50)
    page.get_by_role("button", name="Load more").click()
    # Wait for the rows to arrive: a count read right after the click sees the first page only.
    expect(rows).to_have_count(every_incident)
    expect(page.get_by_role("button", name="Load more")).to_have_count(0)
    device_alert(site, "SEIZURE_DETECTED", patient_id="P006")
    expect(rows).to_have_count(every_incident + 1)  # live: the new one on top, none dropped
    expect(rows.first).to_contain_text("Seizure")


# --------------------------------------------------------------------------- the right patient
def test_following_a_link_to_another_incident_never_shows_the_old_one_under_the_new_url(page, site):
    """A and B are the same patient's alarms; B's answer is held back while the page moves to B.
    Under B's URL the page shows loading, never A; the note typed on A is gone; and Acknowledge
    acknowledges B, the incident on screen, not A."""
    token = signed_in_as_d01(page)
    a = my_incident(site, token, device_alert(site, "BP_HIGH", "P002", value=205)["alert_id"])
    b = my_incident(site, token, device_alert(site, "HEART_RATE_HIGH", "P002", value=150)["alert_id"])
    held, released = [], []

    def slow_b(route):
        if route.request.method == "GET" and not released:
            held.append(route)  # answered once the test has looked at the page meanwhile
        else:
            route.continue_()

    page.goto(f"/incidents/{a['incident_id']}")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text("Hypertensive crisis")
    page.get_by_label("Add a note").fill("half-typed note for A")
    page.route(f"**/api/v1/incidents/{b['incident_id']}", slow_b)
    others = page.get_by_role("region", name="This patient's other active alarms")
    others.get_by_role("link", name=f"#{b['incident_id']}").click()
    expect(page).to_have_url(f"{site}/incidents/{b['incident_id']}")
    expect(page.get_by_text(f"Loading incident {b['incident_id']}")).to_be_visible()
    # The sync Playwright API runs route handlers only while the test is inside one of its calls,
    # so wait by letting the page run (wait_for_timeout), never by sleeping: a request that
    # arrives after the last expect() would otherwise never reach slow_b (failed once in CI).
    wait_for(lambda: held or page.wait_for_timeout(50), 10, 0, "the page to ask for B")
    # While B's answer is on its way: nothing of A under B's URL, and no button to act on it.
    main = page.get_by_role("main")
    expect(main).not_to_contain_text("Hypertensive crisis")
    expect(main).not_to_contain_text(f"Incident #{a['incident_id']}")
    expect(page.get_by_label("Add a note")).to_have_count(0)
    expect(page.get_by_role("button", name="Acknowledge", exact=True)).to_have_count(0)
    released.append(True)
    held.pop().continue_()

    expect(page.get_by_text(f"Incident #{b['incident_id']}")).to_be_visible()
    expect(heading).to_contain_text("Tachycardia")
    expect(page.get_by_label("Add a note")).to_have_value("")
    page.get_by_role("button", name="Acknowledge", exact=True).click()
    expect(page.get_by_test_id("incident-status")).to_have_text("Acknowledged")

    def status_of(incident):
        answer = requests.get(f"{site}/api/v1/incidents/{incident['incident_id']}", timeout=10,
                              headers={"Authorization": f"Bearer {token}"})
        return answer.json()["status"]
    assert status_of(b) == "ACKNOWLEDGED"
    assert status_of(a) == "ASSIGNED"


def test_an_unknown_incident_number_shows_not_found_and_nothing_of_the_previous_one(page, site):
    token = signed_in_as_d01(page)
    a = my_incident(site, token, device_alert(site, "BP_LOW", patient_id="P003", value=0)["alert_id"])
    page.goto(f"/incidents/{a['incident_id']}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hypotension")
    # A reading of 0 is a reading, not a missing one.
    expect(page.get_by_test_id("reading")).to_have_text("0 mmHg")
    page.evaluate("history.pushState({}, '', '/incidents/999999');"
                  "dispatchEvent(new PopStateEvent('popstate'))")
    expect(page.get_by_role("heading", level=1)).to_have_text("No incident 999999")
    expect(page.get_by_role("main")).not_to_contain_text("Hypotension")
    page.goto("/incidents/not-a-number")
    expect(page.get_by_role("heading", level=1)).to_have_text("No incident not-a-number")


# --------------------------------------------------------------------------- dashboard counts
def test_the_dashboard_tiles_are_the_servers_counts_with_more_than_200_active(page, site, db):
    """230 acknowledged incidents of a colleague's, raised two days ago: more than any list the
    page loads, and older than the metrics window. The tiles say 230 and 46 critical anyway."""
    with db.transaction() as cur:
        cur.execute("""
            WITH raised AS (
                INSERT INTO alerts (patient_id, alert_type, severity, category, room, occurred_at)
                SELECT 'P005', CASE WHEN n % 5 = 0 THEN 'CARDIAC_ARREST' ELSE 'FALL_DETECTED' END,
                       CASE WHEN n % 5 = 0 THEN 'CRITICAL' ELSE 'HIGH' END, 'SAFETY', '226',
                       now() - interval '2 days'
                FROM generate_series(1, 230) AS n
                RETURNING alert_id, alert_type, severity)
            INSERT INTO incidents (alert_id, patient_id, alert_type, severity, category, room, title,
                                   status, assigned_to, created_at, assigned_at, acknowledged_at)
            SELECT alert_id, 'P005', alert_type, severity, 'SAFETY', '226',
                   severity || ': bulk, room 226', 'ACKNOWLEDGED', 'D02',
                   now() - interval '2 days', now() - interval '2 days', now() - interval '2 days'
            FROM raised""")
    token = signed_in_as_d01(page)
    figures = requests.get(f"{site}/api/v1/incidents/metrics", timeout=10,
                           headers={"Authorization": f"Bearer {token}"}).json()
    assert figures["active_now"] == 230 and figures["active_by_severity"]["CRITICAL"] == 46
    assert figures["active_by_status"]["ACKNOWLEDGED"] == 230 and figures["unassigned_now"] == 0
    expect(page.get_by_test_id("tile-active").locator(".tile-value")).to_have_text("230")
    expect(page.get_by_test_id("tile-critical").locator(".tile-value")).to_have_text("46")
    expect(page.get_by_test_id("tile-unassigned").locator(".tile-value")).to_have_text("0")
    expect(page.get_by_role("link", name="All 230 other active incidents")).to_be_visible()


# --------------------------------------------------------------------------- live under load
def test_a_new_incident_shows_on_a_colleagues_dashboard_within_a_second_while_5_events_a_second_flow(
        page, site):
    """Notes on an incident of D01's make incident_updated frames at about 5 a second (every
    signed-in dashboard gets them). A new alarm for another patient shows as a row on the
    dashboard within 1 s of its frame reaching the page: the frame is applied to the lists, not
    followed by a reload of every list."""
    # The page's own socket, unintercepted; a listener registered before the page's records
    # which incidents' frames have arrived, so the test can wait for the frame and then give the
    # page one second to show it.
    page.add_init_script("""
        const Native = window.WebSocket;
        window.__framesFor = new Set();
        window.WebSocket = class extends Native {
            constructor(...args) {
                super(...args);
                this.addEventListener("message", (event) => {
                    try { window.__framesFor.add(JSON.parse(event.data).incident_id); } catch {}
                });
            }
        };""")
    token = signed_in_as_d01(page)
    busy = my_incident(site, token, device_alert(site, "BP_HIGH", patient_id="P002", value=200)["alert_id"])
    stop = threading.Event()
    posted = []

    def flood():
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        while not stop.is_set():
            answer = session.post(f"{site}/api/v1/incidents/{busy['incident_id']}/notes", timeout=10,
                                  json={"note": f"obs {len(posted)}"})
            posted.append(answer.status_code)
            stop.wait(0.2)  # the rate, not a synchronisation: five notes a second

    flooding = threading.Thread(target=flood, daemon=True)
    flooding.start()
    try:
        wait_for(lambda: len(posted) >= 5, 20, 0.1, "the flood to run")
        alert = device_alert(site, "SEIZURE_DETECTED", patient_id="P006")

        def created():
            answer = requests.get(f"{site}/api/v1/incidents", params={"limit": 5}, timeout=10,
                                  headers={"Authorization": f"Bearer {token}"}).json()
            return next((i["incident_id"] for i in answer["incidents"]
                         if i["alert_id"] == alert["alert_id"]), None)
        incident_id = wait_for(created, WAIT_MS / 1000, 0.05, "the alert to become an incident")

        page.wait_for_function("id => window.__framesFor.has(id)", arg=incident_id, timeout=WAIT_MS)
        row = page.locator(f"tr[data-incident-id='{incident_id}']")
        expect(row).to_be_visible(timeout=1000)
        expect(row).to_contain_text("Seizure")
    finally:
        stop.set()
        flooding.join(10)
    assert set(posted) == {201}, posted
    assert len(posted) >= 5


# --------------------------------------------------------------------------- connection state
OFFLINE_WITHIN_MS = 35000


def test_the_pill_says_offline_with_the_age_of_the_data_when_the_network_goes_away(page):
    signed_in_as_d01(page)
    pill = page.get_by_role("status", name="Real-time updates")
    expect(pill).to_have_text("Live")
    page.context.set_offline(True)
    expect(pill).to_contain_text("Offline", timeout=OFFLINE_WITHIN_MS)
    expect(pill).to_contain_text("data from")
    expect(pill).to_contain_text("s ago")
    page.context.set_offline(False)
    expect(pill).to_have_text("Live", timeout=OFFLINE_WITHIN_MS)


def test_a_socket_that_stays_open_but_brings_nothing_is_not_called_live(page):
    """The network path dies without closing the socket: no frame, no close. The page notices
    the silence itself (its pings go unanswered) and stops saying Live."""
    silent = [False]

    def path(socket):
        if silent[0]:
            socket.close()  # and nothing gets through again
            return
        server = socket.connect_to_server()
        server.on_message(lambda message: None if silent[0] else socket.send(message))

    page.route_web_socket("**/ws*", path)
    signed_in_as_d01(page)
    pill = page.get_by_role("status", name="Real-time updates")
    expect(pill).to_have_text("Live")
    silent[0] = True
    expect(pill).to_contain_text("Offline", timeout=OFFLINE_WITHIN_MS)
    expect(pill).to_contain_text("data from")


# --------------------------------------------------------------------------- the alarm
def test_a_critical_incident_of_mine_sounds_until_acknowledged_and_counts_in_the_title(page, site):
    signed_in_as_d01(page)
    title = page.title()
    page.wait_for_function("() => window.__hgAlarm && window.__hgAlarm.playing === false")
    device_alert(site, "CARDIAC_ARREST", patient_id="P001")
    mine = page.get_by_role("table", name="My active incidents")
    row = mine.get_by_role("row").filter(has_text="Cardiac arrest")
    expect(row).to_be_visible()
    page.wait_for_function("() => window.__hgAlarm && window.__hgAlarm.playing === true", timeout=WAIT_MS)
    expect(page).to_have_title(f"(1) {title}")
    favicon = page.locator("link[rel='icon']")
    expect(favicon).to_have_attribute("data-count", "1")
    expect(favicon).to_have_attribute("href", re.compile(r"%3E1%3C%2Ftext%3E"))
    mute = page.get_by_role("button", name="Mute alarm (1 critical)")
    expect(mute).to_be_visible()

    # Muted: silent, and the mute shows; unmuted: it sounds again.
    mute.click()
    page.wait_for_function("() => window.__hgAlarm && window.__hgAlarm.playing === false")
    page.get_by_role("button", name="Alarm muted").click()
    page.wait_for_function("() => window.__hgAlarm && window.__hgAlarm.playing === true")

    row.get_by_role("button", name="Acknowledge").click()
    page.wait_for_function("() => window.__hgAlarm && window.__hgAlarm.playing === false", timeout=WAIT_MS)
    expect(page).to_have_title(title)
    expect(favicon).to_have_attribute("data-count", "0")
    # The button pressed is gone; the keyboard stays on the row (no other row to move to).
    expect(row.get_by_role("link")).to_be_focused()
    expect(page.get_by_role("button", name="Mute alarm (1 critical)")).to_have_count(0)


# --------------------------------------------------------------------------- a phone
PHONE = {"width": 375, "height": 812}
SCREENSHOTS = WEB_UI / "screenshots"


def test_at_375_px_no_page_scrolls_sideways_and_acknowledge_and_the_bell_stay_on_screen(page, site):
    page.set_viewport_size(PHONE)
    token = signed_in_as_d01(page)
    incident = my_incident(site, token, device_alert(site, "CARDIAC_ARREST", patient_id="P001")["alert_id"])
    widths = {}
    for path, shows in (("/", "My active incidents"), ("/incidents", "Incidents"), ("/alerts", "Alerts"),
                        ("/oncall", "On duty now"), ("/metrics", "By severity"),
                        (f"/incidents/{incident['incident_id']}", "Audit trail")):
        page.goto(path)
        expect(page.get_by_role("heading", name=shows).first).to_be_visible()
        widths[path] = page.evaluate("document.documentElement.scrollWidth")
    assert {path: width for path, width in widths.items() if width > PHONE["width"]} == {}

    # Acknowledge is on screen without scrolling sideways.
    button = page.get_by_role("button", name="Acknowledge", exact=True)
    expect(button).to_be_visible()
    box = button.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    # The bell's panel opens inside the viewport.
    page.get_by_role("button", name=re.compile("^Notifications")).click()
    panel = page.get_by_role("region", name="Notifications")
    expect(panel).to_be_visible()
    box = panel.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box


def test_the_critical_banner_names_three_with_number_and_age_and_counts_the_rest(page, db):
    with db.transaction() as cur:
        cur.execute("""
            WITH raised AS (
                INSERT INTO alerts (patient_id, alert_type, severity, category, room, occurred_at)
                SELECT 'P001', 'CARDIAC_ARREST', 'CRITICAL', 'CARDIAC', '312', now() - interval '10 minutes'
                FROM generate_series(1, 5)
                RETURNING alert_id)
            INSERT INTO incidents (alert_id, patient_id, alert_type, severity, category, room, title,
                                   status, assigned_to, created_at, assigned_at, acknowledged_at)
            SELECT alert_id, 'P001', 'CARDIAC_ARREST', 'CRITICAL', 'CARDIAC', '312',
                   'CRITICAL: Cardiac arrest, room 312', 'ACKNOWLEDGED', 'D01',
                   now() - interval '10 minutes', now() - interval '10 minutes', now() - interval '9 minutes'
            FROM raised""")
    signed_in_as_d01(page)
    banner = page.locator(".critical-banner")
    expect(banner).to_contain_text("5 critical incidents are assigned to you")
    expect(banner.get_by_role("listitem")).to_have_count(3)
    expect(banner.get_by_role("listitem").first).to_contain_text("raised 10 min ago")
    expect(banner.get_by_role("listitem").first).to_contain_text("#")
    expect(banner.get_by_role("link", name="and 2 more")).to_be_visible()


# --------------------------------------------------------------------------- accessibility
AXE = WEB_UI / "node_modules" / "axe-core" / "axe.min.js"
AXE_SOURCE = AXE.read_text() if AXE.exists() else "throw new Error('axe-core is missing: npm ci')"


DESKTOP = {"width": 1366, "height": 800}


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_axe_finds_no_serious_or_critical_violation_on_any_page(page, site, viewport):
    """Every page at both sizes, each saved as a screenshot under web-ui/screenshots/."""
    page.set_viewport_size(viewport)
    size = "desktop" if viewport == DESKTOP else "phone"
    SCREENSHOTS.mkdir(exist_ok=True)
    token = signed_in_as_d01(page)
    incident = my_incident(site, token, device_alert(site, "BP_HIGH", "P002", value=210)["alert_id"])
    found = {}
    for path, shows in (("/", "My active incidents"), ("/incidents", "Incidents"), ("/alerts", "Alerts"),
                        ("/oncall", "On duty now"), ("/metrics", "By severity"),
                        (f"/incidents/{incident['incident_id']}", "Audit trail"), ("/status", None)):
        page.goto(path)
        if shows:
            expect(page.get_by_role("heading", name=shows).first).to_be_visible()
        else:
            expect(page.get_by_role("heading", level=1)).to_be_visible()
        violations = serious_axe_violations(page)
        if violations:
            found[path] = violations
        name = "incident" if path.startswith("/incidents/") else path.strip("/") or "dashboard"
        page.screenshot(path=SCREENSHOTS / f"{size}-{name}.png", full_page=True)
    assert found == {}, json.dumps(found, indent=1)


def test_rows_show_grouped_repeats_and_the_escalation_countdown_when_the_server_sends_them(page, site):
    """alert_count/last_alert_at and ack_deadline/escalation_level come from the correlation and
    escalation work; here the list's answer is given them on its way to the page, so the test
    shows what the page makes of them (and the other tests that it copes without)."""
    token = signed_in_as_d01(page)
    incident = my_incident(site, token, device_alert(site, "BP_HIGH", "P002", value=210)["alert_id"])

    def with_fields(route):
        answer = route.fetch()
        body = answer.json()
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
        for row in body["incidents"]:
            row.update(alert_count=4, last_alert_at=row["created_at"], escalation_level=1,
                       ack_deadline=deadline.isoformat())
        route.fulfill(response=answer, json=body)

    page.route("**/api/v1/incidents?*", with_fields)
    page.goto("/incidents")
    row = page.locator(f"tr[data-incident-id='{incident['incident_id']}']")
    expect(row).to_contain_text("×4 alarms, last")
    countdown = row.get_by_test_id("escalation-countdown")
    expect(countdown).to_contain_text(re.compile(r"Escalates in [45]:\d\d · level 1"))
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first)  # it ticks


# --------------------------------------------------------------------------- patient context, TEST, filters
def test_the_detail_page_shows_the_patient_and_the_reading_with_its_unit_and_normal_range(page, site):
    token = signed_in_as_d01(page)
    other = my_incident(site, token, device_alert(site, "O2_SATURATION_LOW", "P001", value=86)["alert_id"])
    incident = my_incident(site, token, device_alert(site, "HEART_RATE_LOW", "P001", value=0)["alert_id"])
    page.goto(f"/incidents/{incident['incident_id']}")
    expect(page.get_by_test_id("patient-line")).to_have_text(re.compile(
        r"John Whitfield, \d+ y · Cardiology · Room 312"))
    context = page.get_by_role("region", name="Patient and reading")

    def fact(label):
        return context.locator(".fact").filter(has=page.locator("dt", has_text=re.compile(f"^{label}$")))
    expect(fact("Age").locator("dd")).to_have_text(re.compile(r"^\d+ years$"))
    expect(fact("Ward").locator("dd")).to_have_text("Cardiology")
    expect(fact("Room / bed").locator("dd")).to_have_text("312")
    expect(page.get_by_test_id("reading")).to_have_text("0 bpm")  # asystole is 0, not "—"
    expect(page.get_by_test_id("reading")).to_have_class(re.compile("outside"))
    expect(fact("Normal range").locator("dd")).to_have_text("60–100 bpm")
    expect(fact("Device").locator("dd")).to_have_text("monitor-7")
    expect(context).to_contain_text("Times in the hospital's time zone (Europe/London).")
    others = page.get_by_role("region", name="This patient's other active alarms")
    link = others.get_by_role("link", name=f"#{other['incident_id']}")
    expect(link).to_contain_text("Low oxygen saturation")


def test_a_test_alert_is_marked_test_in_the_toast_banner_lists_and_detail(page, site):
    token = signed_in_as_d01(page)
    answer = requests.post(f"{site}/api/v1/alerts/manual", headers={"Authorization": f"Bearer {token}"},
                           json={"patient_id": "P001", "alert_type": "CARDIAC_ARREST"}, timeout=10)
    assert answer.status_code == 201, answer.text
    incident = my_incident(site, token, answer.json()["alert_id"])
    toast = page.get_by_role("alert", name="New alarm for you (test)")
    expect(toast.locator(".test-badge")).to_have_text("TEST")
    banner = page.locator(".critical-banner")
    expect(banner.get_by_role("listitem").first).to_contain_text("TEST")
    row = page.locator(f"tr[data-incident-id='{incident['incident_id']}']").first
    expect(row.locator(".test-badge")).to_have_text("TEST")
    page.goto("/incidents")
    expect(page.locator(f"tr[data-incident-id='{incident['incident_id']}'] .test-badge")).to_have_text("TEST")
    page.goto(f"/incidents/{incident['incident_id']}")
    expect(page.get_by_role("note")).to_contain_text("A test alert raised by a clinician (a drill)")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Cardiac arrest")
    page.goto("/alerts")
    recent = page.get_by_role("region", name="Recent alerts")
    drill = recent.get_by_role("row").filter(has_text="Cardiac arrest")
    expect(drill.locator(".test-badge")).to_have_text("TEST")
    # A device's alarm is not marked.
    real = my_incident(site, token, device_alert(site, "BP_HIGH", "P002", value=210)["alert_id"])
    page.goto("/incidents")
    real_row = page.locator(f"tr[data-incident-id='{real['incident_id']}']")
    expect(real_row).to_contain_text("Hypertensive crisis")
    expect(real_row.locator(".test-badge")).to_have_count(0)


def test_toasts_show_three_with_n_more_and_acknowledge_in_one_tap(page, site):
    token = signed_in_as_d01(page)
    ids = [my_incident(site, token, device_alert(site, "CARDIAC_ARREST", patient)["alert_id"])["incident_id"]
           for patient in ("P001", "P002", "P003", "P005")]
    toasts = page.get_by_test_id("toast")
    expect(page.get_by_role("status").filter(has_text="more —")).to_have_text("1 more — see the bell")
    expect(toasts).to_have_count(3)
    newest = toasts.filter(has_text=f"#{ids[-1]}")
    newest.get_by_role("button", name=f"Acknowledge #{ids[-1]}").click()
    expect(toasts.filter(has_text=f"#{ids[-1]}")).to_have_count(0)
    expect(page.get_by_role("status").filter(has_text="more —")).to_have_count(0)
    expect(toasts).to_have_count(3)  # the one waiting behind "1 more" shows now
    mine = page.get_by_role("table", name="My active incidents")
    expect(mine.locator(f"tr[data-incident-id='{ids[-1]}']")).to_contain_text("Acknowledged")


def test_after_acknowledge_on_the_dashboard_the_keyboard_moves_to_the_next_rows_acknowledge(page, site):
    token = signed_in_as_d01(page)
    for patient, alert_type in (("P001", "HEART_RATE_HIGH"), ("P002", "BP_LOW")):
        my_incident(site, token, device_alert(site, alert_type, patient)["alert_id"])
    mine = page.get_by_role("table", name="My active incidents")
    buttons = mine.get_by_role("button", name=re.compile("^Acknowledge incident"))
    expect(buttons).to_have_count(2)
    first, second = buttons.nth(0), buttons.nth(1)
    second_name = second.get_attribute("aria-label")
    first.focus()
    page.keyboard.press("Enter")
    expect(mine.get_by_role("button", name=second_name)).to_be_focused()
    expect(buttons).to_have_count(1)


def test_incidents_filter_by_ward_and_search_by_patient_or_room(page, site):
    token = signed_in_as_d01(page)
    cardiology = my_incident(site, token, device_alert(site, "HEART_RATE_HIGH", "P001")["alert_id"])
    icu = my_incident(site, token, device_alert(site, "BP_LOW", "P002")["alert_id"])
    page.goto("/incidents")
    rows = page.locator("tr[data-incident-id]")
    expect(rows).to_have_count(2)
    page.get_by_label("Ward").select_option("ICU")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-incident-id", str(icu["incident_id"]))
    expect(page).to_have_url(re.compile(r"ward=ICU"))
    page.get_by_label("Ward").select_option("")
    page.get_by_label("Patient or room").fill("312")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-incident-id", str(cardiology["incident_id"]))
    page.get_by_label("Patient or room").fill("ellison")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-incident-id", str(icu["incident_id"]))
    page.get_by_label("Patient or room").fill("nobody-by-that-name")
    expect(page.get_by_text("No incidents match these filters.")).to_be_visible()


def test_a_failed_load_says_what_failed_and_retries(page, site):
    signed_in_as_d01(page)
    failed = []

    def fail_once(route):  # the list's page of 50, not the alarm's look-ups (mine=true, limit=200)
        if not failed and "mine=true" not in route.request.url and "limit=200" not in route.request.url:
            failed.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/api/v1/incidents?*", fail_once)
    page.goto("/incidents")
    error = page.get_by_role("alert").filter(has_text="Loading the incidents failed")
    expect(error).to_contain_text("cannot reach HealthGuard Ops")
    error.get_by_role("button", name="Try again").click()
    expect(error).to_have_count(0)
    expect(page.get_by_text("Loading incidents")).to_have_count(0)
    expect(page.get_by_role("alert")).to_have_count(0)


def test_a_one_time_password_leads_to_choosing_a_new_one_then_signs_in(page, site):
    supervisor = api_login(site, "D01")
    reset = requests.post(f"{site}/api/v1/employees/N01/password-reset", timeout=10,
                          headers={"Authorization": f"Bearer {supervisor}"})
    assert reset.status_code == 200, reset.text
    sign_in(page, "N01", reset.json()["temporary_password"])
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    page.get_by_label("New password", exact=True).fill("a-new-password-of-mine")
    page.get_by_label("New password again").fill("a-new-password-of-min")
    expect(page.get_by_text("The two passwords differ.")).to_be_visible()
    page.get_by_label("New password again").fill("a-new-password-of-mine")
    page.get_by_role("button", name="Set password and sign in").click()
    greeting = re.compile(r"^Good (morning|afternoon|evening)")
    expect(page.get_by_role("heading", level=1)).to_contain_text(greeting)
    again = requests.post(f"{site}/api/v1/auth/login", timeout=10,
                          json={"login": "N01", "password": "a-new-password-of-mine"})
    assert again.status_code == 200, again.text


def test_background_alerts_are_asked_for_after_sign_in_with_the_reason_and_not_now_holds(page):
    signed_in_as_d01(page)
    prompt = page.get_by_role("region", name="Alerts in the background")
    if page.evaluate("Notification.permission") != "default":
        pytest.skip("this Chromium has already decided on notifications")
    expect(prompt).to_contain_text("reaches you while this tab is in the background")
    expect(prompt.get_by_role("button", name="Allow alerts in background")).to_be_visible()
    prompt.get_by_role("button", name="Not now").click()
    expect(prompt).to_have_count(0)
    page.get_by_role("link", name="Incidents", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Incidents")
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Incidents")
    expect(prompt).to_have_count(0)
