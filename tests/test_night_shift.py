"""The ward console on a night shift (issue 20), in real Chromium at 1366 px and 375 px through the
real services (the site, browser and sign-in of tests/test_web_ui.py) with the test clock: the
alarm and its mute, pop-ups by severity that never go stale, offline made unmistakable, the
last escalation step and Decline, one-handed use on a phone, and words for people.

Sound is observed where it is made: a hook installed before the page's own scripts wraps
AudioContext.createOscillator, so the test sees each tone the alarm code starts (its frequency
says which tone), not a flag set beside it."""
import contextlib
import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
import requests

from tests import test_web_ui as shared
from tests.conftest import HOSPITAL_TZ
from tests.support import wait_for
from tests.test_web_ui import (
    DESKTOP,
    OFFLINE_WITHIN_MS,
    PHONE,
    WAIT_MS,
    _put_on_duty_now,
    api_login,
    device_alert,
    expect,
    my_incident,
    serious_axe_violations,
    sign_in,
    signed_in_as_d01,
)

# The browser tests' fixtures (built SPA, the site behind nginx, Chromium, a fresh page), by name:
# pytest finds fixtures in the module's namespace.
web_dist, site, browser, page = shared.web_dist, shared.site, shared.browser, shared.page

pytestmark = pytest.mark.module_database

CRITICAL_TONE, HIGH_TONE, OFFLINE_TONE = 880, 587, 392  # alarmSound.js TONES, first notes
SIZES = pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])

# Installed before the page's scripts: every oscillator started is recorded with its frequency
# and the page's time; every vibration asked for, too; and every incident_updated frame the
# socket brings, with the time it arrived.
SOUND_AND_FRAMES_HOOK = """
    window.__tones = [];
    window.__vibrations = [];
    window.__frames = [];
    const Context = window.AudioContext;
    const createOscillator = Context.prototype.createOscillator;
    Context.prototype.createOscillator = function () {
        const oscillator = createOscillator.call(this);
        const start = oscillator.start.bind(oscillator);
        oscillator.start = (...args) => {
            window.__tones.push({ frequency: oscillator.frequency.value, at: Date.now() });
            return start(...args);
        };
        return oscillator;
    };
    if (typeof navigator.vibrate === "function") {
        const vibrate = navigator.vibrate.bind(navigator);
        navigator.vibrate = (pattern) => { window.__vibrations.push(pattern); return vibrate(pattern); };
    }
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
        constructor(...args) {
            super(...args);
            this.addEventListener("message", (event) => {
                try {
                    const frame = JSON.parse(event.data);
                    if (frame.type === "incident_updated") window.__frames.push({ ...frame, at: Date.now() });
                } catch {}
            });
        }
    };"""


@pytest.fixture
def night(page):
    """The page with the sound and frame hooks installed."""
    page.add_init_script(SOUND_AND_FRAMES_HOOK)
    return page


def go(tab, path: str):
    """Follow an in-app link to `path` (the page stays loaded: its pop-ups and sound go on)."""
    tab.evaluate("p => { history.pushState({}, '', p); dispatchEvent(new PopStateEvent('popstate')); }", path)


def every_page(tab, incident_id: int):
    """Each page in turn, followed as in-app links, once it shows: yields its path."""
    for path, shows in (("/", "My active incidents"), ("/incidents", "Incidents"), ("/alerts", "Alerts"),
                        ("/oncall", "On duty now"), ("/metrics", "By severity"),
                        (f"/incidents/{incident_id}", "Audit trail"), ("/status", None)):
        go(tab, path)
        if shows:
            expect(tab.get_by_role("heading", name=shows).first).to_be_visible()
        else:
            expect(tab.get_by_test_id("status-oncall")).to_be_visible()
        yield path


def page_now(tab) -> int:
    return tab.evaluate("Date.now()")


def wait_for_tone(tab, frequency: int, *, after: int = 0, timeout: float = WAIT_MS):
    tab.wait_for_function("([f, after]) => window.__tones.some((t) => t.frequency === f && t.at > after)",
                          arg=[frequency, after], timeout=timeout)


def tones_between(tab, frequency: int, start: int, end: int) -> int:
    return tab.evaluate(
        "([f, s, e]) => window.__tones.filter((t) => t.frequency === f && t.at > s && t.at < e).length",
        [frequency, start, end])


def alarm(site: str, alert_type: str, patient_id: str, value=None) -> dict:
    return device_alert(site, alert_type, patient_id=patient_id, value=value)


def mine(site: str, token: str, alert_type: str, patient_id: str, value=None) -> dict:
    """A device alarm, once it is an incident assigned to the signed-in clinician."""
    return my_incident(site, token, alarm(site, alert_type, patient_id, value)["alert_id"])


def resolved(site: str, token: str, incident_id: int):
    """The clinician acknowledges, starts and resolves the incident (through the API)."""
    steps = (("acknowledge", None), ("start", None), ("resolve", {"resolution_notes": "settled"}))
    for action, body in steps:
        answer = requests.patch(f"{site}/api/v1/incidents/{incident_id}/{action}", json=body,
                                headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.status_code == 200, answer.text


@contextlib.contextmanager
def d02_signed_in_elsewhere(site: str, clock):
    """D02 on duty and signed in at another workstation: the next candidate when D01's alarm
    escalates. Signed out when the block ends."""
    _put_on_duty_now(site, "D02", clock)
    d02 = api_login(site, "D02")
    try:
        yield
    finally:
        sign_out(site, d02)


def workstation(browser, site, size: dict):
    """Another workstation: a browser profile of its own. Returns (context, tab)."""
    context = browser.new_context(base_url=site, viewport=size)
    context.set_default_timeout(WAIT_MS)
    return context, context.new_page()


def colleague_page(browser, site, login: str, size: dict):
    """A second clinician at their own workstation (a browser profile of their own)."""
    context, tab = workstation(browser, site, size)
    tab.add_init_script(SOUND_AND_FRAMES_HOOK)
    sign_in(tab, login)
    expect(tab.get_by_role("heading", level=1)).to_contain_text("Good")
    expect(tab.get_by_role("status").filter(has_text="Live")).to_be_visible()
    return context, tab


def sign_out(base: str, token: str):
    requests.post(f"{base}/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def popup_of(tab, incident_id: int):
    return tab.locator(f"[data-testid='toast'][data-incident-id='{incident_id}']")


# --------------------------------------------------------------------------- 2: mute per alarm
@SIZES
def test_mute_silences_the_alarm_sounding_and_a_new_critical_sounds_again(night, site, size):
    night.set_viewport_size(size)
    token = signed_in_as_d01(night)
    mine(site, token, "CARDIAC_ARREST", "P001")
    wait_for_tone(night, CRITICAL_TONE)
    if night.evaluate("typeof navigator.vibrate === 'function'"):
        night.wait_for_function("() => window.__vibrations.length > 0")

    night.get_by_role("button", name="Mute alarm (1 critical)").click()
    muted_at = page_now(night)
    countdown = night.get_by_test_id("mute-countdown")
    expect(countdown).to_have_text(re.compile(r"^Muted [12]:\d\d$"))
    expect(countdown).to_have_attribute("aria-label", re.compile(r"^Alarm muted, [12]:\d\d left"))
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first)  # it counts down
    # Muted: two beats of the alarm pass without it (it beeps every 1.5 s).
    night.wait_for_timeout(3200)
    quiet_until = page_now(night)
    assert tones_between(night, CRITICAL_TONE, muted_at + 300, quiet_until) == 0

    # A new CRITICAL for me is not covered by the mute: it sounds at once.
    mine(site, token, "STROKE_SUSPECTED", "P004")
    wait_for_tone(night, CRITICAL_TONE, after=quiet_until)
    expect(night.get_by_role("button", name="Mute alarm (1 critical)")).to_be_visible()
    expect(night).to_have_title(re.compile(r"^\(2\) "))


@SIZES
def test_a_high_alarm_of_mine_has_its_own_softer_tone(night, site, size):
    night.set_viewport_size(size)
    token = signed_in_as_d01(night)
    mine(site, token, "BP_HIGH", "P002", value=215)
    wait_for_tone(night, HIGH_TONE)
    expect(night.get_by_role("button", name="Mute alarm (1 high)")).to_be_visible()
    assert night.evaluate("window.__tones.every((t) => t.frequency !== 880)")


# --------------------------------------------------------------------------- 3: pop-ups
LOWER = [(patient, alert_type) for alert_type in ("HEART_RATE_HIGH", "BP_LOW", "SEIZURE_DETECTED",
                                                  "RESPIRATORY_RATE_HIGH", "BP_ELEVATED")
         for patient in ("P001", "P002", "P003", "P005")]


@SIZES
def test_a_flood_with_one_critical_among_twenty_lower_alarms_shows_the_critical_first(night, site, size):
    night.set_viewport_size(size)
    token = signed_in_as_d01(night)
    alerts = [alarm(site, alert_type, patient) for patient, alert_type in LOWER[:10]]
    critical = alarm(site, "APNEA_DETECTED", "P008")
    alerts += [alarm(site, alert_type, patient) for patient, alert_type in LOWER[10:]]
    apnoea = my_incident(site, token, critical["alert_id"])
    for alert in alerts[-3:]:
        my_incident(site, token, alert["alert_id"])
    popups = night.get_by_test_id("toast")
    if size == PHONE:
        bar = night.get_by_role("region", name="Alarms for you")
        # Collapsed: one pop-up, the CRITICAL one, with the patient and the room.
        expect(popups).to_have_count(1)
        expect(popups.first).to_have_attribute("data-incident-id", str(apnoea["incident_id"]))
        expect(popups.first).to_contain_text("Apnoea")
        expect(popups.first).to_contain_text("Beatriz Santos, room 336")
        toggle = bar.get_by_role("button", name=re.compile(r"^All \d+ alarms$"))
        expect(toggle).to_have_attribute("aria-expanded", "false")
        # The bar never covers the critical banner.
        banner = night.locator(".critical-banner").bounding_box()
        box = bar.bounding_box()
        assert box["y"] >= banner["y"] + banner["height"], (box, banner)
        toggle.click()
        expect(bar.get_by_role("button", name="Hide")).to_have_attribute("aria-expanded", "true")
        assert popups.count() > 3
        expect(popups.first).to_have_attribute("data-severity", "CRITICAL")
        severities = popups.evaluate_all("(all) => all.map((p) => p.dataset.severity)")
        rank = ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
        assert severities == sorted(severities, key=rank.index), severities
    else:
        expect(popups).to_have_count(3)
        expect(popups.first).to_have_attribute("data-incident-id", str(apnoea["incident_id"]))
        expect(popups.first).to_contain_text("Beatriz Santos, room 336")
        expect(night.get_by_role("status").filter(has_text="more — see the bell")).to_be_visible()
        expect(popups.nth(1)).to_have_attribute("data-severity", "HIGH")


@SIZES
def test_an_escalated_incidents_popup_disappears_within_a_second_and_the_feed_says_why(
        night, site, size, clock, browser):
    night.set_viewport_size(size)
    with d02_signed_in_elsewhere(site, clock):
        token = signed_in_as_d01(night)
        incident = mine(site, token, "CARDIAC_ARREST", "P001")
        popup = popup_of(night, incident["incident_id"])
        expect(popup).to_be_visible()
        expect(popup).to_contain_text("John Whitfield, room 312")

        clock.advance(65)  # past the CRITICAL acknowledgement deadline: it escalates
        night.wait_for_function(
            "id => window.__frames.some((f) => f.incident_id === id && f.assigned_to"
            " && f.assigned_to !== 'D01')",
            arg=incident["incident_id"], timeout=WAIT_MS)
        expect(popup).to_have_count(0, timeout=1000)
        # What the feed tells D01 is what happened: not acknowledged in time, escalated (not "taken over").
        feed = night.locator(".feed") if size == DESKTOP else None
        if feed is not None:
            expect(feed).to_contain_text("not acknowledged in time")
            expect(feed).not_to_contain_text("taken over")


# --------------------------------------------------------------------------- 4: offline
@SIZES
def test_offline_for_20_s_shows_the_banner_greys_the_lists_and_sounds_past_30_s(night, site, size):
    night.set_viewport_size(size)
    signed_in_as_d01(night)
    expect(night.get_by_text("Nothing is assigned to you right now.")).to_be_visible()
    night.context.set_offline(True)
    lost_at = page_now(night)
    banner = night.get_by_test_id("offline-banner")
    expect(banner).to_be_visible(timeout=OFFLINE_WITHIN_MS)
    since = banner.inner_text()
    match = re.search(r"Not receiving alarms since (\d\d):(\d\d)", since)
    assert match, since
    hospital_now = dt.datetime.now(ZoneInfo(HOSPITAL_TZ.key))
    shown = hospital_now.replace(hour=int(match[1]), minute=int(match[2]))
    assert abs((hospital_now - shown).total_seconds()) < 120, (since, hospital_now)
    night.wait_for_timeout(20000)  # twenty seconds offline
    expect(banner).to_be_visible()
    box = banner.bounding_box()
    assert box["x"] <= 0 and box["width"] >= size["width"] - 1, box  # the full width
    expect(night.get_by_text("Nothing is assigned to you right now.")).to_have_count(0)
    expect(night.get_by_text("Not known while the connection is lost")).to_be_visible()
    tiles_filter = night.locator(".tiles").evaluate("(el) => getComputedStyle(el).filter")
    assert "grayscale" in tiles_filter, tiles_filter
    # Down past 30 s while on duty: the connection alarm sounds.
    wait_for_tone(night, OFFLINE_TONE, after=lost_at + 25000, timeout=OFFLINE_WITHIN_MS)
    night.context.set_offline(False)
    expect(banner).to_have_count(0, timeout=35000)


# --------------------------------------------------------------------------- 1: the last step
@SIZES
def test_the_last_escalation_step_pages_every_doctor_on_duty_with_sound_and_a_popup(
        night, site, size, clock, browser, db):
    """A CRITICAL haemorrhage goes to a surgeon (signed in elsewhere) who never answers. Past its
    last level every emergency doctor on duty is paged: D01 and D02 each see a pop-up, hear the
    alarm and see "Unowned for"; it re-pages; the first to acknowledge takes it and the other's
    pop-up goes."""
    night.set_viewport_size(size)
    for doctor in ("D02", "S04", "S05", "S06"):
        _put_on_duty_now(site, doctor, clock)
    surgeons = [api_login(site, login) for login in ("S04", "S05", "S06")]
    signed_in_as_d01(night)
    other, d02_tab = colleague_page(browser, site, "D02", size)
    try:
        alert = alarm(site, "HEMORRHAGE", "P005")
        d01 = api_login(site, "D01")

        def incident():
            answer = requests.get(f"{site}/api/v1/incidents", params={"limit": 20}, timeout=10,
                                  headers={"Authorization": f"Bearer {d01}"}).json()
            return next((i for i in answer["incidents"] if i["alert_id"] == alert["alert_id"]), None)
        wait_for(incident, 20, 0.2, "the haemorrhage to become an incident")

        def unowned():
            clock.advance(61)
            found = incident()
            return found if found.get("unowned") else None
        found = wait_for(unowned, 90, 1.5, "the alarm to run out of escalation levels")
        incident_id = found["incident_id"]
        for tab in (night, d02_tab):
            popup = popup_of(tab, incident_id)
            expect(popup).to_be_visible()
            expect(popup).to_contain_text("Nobody has taken this")
            expect(popup).to_contain_text("Rachel Kim, room 226")
            wait_for_tone(tab, CRITICAL_TONE)
            expect(tab).to_have_title(re.compile(r"^\(\d+\) "))
            row = tab.locator(f"tr[data-incident-id='{incident_id}']").first
            unowned_label = row.get_by_test_id("unowned")
            expect(unowned_label).to_contain_text(re.compile(r"Unowned for \d+ min"))
            assert unowned_label.evaluate("(el) => getComputedStyle(el).color") == "rgb(179, 38, 30)"

        # It re-pages while nobody takes it.
        before = night.evaluate("window.__frames.length")
        clock.advance(61)
        night.wait_for_function(
            "([id, n]) => window.__frames.slice(n)"
            ".some((f) => f.incident_id === id && f.reason === 'UNOWNED_REPAGE')",
            arg=[incident_id, before], timeout=WAIT_MS)
        # D02 takes it from the pop-up; D01's pop-up goes.
        popup_of(d02_tab, incident_id).get_by_role("button", name=f"Acknowledge #{incident_id}").click()
        expect(popup_of(d02_tab, incident_id)).to_have_count(0)
        expect(popup_of(night, incident_id)).to_have_count(0)
    finally:
        other.close()
        for token in surgeons:
            sign_out(site, token)


# --------------------------------------------------------------------------- 6: Decline
@SIZES
def test_decline_from_the_popup_pages_the_next_doctor_within_2_s(night, site, size, clock, browser):
    night.set_viewport_size(size)
    _put_on_duty_now(site, "D02", clock)
    token = signed_in_as_d01(night)
    other, d02_tab = colleague_page(browser, site, "D02", size)
    try:
        # D02 is busier (one of theirs already), so the least-busy routing gives the arrest to D01.
        incident = mine(site, token, "CARDIAC_ARREST", "P001")
        popup = popup_of(night, incident["incident_id"])
        if size == PHONE:
            night.get_by_role("button", name=re.compile(r"^(Details|All \d+ alarms)$")).click()
        popup.get_by_role("button", name="I can't take this").click()
        popup.get_by_label("Why not? (optional)").fill("In theatre with a trauma call")
        popup.get_by_role("button", name="Pass it on now").click()
        expect(popup_of(d02_tab, incident["incident_id"])).to_be_visible(timeout=2000)
        expect(popup_of(d02_tab, incident["incident_id"])).to_contain_text("John Whitfield, room 312")
        expect(popup_of(night, incident["incident_id"])).to_have_count(0)
        night.goto(f"/incidents/{incident['incident_id']}")
        trail = night.get_by_role("list", name="Audit trail")
        expect(trail.get_by_role("listitem").filter(has_text="Declined")).to_contain_text(
            "In theatre with a trauma call")
    finally:
        other.close()


@SIZES
def test_the_last_available_doctor_cannot_decline_and_is_told_why(night, site, size):
    night.set_viewport_size(size)
    token = signed_in_as_d01(night)
    incident = mine(site, token, "CARDIAC_ARREST", "P001")
    night.goto(f"/incidents/{incident['incident_id']}")
    night.get_by_role("button", name="I can't take this").click()
    night.get_by_role("button", name="Pass it on now").click()
    expect(night.get_by_role("alert").filter(has_text="Nobody else is available")).to_be_visible()
    expect(night.get_by_test_id("incident-status")).to_have_text("Assigned")


# --------------------------------------------------------------------------- 7: one hand
MEASURE_CONTROLS = """() => {
    const small = [];
    const selector = "button, a[href], select, input:not([type=hidden]):not([type=checkbox]), [role=button]";
    for (const el of document.querySelectorAll(selector)) {
        const box = el.getBoundingClientRect();
        const style = getComputedStyle(el);
        if (box.width === 0 || box.height === 0 || style.visibility === "hidden") continue;
        if (box.right <= 0 || box.left >= window.innerWidth) continue;  // off screen (the skip link)
        if (box.width < 44 || box.height < 44) {
            const name = (el.innerText || el.getAttribute("aria-label") || "").trim().slice(0, 30);
            const size = `${Math.round(box.width)}x${Math.round(box.height)}`;
            small.push(`${el.tagName.toLowerCase()} "${name}" ${size}`);
        }
    }
    return small;
}"""


def test_every_visible_button_and_link_is_at_least_44_px_at_375_px(night, site):
    night.set_viewport_size(PHONE)
    token = signed_in_as_d01(night)
    incident = mine(site, token, "BP_HIGH", "P002", value=210)
    expect(night.get_by_role("button", name="Notifications, 1 unread")).to_be_visible()
    found = {}
    for path in every_page(night, incident["incident_id"]):
        small = night.evaluate(MEASURE_CONTROLS)
        if path != "/status":
            night.get_by_role("button", name="Menu").click()  # the pages and sign-out behind it
            small += night.evaluate(MEASURE_CONTROLS)
            night.get_by_role("button", name="Menu").click()
        if small:
            found[path] = small
    night.goto("/incidents")
    label = night.locator("label[for='filter-mine']").bounding_box()
    assert label["height"] >= 44, label
    assert found == {}, found


SCROLL_SIZES = "(t) => { const w = t.closest('.table-wrap'); return [w.scrollWidth, w.clientWidth]; }"


def test_the_alerts_rota_and_metrics_tables_become_cards_below_600_px(night, site):
    night.set_viewport_size(PHONE)
    token = signed_in_as_d01(night)
    incident = mine(site, token, "RESPIRATORY_RATE_HIGH", "P008", value=34)
    resolved(site, token, incident["incident_id"])
    for path, table in (("/alerts", "table[aria-label='Recent alerts']"), ("/oncall", "table.rota"),
                        ("/metrics", "table[aria-labelledby='clinicians-title']")):
        night.goto(path)
        cards = night.locator(table)
        expect(cards.locator("tbody tr").first).to_be_visible()
        expect(cards.locator("thead")).to_be_hidden()
        assert cards.locator("tbody td").first.evaluate("(td) => getComputedStyle(td).display") == "block"
        # Nothing cut: no cell is wider inside than it shows, and nothing scrolls sideways.
        cut = cards.evaluate("""(t) => [...t.querySelectorAll("td, th")]
            .filter((cell) => cell.getBoundingClientRect().width > 0)
            .filter((cell) => cell.scrollWidth > cell.clientWidth + 1)
            .map((cell) => cell.innerText.slice(0, 30))""")
        assert cut == [], (path, cut)
        wrap = cards.evaluate(SCROLL_SIZES)
        assert wrap[0] <= wrap[1], (path, wrap)
    night.goto("/alerts")
    recent = night.locator("table[aria-label='Recent alerts']")
    expect(recent).to_contain_text("Tachypnoea")
    expect(recent).to_contain_text("34 breaths/min")


def test_the_rotas_seventh_day_is_on_screen_at_1366_px(night):
    night.set_viewport_size(DESKTOP)
    signed_in_as_d01(night)
    night.goto("/oncall")
    rota = night.locator("table.rota")
    headers = rota.locator("thead th")
    expect(headers).to_have_count(8)  # the role and seven days
    wrap = rota.evaluate("(t) => t.closest('.table-wrap').getBoundingClientRect().right")
    last = headers.nth(7).bounding_box()
    assert last["x"] + last["width"] <= wrap + 1, (last, wrap)
    sizes = rota.evaluate(SCROLL_SIZES)
    assert sizes[0] <= sizes[1], sizes


def test_not_now_to_background_alerts_is_kept_by_the_server_for_a_week(night, site, browser, clock):
    signed_in_as_d01(night)
    prompt = night.get_by_role("region", name="Alerts in the background")
    if night.evaluate("Notification.permission") != "default":
        pytest.skip("this Chromium has already decided on notifications")
    expect(prompt).to_be_visible()
    prompt.get_by_role("button", name="Not now").click()
    expect(prompt).to_have_count(0)
    token = api_login(site, "D01")
    answer = requests.get(f"{site}/api/v1/preferences/me", timeout=10,
                          headers={"Authorization": f"Bearer {token}"})
    assert answer.json()["background_alerts_prompt"]["show"] is False
    # Another workstation (a browser profile of its own), the same clinician: not asked again.
    elsewhere, tab = workstation(browser, site, PHONE)
    try:
        signed_in_as_d01(tab)
        expect(tab.get_by_role("heading", name="My active incidents")).to_be_visible()
        # Read only once the page has had the server's answer (its absence before proves nothing).
        with tab.expect_response(lambda response: "/api/v1/preferences/me" in response.url) as asked:
            tab.goto("/incidents")
        assert asked.value.json()["background_alerts_prompt"]["show"] is False
        expect(tab.get_by_role("heading", level=1)).to_have_text("Incidents")
        expect(tab.get_by_role("region", name="Alerts in the background")).to_have_count(0)
    finally:
        elsewhere.close()
    # A week later (the sessions of then have ended) it is asked again.
    clock.advance(7 * 86400 + 60)
    later, tab = workstation(browser, site, DESKTOP)
    try:
        signed_in_as_d01(tab)
        expect(tab.get_by_role("region", name="Alerts in the background")).to_be_visible()
    finally:
        later.close()


# --------------------------------------------------------------------------- 8/9: words
@SIZES
def test_popups_name_the_patient_and_room_and_readings_have_units_or_none(night, site, size):
    night.set_viewport_size(size)
    token = signed_in_as_d01(night)
    arrest = mine(site, token, "CARDIAC_ARREST", "P001", value=0)
    popup = popup_of(night, arrest["incident_id"])
    expect(popup.get_by_test_id("popup-patient")).to_have_text("John Whitfield, room 312 (Cardiology)")
    expect(popup).not_to_contain_text("P001")
    high = mine(site, token, "BP_HIGH", "P002", value=195)
    night.goto("/alerts")
    recent = night.locator("table[aria-label='Recent alerts']")
    expect(recent.locator("tr").filter(has_text="Hypertensive crisis").first).to_contain_text("195 mmHg")
    arrest_row = recent.locator("tr").filter(has_text="Cardiac arrest").first
    expect(arrest_row.locator("td[data-label='Reading']")).to_have_text("—")
    night.goto(f"/incidents/{arrest['incident_id']}")
    facts = night.get_by_role("region", name="Patient and reading")
    expect(facts).to_contain_text("monitor-7")
    expect(night.get_by_test_id("reading")).to_have_count(0)  # an arrest's "0" means nothing
    expect(facts).not_to_contain_text("unknown")
    night.goto(f"/incidents/{high['incident_id']}")
    expect(night.get_by_test_id("reading")).to_have_text("195 mmHg")
    night.goto("/oncall")
    on_duty = night.get_by_role("region", name="On duty now")
    expect(on_duty).to_contain_text("Emergency doctor")
    expect(night.get_by_role("main")).not_to_contain_text("EMERGENCY_DOCTOR")


@SIZES
def test_an_escalated_incident_says_escalated(night, site, size, clock):
    night.set_viewport_size(size)
    with d02_signed_in_elsewhere(site, clock):
        token = signed_in_as_d01(night)
        incident = mine(site, token, "CARDIAC_ARREST", "P001")
        clock.advance(65)

        def escalated():
            answer = requests.get(f"{site}/api/v1/incidents/{incident['incident_id']}", timeout=10,
                                  headers={"Authorization": f"Bearer {token}"}).json()
            return answer if answer["assigned_to"] != "D01" else None
        wait_for(escalated, 20, 0.3, "the arrest to escalate")
        night.goto(f"/incidents/{incident['incident_id']}")
        expect(night.get_by_test_id("incident-status")).to_have_text("Escalated")
        trail = night.get_by_role("list", name="Audit trail")
        expect(trail).to_contain_text("Escalated")
        expect(trail).not_to_contain_text("CARDIAC_ARREST")
        expect(trail).not_to_contain_text("EMERGENCY_DOCTOR")


@SIZES
def test_the_status_page_is_readable_in_the_hospitals_zone_on_a_24_hour_clock(night, size):
    night.set_viewport_size(size)
    night.goto("/status")
    card = night.get_by_test_id("status-incident-management")
    expect(card).to_contain_text("Working")
    expect(card).to_contain_text("Database: reachable")
    expect(card).to_contain_text("Message broker: reachable")
    expect(night.get_by_role("main")).not_to_contain_text("{")
    meta = night.locator(".meta")
    expect(meta).to_contain_text("(hospital time, Europe/London)")
    shown = re.search(r"Last checked at (\d\d):(\d\d)", meta.inner_text())
    assert shown, meta.inner_text()
    now = dt.datetime.now(ZoneInfo("Europe/London"))
    apart = abs(int(shown[1]) * 60 + int(shown[2]) - (now.hour * 60 + now.minute))
    assert min(apart, 1440 - apart) <= 1, (shown[0], now)


@SIZES
def test_unowned_shows_in_red_and_the_tiles_are_links(night, site, size, db):
    night.set_viewport_size(size)
    token = signed_in_as_d01(night)
    # D01, the only clinician signed in, is away: nobody can take the stroke, which stays OPEN.
    away = requests.patch(f"{site}/api/v1/employees/me/availability", json={"availability": "AWAY"},
                          headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert away.status_code == 200, away.text
    with db.transaction() as cur:
        cur.execute("""
            WITH raised AS (
                INSERT INTO alerts (patient_id, alert_type, severity, category, room, occurred_at)
                VALUES ('P004', 'STROKE_SUSPECTED', 'CRITICAL', 'NEUROLOGICAL', '418',
                        now() - interval '7 minutes')
                RETURNING alert_id)
            INSERT INTO incidents (alert_id, patient_id, alert_type, severity, category, room, title, status,
                                   created_at)
            SELECT alert_id, 'P004', 'STROKE_SUSPECTED', 'CRITICAL', 'NEUROLOGICAL', '418',
                   'CRITICAL: Suspected stroke, room 418', 'OPEN', now() - interval '7 minutes'
            FROM raised RETURNING incident_id""")
        incident_id = cur.fetchone()["incident_id"]
    night.reload()
    row = night.locator(f"tr[data-incident-id='{incident_id}']")
    label = row.get_by_test_id("unowned")
    expect(label).to_have_text(re.compile(r"^Unowned for [78] min$"))
    assert label.evaluate("(el) => getComputedStyle(el).color") == "rgb(179, 38, 30)"
    night.get_by_test_id("tile-critical").click()
    expect(night).to_have_url(re.compile(r"/incidents\?severity=CRITICAL$"))
    expect(night.locator(f"tr[data-incident-id='{incident_id}']")).to_be_visible()


def test_the_metrics_charts_labels_are_not_clipped(night, site, db):
    """Long durations ("12 min 5 s") and the top count: every axis label of every chart lies
    inside its drawing."""
    token = signed_in_as_d01(night)
    incident = mine(site, token, "BP_HIGH", "P002", value=210)
    resolved(site, token, incident["incident_id"])
    with db.transaction() as cur:
        cur.execute("UPDATE incidents SET response_seconds = 725, resolution_seconds = 83000"
                    " WHERE incident_id = %s", (incident["incident_id"],))
    night.goto("/metrics")
    hourly = night.get_by_role("figure", name="MTTA and MTTR per hour, last 24 h")
    expect(hourly).to_contain_text("12 min 5 s")
    for figure in ("timing-hourly", "timing-daily", "alarm-trend"):
        chart = night.get_by_test_id(figure)
        ticks = chart.locator(".recharts-cartesian-axis-tick-value")
        expect(ticks.first).to_be_visible()
        clipped = chart.evaluate("""(figure) => {
            const svg = figure.querySelector(".recharts-wrapper > svg").getBoundingClientRect();
            return [...figure.querySelectorAll(".recharts-cartesian-axis-tick-value")]
                .map((tick) => [tick.textContent, tick.getBoundingClientRect()])
                .filter(([, box]) => box.top < svg.top || box.bottom > svg.bottom
                                     || box.left < svg.left || box.right > svg.right)
                .map(([text]) => text);
        }""")
        assert ticks.count() > 2 and clipped == [], (figure, clipped)


# --------------------------------------------------------------------------- axe
@SIZES
def test_axe_finds_nothing_serious_on_any_page_with_unread_notifications_and_a_popup(night, site, size):
    night.set_viewport_size(size)
    token = signed_in_as_d01(night)
    incident = mine(site, token, "CARDIAC_ARREST", "P001")
    expect(night.get_by_role("button", name="Notifications, 1 unread")).to_be_visible()
    expect(popup_of(night, incident["incident_id"])).to_be_visible()
    found = {}
    for path in every_page(night, incident["incident_id"]):
        if path != "/status":  # signed-in pages: the unread count and the pop-up are on screen
            expect(night.get_by_role("button", name="Notifications, 1 unread")).to_be_visible()
            expect(popup_of(night, incident["incident_id"])).to_be_visible()
        violations = serious_axe_violations(night)
        if violations:
            found[path] = violations
    assert found == {}, found


