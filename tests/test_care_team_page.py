"""The care-team board and the dashboard's silences in real Chromium on a phone (390 x 844), through
the real services (the site, browser and sign-in of tests/test_web_ui.py) with the test clock: a
charge nurse assigns a patient by tapping, and every clinician's dashboard shows the silence."""
import datetime as dt

import pytest
import requests

from tests import test_web_ui as shared
from tests.support import wait_for
from tests.test_web_ui import WAIT_MS, _put_on_duty_now, api_login, device_alert, expect, sign_in

# The browser tests' fixtures by name: pytest finds fixtures in the module's namespace.
web_dist, site, browser = shared.web_dist, shared.site, shared.browser

pytestmark = pytest.mark.module_database

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser, site, db, clock):
    """A fresh profile at phone size, N01 and N02 on duty (an override: the clock stays at wall
    time, so the browser keeps its session cookie)."""
    for nurse in ("N01", "N02"):
        _put_on_duty_now(site, nurse, clock)
    context = browser.new_context(base_url=site, viewport=PHONE, has_touch=True)
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    errors = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def test_a_charge_nurse_assigns_a_patient_on_a_phone_and_the_dashboard_shows_the_silence(phone, site, clock):
    # N01 (supervisor) names herself charge nurse of Internal Medicine, then a silence is set.
    token = api_login(site, "N01")
    headers = {"Authorization": f"Bearer {token}"}
    named = requests.put(f"{site}/api/v1/care-teams/wards/Internal Medicine/charge-nurse", headers=headers,
                         json={"employee_id": "N01"}, timeout=10)
    assert named.status_code == 200, named.text
    silenced = requests.post(f"{site}/api/v1/silences", headers=headers, timeout=10, json={
        "patient_id": "P007", "alert_type": "O2_SATURATION_LOW", "reason": "KNOWN_ARTEFACT",
        "note": "probe on a cold finger", "ends_at": (clock.now() + dt.timedelta(hours=1)).isoformat()})
    assert silenced.status_code == 201, silenced.text
    # An alarm it holds: stored and shown, marked silenced, paging nobody.
    alert_id = device_alert(site, "O2_SATURATION_LOW", patient_id="P007", value=85)["alert_id"]

    def held():
        answer = requests.get(f"{site}/api/v1/incidents", params={"patient_id": "P007"}, headers=headers,
                              timeout=10).json()["incidents"]
        return next((i for i in answer if i["alert_id"] == alert_id and i["silenced_by"]), None)
    incident = wait_for(held, WAIT_MS / 1000, 0.2, "the alarm to be held by the silence")

    sign_in(phone, "N01")
    silences = phone.get_by_test_id("active-silences")
    expect(silences).to_contain_text("patient P007")
    expect(silences).to_contain_text("Low oxygen saturation")
    expect(silences).to_contain_text("probe on a cold finger")
    expect(silences).to_contain_text("1 alarm(s) held, paging nobody")
    row = phone.locator(f"[data-incident-id='{incident['incident_id']}']").first
    expect(row).to_contain_text("Silenced: paging nobody")

    phone.goto("/care-team")
    expect(phone.get_by_role("heading", name="Care team")).to_be_visible()
    phone.get_by_label("Ward").select_option("Internal Medicine")
    expect(phone.get_by_test_id("charge-nurse")).to_have_text("Maria Gonzalez")
    card = phone.locator("[data-patient-id='P007']")
    expect(card).to_contain_text("No Nurse")
    phone.get_by_role("button", name="James O'Connor").first.tap()
    card.get_by_role("button", name="Give to James O'Connor").tap()
    expect(phone.get_by_role("status").filter(has_text="is now the nurse of")).to_be_visible()
    expect(card).to_contain_text("Nurse: James O'Connor")
    # Made for the phone: nothing wider than the screen, targets a thumb can hit.
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    box = phone.get_by_role("button", name="James O'Connor").first.bounding_box()
    assert box["height"] >= 44

    # The API agrees: N02 is P007's nurse, assigned by N01.
    ward = requests.get(f"{site}/api/v1/care-teams", params={"ward": "Internal Medicine"}, headers=headers,
                        timeout=10).json()
    [p007] = [p for p in ward["patients"] if p["patient_id"] == "P007"]
    assert (p007["nurse"]["employee_id"], p007["nurse"]["assigned_by"]) == ("N02", "N01")
