"""Off the open tab (issue 21), end to end in real Chromium: a clinician enables push in the app,
closes the tab, an alarm is assigned to her, the notification worker's Web Push message reaches
the app's service worker, the notification shows severity, room and alarm type with Acknowledge
and Open, and Acknowledge from it acknowledges the incident, which the ledger shows as delivered (the
service worker's arrival report), then acknowledged. Also: the banner while on call and unreachable, My
notifications and the ledger on a 390 px phone, the supervisors' reachability page and the email
link's /ack/ page.

The site is the browser tests' (tests/test_web_ui.py: the four services and nginx, the built SPA),
its notification service given a VAPID key pair and the local push service of
tests/reach_edges.py (a real HTTP server in the test process that checks the VAPID signature and
decrypts the payload with the subscription's keys).

Where the test stands in for the browser vendor's push service, and why:
- Headless Chromium has no push service (no Google Cloud Messaging: PushManager.subscribe fails
  with "Registration failed"). The page's PushManager.subscribe is replaced, before the app's
  scripts run, by one answering a subscription at the local push service, with keys the test
  holds. The app's own code asks for the permission, fetches the VAPID key, subscribes and hands
  the subscription to the server; the test checks it passed the server's key.
- The message the local push service received from the notification worker is decrypted (as the
  browser would) and given to the service worker with the DevTools protocol's
  ServiceWorker.deliverPushMessage: the payload the service worker handles is the one the backend
  sent, byte for byte.
- The notifications permission is granted with the DevTools protocol's Browser.grantPermissions
  (a headless browser has no prompt to click).
- Nobody can click a notification's action in headless Chromium (there is no notification UI, and
  the DevTools protocol has no command for it), and a `notificationclick` dispatched by a script is
  untrusted, so its event.waitUntil throws (Service Workers spec, ExtendableEvent). The test reads
  the displayed notification with registration.getNotifications() and calls, in the service
  worker, the function its notificationclick handler calls with the event's notification and
  action (self.onAlarmNotificationClick): the same code path from there on, including the fetch
  of /api/v1/channel-ack with the payload's token and no cookie."""
import base64
import json

import pytest
import requests

from tests import test_web_ui as shared
from tests.reach_edges import PushService, vapid_key_pair
from tests.support import wait_for
from tests.test_web_ui import (
    WAIT_MS,
    device_alert,
    expect,
    my_incident,
    running_site,
    signed_in_as_d01,
)

# The browser tests' fixtures by name (pytest finds fixtures in the module's namespace); `site`
# is this module's own, with push configured.
web_dist, browser, page = shared.web_dist, shared.browser, shared.page

pytestmark = pytest.mark.module_database

VAPID_PRIVATE, VAPID_PUBLIC = vapid_key_pair()
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def push_service():
    service = PushService(VAPID_PUBLIC).start()
    yield service
    service.stop()


@pytest.fixture(autouse=True)
def fresh_push_service(push_service):
    """Each test starts from the database as migrated (incident numbers start again at 1): what the
    push service received for an earlier test's incident 1 is not this one's."""
    push_service.received.clear()
    push_service.errors.clear()


@pytest.fixture(scope="module")
def site(web_dist, module_service_env, tmp_path_factory, push_service):
    """The browser tests' site, its notification service sending Web Push to the local push
    service."""
    run_dir = tmp_path_factory.mktemp("push-e2e-nginx")
    env = {"VAPID_PRIVATE_KEY": VAPID_PRIVATE, "VAPID_PUBLIC_KEY": VAPID_PUBLIC,
           "VAPID_SUBJECT": "mailto:ops@hospital.example", "PUSH_ALLOW_LOCAL_HTTP": "true",
           "SEND_INTERVAL_SECONDS": "0.3", "SEND_RETRY_SECONDS": "0.3"}
    with running_site(web_dist, module_service_env, run_dir, notification_env=env) as url:
        yield url


# Installed before the app's scripts: PushManager answers a subscription at the local push
# service (the module docstring says why), and records what the app asked for.
FAKE_PUSH_SERVICE = """
(() => {
    const subscription = %s;
    const key = "healthguard-test.push-subscription";
    const make = (options) => ({
        endpoint: subscription.endpoint,
        expirationTime: null,
        options: { userVisibleOnly: options.userVisibleOnly,
                   applicationServerKey: new Uint8Array(options.applicationServerKey).buffer },
        toJSON: () => subscription,
        unsubscribe: async () => { localStorage.removeItem(key); return true; },
    });
    PushManager.prototype.subscribe = async function (options) {
        const bytes = new Uint8Array(options.applicationServerKey);
        const asked = { userVisibleOnly: options.userVisibleOnly,
                        applicationServerKey: btoa(String.fromCharCode(...bytes)) };
        localStorage.setItem(key, JSON.stringify(asked));
        return make(options);
    };
    PushManager.prototype.getSubscription = async function () {
        const asked = JSON.parse(localStorage.getItem(key) || "null");
        if (!asked) return null;
        const bytes = Uint8Array.from(atob(asked.applicationServerKey), (c) => c.charCodeAt(0));
        return make({ userVisibleOnly: asked.userVisibleOnly, applicationServerKey: bytes });
    };
})();"""


def grant_notifications(browser, tab, origin: str):
    """Browser.grantPermissions for this page's browser context (its id from the page's target)."""
    target = tab.context.new_cdp_session(tab).send("Target.getTargetInfo")["targetInfo"]
    browser.new_browser_cdp_session().send("Browser.grantPermissions", {
        "origin": origin, "permissions": ["notifications"], "browserContextId": target["browserContextId"]})


def with_push(tab, browser, site, push_service, name: str):
    """The page as a browser with a push service: the permission granted, subscribe answered at
    the local push service. Returns the subscription (its keys decrypt what is sent to it)."""
    subscription = push_service.subscription(name)
    tab.context.add_init_script(FAKE_PUSH_SERVICE % json.dumps(subscription.to_json()))
    grant_notifications(browser, tab, site)
    return subscription


def enable_push_in_the_app(tab):
    tab.goto("/notifications")
    expect(tab.get_by_role("heading", name="My notifications", level=1)).to_be_visible()
    tab.get_by_role("button", name="Enable push on this device").click()
    method = tab.get_by_test_id("method-push")
    expect(method).to_contain_text("Working")
    expect(method).to_contain_text("This device")
    return method


def b64url_to_b64(text: str) -> str:
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return base64.b64encode(raw).decode()


def service_worker(context, site):
    return wait_for(lambda: next((w for w in context.service_workers if w.url == f"{site}/sw.js"), None),
                    WAIT_MS / 1000, 0.1, "the app's service worker")


def registration_id(cdp, holder, site) -> str:
    """The service worker registration of the site, as the DevTools protocol names it. Its events
    arrive while Playwright runs (holder.wait_for_timeout), not while this thread sleeps."""
    registrations = []
    cdp.on("ServiceWorker.workerRegistrationUpdated",
           lambda event: registrations.extend(event["registrations"]))
    cdp.send("ServiceWorker.enable")

    def ours():
        holder.wait_for_timeout(50)
        return next((r for r in registrations if r["scopeURL"] == f"{site}/" and not r["isDeleted"]), None)
    return wait_for(ours, WAIT_MS / 1000, 0, "the service worker registration")["registrationId"]


def notifications(worker):
    return worker.evaluate("""async () => (await self.registration.getNotifications()).map((n) => ({
        title: n.title, body: n.body, tag: n.tag, data: n.data,
        actions: n.actions.map((a) => ({ action: a.action, title: a.title })) }))""")


def api_get(site, token, path, **params):
    answer = requests.get(f"{site}/api/v1{path}", params=params, headers={"Authorization": f"Bearer {token}"},
                          timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_push_with_the_tab_closed_shows_the_alarm_and_acknowledge_from_it_acknowledges(
        page, site, browser, push_service, db):
    tab, context = page, page.context
    with_push(tab, browser, site, push_service, "d01-e2e")
    token = signed_in_as_d01(tab)

    # On call with no off-tab method: the banner says so, on every page, until push is enabled.
    banner = tab.get_by_test_id("reach-banner")
    expect(banner).to_contain_text("alarms cannot reach you when this tab is closed")
    enable_push_in_the_app(tab)
    expect(banner).to_be_hidden()
    asked = json.loads(tab.evaluate("localStorage.getItem('healthguard-test.push-subscription')"))
    assert asked == {"userVisibleOnly": True, "applicationServerKey": b64url_to_b64(VAPID_PUBLIC)}

    worker = service_worker(context, site)
    # The tab is closed; the browser runs on (a phone's browser with the app in the background).
    # A blank page of another origin holds the DevTools session that stands in for the push service.
    holder = context.new_page()
    tab.close()
    cdp = context.new_cdp_session(holder)
    registration = registration_id(cdp, holder, site)

    alert = device_alert(site, "CARDIAC_ARREST", patient_id="P001")
    incident = my_incident(site, token, alert["alert_id"])
    incident_id = incident["incident_id"]
    assert incident["status"] == "ASSIGNED"

    # What the notification worker sent, decrypted with the subscription's keys.
    message = wait_for(lambda: next(iter(push_service.for_incident(incident_id)), None), WAIT_MS / 1000, 0.1,
                       "the push message of the incident")
    assert message["name"] == "d01-e2e" and not push_service.errors, push_service.errors
    with db.transaction() as cur:
        cur.execute("SELECT name FROM patients WHERE patient_id = 'P001'")
        patient = cur.fetchone()["name"]
    assert patient not in message["raw"].decode()  # minimum necessary: no patient name

    cdp.send("ServiceWorker.deliverPushMessage",
             {"origin": site, "registrationId": registration, "data": message["raw"].decode()})

    [shown] = wait_for(lambda: notifications(worker) or None, WAIT_MS / 1000, 0.1, "the alarm notification")
    assert shown["title"] == f"CRITICAL · Room {incident['room']} · {incident['alert_name']}", shown
    assert shown["actions"] == [{"action": "acknowledge", "title": "Acknowledge"},
                                {"action": "open", "title": "Open"}]
    assert shown["tag"] == f"incident-{incident_id}"
    assert shown["data"]["url"] == f"/incidents/{incident_id}"
    assert patient not in shown["title"] + shown["body"]

    # The service worker reported the message's arrival (channel-ack "action": "delivered"): the
    # ledger says delivered.
    def push_row(status):
        rows = api_get(site, token, "/deliveries", incident_id=incident_id)["deliveries"]
        return next((r for r in rows if r["channel"] == "push" and r["status"] == status), None)
    delivered = wait_for(lambda: push_row("delivered"), WAIT_MS / 1000, 0.2, "the push attempt delivered")
    assert delivered["sent_at"] <= delivered["delivered_at"] and delivered["acknowledged_at"] is None

    # Acknowledge, from the notification (no window is open, no session is used).
    assert context.pages == [holder]
    outcome = worker.evaluate("""async (tag) => {
        const [notification] = await self.registration.getNotifications({ tag });
        return self.onAlarmNotificationClick(notification, "acknowledge");
    }""", f"incident-{incident_id}")
    assert outcome["ok"] is True, outcome
    after = notifications(worker)
    assert [n["title"] for n in after] == ["Acknowledged"] and after[0]["actions"] == []

    assert api_get(site, token, f"/incidents/{incident_id}")["status"] == "ACKNOWLEDGED"
    row = wait_for(lambda: push_row("acknowledged"), WAIT_MS / 1000, 0.2, "the push attempt acknowledged")
    assert row["sent_at"] <= row["acknowledged_at"]
    assert row["delivered_at"] <= row["acknowledged_at"], row
    history = api_get(site, token, f"/incidents/{incident_id}")["history"]
    assert any(h["action"] == "ACKNOWLEDGED" and "push" in json.dumps(h) for h in history), history

    # The incident page: the ledger as a timeline beside the (stopped) escalation timer.
    again = context.new_page()
    again.goto(f"/incidents/{incident_id}")
    panel = again.get_by_test_id("reach-panel")
    expect(panel.get_by_test_id("escalation-timer")).to_contain_text("No escalation timer")
    attempt = panel.get_by_test_id("delivery").filter(has_text="Push")
    expect(attempt.get_by_test_id("delivery-status")).to_have_text("Acknowledged")
    steps = attempt.locator(".delivery-steps li")
    expect(steps.last).to_contain_text("Acknowledged from it")
    statuses = steps.evaluate_all("(items) => items.map((item) => item.dataset.status)")
    assert statuses.index("sent") < statuses.index("acknowledged") == len(statuses) - 1, statuses
    # A second acknowledge with the same token is refused: single use.
    used = requests.post(f"{site}/api/v1/channel-ack", json={"token": message["payload"]["ack_token"]},
                         timeout=10)
    assert used.status_code == 410, used.text


def test_my_notifications_and_the_ledger_fit_a_390_px_phone(page, site, browser, push_service):
    tab = page
    tab.set_viewport_size(PHONE)
    with_push(tab, browser, site, push_service, "d01-phone")
    token = signed_in_as_d01(tab)
    method = enable_push_in_the_app(tab)
    expect(method.get_by_role("button", name="Send a test")).to_be_visible()

    # The rules editor: critical and high alarms by push at once, then email after 3 minutes.
    rules = tab.get_by_test_id("rules-HIGH")
    expect(rules).to_contain_text("the hospital's default")
    rows = rules.locator(".rule-step")
    while rows.count():
        rules.get_by_role("button", name="Remove step 1").click()
    rules.get_by_role("button", name="Add a step").click()
    rules.get_by_label("Method").select_option(label="Every push method of mine")
    rules.get_by_role("button", name="Save").click()
    expect(rules).to_contain_text("your own rules")
    saved = api_get(site, token, "/notification-rules")["HIGH"]
    assert saved["source"] == "personal"
    assert [(s["delay_seconds"], s["kind"]) for s in saved["steps"]] == [(0, "push")]

    def fits():
        return tab.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
    assert fits(), "My notifications scrolls sideways at 390 px"
    for button in tab.get_by_role("button").all():
        if button.is_visible():
            box = button.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], button.inner_text()

    incident = my_incident(site, token, device_alert(site, "BP_LOW", patient_id="P003", value=70)["alert_id"])
    tab.goto(f"/incidents/{incident['incident_id']}")
    panel = tab.get_by_test_id("reach-panel")
    expect(panel.get_by_test_id("escalation-timer")).to_contain_text("Escalates")
    expect(panel.get_by_test_id("delivery").first).to_be_visible()
    panel.scroll_into_view_if_needed()
    assert fits(), "the incident page scrolls sideways at 390 px"


def test_a_supervisor_sees_who_on_the_rota_cannot_be_reached(page, site):
    signed_in_as_d01(page)  # D01 supervises, is on duty and has no method yet
    page.goto("/reachability")
    unreachable = page.get_by_test_id("unreachable")
    expect(unreachable).to_contain_text("Dr. Michael Brooks")
    expect(page.get_by_role("heading", name="Cannot be reached off the tab", exact=False)).to_be_visible()


def test_the_email_links_ack_page_acknowledges_once_with_one_tap(page, site, push_service):
    """/ack/<token> in a browser that never signed in: one tap acknowledges the alarm the token was
    sent about (a token from a real push message: the email link carries the same kind); the
    same link again says it was used; a made-up one is not ours."""
    token = shared.api_login(site, "D01")
    subscription = push_service.subscription("d01-ack-page")
    added = requests.post(f"{site}/api/v1/contact-methods", headers={"Authorization": f"Bearer {token}"},
                          json={"kind": "push", "subscription": subscription.to_json()}, timeout=10)
    assert added.status_code == 201, added.text
    incident = my_incident(site, token, device_alert(site, "STROKE_SUSPECTED", patient_id="P005")["alert_id"])
    message = wait_for(lambda: next(iter(push_service.for_incident(incident["incident_id"])), None),
                       WAIT_MS / 1000, 0.1, "the push message of the incident")
    link = f"/ack/{message['payload']['ack_token']}"

    page.goto(link)
    expect(page.get_by_role("heading", name="Acknowledge the alarm")).to_be_visible()
    # Opening the link acknowledged nothing: the tap does.
    assert api_get(site, token, f"/incidents/{incident['incident_id']}")["status"] == "ASSIGNED"
    page.get_by_role("button", name="Acknowledge").click()
    result = page.get_by_test_id("ack-result")
    expect(result).to_contain_text(f"Acknowledged incident #{incident['incident_id']}")
    expect(result).to_contain_text("Acknowledged")
    assert api_get(site, token, f"/incidents/{incident['incident_id']}")["status"] == "ACKNOWLEDGED"

    page.goto(link)
    page.get_by_role("button", name="Acknowledge").click()
    expect(result).to_contain_text("used already or has expired")
    expect(result.get_by_role("button", name="Try again")).to_have_count(0)

    page.goto("/ack/not-a-real-token")
    page.get_by_role("button", name="Acknowledge").click()
    expect(result).to_contain_text("not one HealthGuard sent")
