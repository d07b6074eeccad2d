"""Issue 24 in a real browser (the site and browser of test_web_ui: Chromium, the built SPA under
the shipped nginx.conf, the four services): the privacy officer's search page, a silent monitor on
the patient's page, and the devices' last beat."""
import datetime as dt

import pytest
import requests

from tests import test_web_ui as shared
from tests.conftest import HOSPITAL_TZ
from tests.support import wait_for
from tests.test_web_ui import expect, sign_in

pytestmark = pytest.mark.module_database

# The browser tests' fixtures (built SPA, the site behind nginx, Chromium, a fresh page), by name:
# pytest finds fixtures in the module's namespace.
web_dist, site, browser, page = shared.web_dist, shared.site, shared.browser, shared.page


def test_the_privacy_officer_searches_who_read_a_patient_and_a_nurse_has_no_privacy_page(page, site,
                                                                                          login_as):
    nurse = {"Authorization": f"Bearer {login_as('N02')}"}
    assert requests.get(f"{site}/api/v1/patients/P003", headers=nurse, timeout=10).status_code == 200
    assert requests.get(f"{site}/api/v1/privacy/access-log", headers=nurse, timeout=10).status_code == 403

    sign_in(page, "PRV01")
    page.get_by_role("link", name="Privacy").click()
    expect(page.get_by_role("heading", name="PHI access log")).to_be_visible()
    page.get_by_label("Patient id").fill("P003")
    page.get_by_role("button", name="Search").click()
    row = page.get_by_test_id("access-log").get_by_role("row").filter(has_text="N02")
    expect(row).to_contain_text("GET /api/v1/patients/<patient_id>")
    expect(row).to_contain_text("Treatment")
    expect(page.get_by_role("link", name="Export CSV")).to_have_attribute(
        "href", "/api/v1/privacy/access-log/export?patient_id=P003")


def test_a_silent_monitor_shows_on_the_patients_page_and_the_devices_page(page, site, login_as, db, clock):
    """A patient's silent monitor on their page and the devices page; a ward's silent monitor (no
    patient) as an incident of its ward on the dashboard and the incident page."""
    supervisor = {"Authorization": f"Bearer {login_as('D01')}"}

    def register(scope: dict) -> tuple[int, str]:
        created = requests.post(f"{site}/api/v1/devices", json=scope, headers=supervisor, timeout=10).json()
        device_id = created["device"]["device_id"]
        assert requests.put(f"{site}/api/v1/devices/{device_id}/heartbeat", json={"interval_seconds": 60},
                            headers=supervisor, timeout=10).status_code == 200
        return device_id, created["key"]

    device_id, key = register({"name": "Bed 312 monitor", "patient_id": "P001"})
    ward_device, ward_key = register({"name": "ICU central station", "ward": "ICU"})
    beat = requests.post(f"{site}/api/v1/devices/me/heartbeat", headers={"X-API-Key": key}, timeout=10).json()
    assert requests.post(f"{site}/api/v1/devices/me/heartbeat", headers={"X-API-Key": ward_key},
                         timeout=10).status_code == 200
    last = dt.datetime.fromisoformat(beat["last_beat_at"])
    clock.set(last + dt.timedelta(seconds=125))
    with db.transaction() as cur:
        for device in (device_id, ward_device):
            wait_for(lambda device=device: cur.execute("SELECT 1 FROM device_silences WHERE device_id = %s",
                                                       (device,)) or cur.fetchone(),
                     30, 0.2, "the device to be alarmed silent")

    sign_in(page, "D01")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Dr. Michael Brooks")
    page.goto("/patients/P001")
    since = last.astimezone(HOSPITAL_TZ)
    expect(page.get_by_test_id("monitor-silent")).to_contain_text(f"Monitor silent since {since:%H:%M}")
    page.get_by_role("link", name="Devices").click()
    row = page.get_by_test_id("devices").get_by_role("row").filter(has_text="Bed 312 monitor")
    expect(row).to_contain_text(f"Silent since {since:%H:%M}")

    # The ward monitor's silence is an incident of its ward: on the dashboard with the ward and
    # the device where a patient would be, and on its own page.
    page.get_by_role("link", name="Dashboard").click()
    row = page.get_by_role("row").filter(has_text="Device: ICU central station")
    expect(row).to_contain_text("ICU")
    expect(row).to_contain_text("MEDIUM")
    row.get_by_role("link", name="Device silent").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "MEDIUM: Device silent, ICU central station (ICU)")
    expect(page.get_by_test_id("patient-line")).to_have_text("Device: ICU central station · ICU")
    expect(page.get_by_test_id("patient-context")).to_contain_text("ICU central station")
