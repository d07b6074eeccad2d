"""Silences through the public API, with the test clock (issue 22): what a silence may match and
who may create it, alarms held (stored, shown, paging nobody), and paged at once when it ends,
by hand or at its end time."""
import datetime as dt

import pytest
import requests

from tests.support import wait_for

pytestmark = pytest.mark.module_database


def call(api, method, token, path, body=None):
    return requests.request(method, f"{api.url}/api/v1{path}", json=body, timeout=10, headers=api.auth(token))


def silence(api, token, clock, *, hours=1.0, **matches):
    body = {"reason": "OTHER", **matches,
            "ends_at": (clock.now() + dt.timedelta(hours=hours)).isoformat()}
    return call(api, "POST", token, "/silences", body)


def test_a_ward_wide_silence_of_cardiac_arrest_is_refused(api, clock, login_as):
    d03 = login_as("D03")  # a supervisor
    for matches in ({"ward": "Cardiology", "alert_type": "CARDIAC_ARREST"}, {"alert_type": "APNEA_DETECTED"},
                    {"patient_id": "P001", "alert_type": "CARDIAC_ARREST"}):
        answer = silence(api, d03, clock, **matches)
        assert answer.status_code == 422, answer.text
        assert answer.json()["rule"] == "critical_only_by_device"
    too_long = silence(api, d03, clock, hours=8.5, patient_id="P007", alert_type="O2_SATURATION_LOW")
    assert too_long.status_code == 422 and too_long.json()["field"] == "ends_at"
    nothing = silence(api, d03, clock)
    assert nothing.status_code == 422
    surgery = silence(api, d03, clock, ward="Surgery", reason="IN_SURGERY")
    assert surgery.status_code == 422 and surgery.json()["field"] == "patient_id"


def test_a_device_silence_under_maintenance_is_for_a_supervisor_only(api, clock, login_as):
    n02, n01 = login_as("N02"), login_as("N01")  # N01 supervises
    maintenance = {"device_id": "MON-509", "reason": "DEVICE_MAINTENANCE", "note": "lead replaced"}
    refused = silence(api, n02, clock, **maintenance)
    assert refused.status_code == 403 and refused.json()["rule"] == "critical_needs_supervisor"
    accepted = silence(api, n01, clock, **maintenance)
    assert accepted.status_code == 201, accepted.text
    # A CRITICAL type by one device is allowed, for a supervisor.
    arrest = silence(api, n01, clock, device_id="MON-509", alert_type="CARDIAC_ARREST",
                     reason="DEVICE_CLEANING")
    assert arrest.status_code == 201, arrest.text
    assert call(api, "POST", n02, f"/silences/{arrest.json()['silence_id']}/end").status_code == 403


def test_a_spo2_silence_for_p007_holds_two_alarms_and_pages_the_active_one_when_ended(
        api, clock, login_as, notification_events):
    n02, n01 = login_as("N02"), login_as("N01")
    login_as("D03")
    before = api.incident_of(api.post_alert("P007", "O2_SATURATION_LOW", value=85))  # open already
    created = silence(api, n02, clock, patient_id="P007", alert_type="O2_SATURATION_LOW",
                      reason="KNOWN_ARTEFACT", note="probe on a cold finger")
    assert created.status_code == 201, created.text
    silence_id = created.json()["silence_id"]
    held = []
    for value in (84, 83):
        # Past the correlation window (5 minutes): within it a repeat joins the incident open for
        # its alarm (`before`, which the silence must not hide) instead of opening one.
        clock.advance(6 * 60)
        held.append(api.incident_of(api.post_alert("P007", "O2_SATURATION_LOW", value=value), status="OPEN"))
    assert all(i["silenced_by"] == silence_id and i["assigned_to"] is None for i in held)
    # Never hides an incident already open: it stays with a clinician and is never silenced. (It
    # may have escalated by now: the clock has passed its acknowledgement deadline.)
    kept = api.get(before["incident_id"])
    assert kept["status"] in ("ASSIGNED", "REASSIGNED") and kept["assigned_to"], kept
    assert kept["silenced_by"] is None and "SILENCED" not in [h["action"] for h in kept["history"]]
    # Every clinician of the ward sees it, with what it holds.
    [shown] = call(api, "GET", n01, "/silences?ward=Internal Medicine").json()["silences"]
    assert shown["silence_id"] == silence_id and shown["held_incidents"] == [i["incident_id"] for i in held]
    # Nobody was paged for them.
    events = notification_events(
        lambda events: any(e["incident_id"] == before["incident_id"] for e in events))
    assert not [e for e in events if e["incident_id"] in {i["incident_id"] for i in held}]

    # One is dealt with meanwhile (claimed and resolved); then the silence ends by hand.
    done = held[0]["incident_id"]
    steps = (("claim", None), ("acknowledge", None), ("start", None),
             ("resolve", {"resolution_notes": "probe moved"}))
    for action, body in steps:
        assert api.act(n02, done, action, body).status_code == 200
    ended = call(api, "POST", n02, f"/silences/{silence_id}/end")
    assert ended.status_code == 200 and ended.json()["end_reason"] == "ENDED"
    # The active one is paged at once (the retrier is woken; its own interval is 5 s).
    paged = api.wait_until(held[1]["incident_id"], lambda i: i["status"] == "ASSIGNED",
                           "the held alarm paged", timeout=4)
    assert paged["silenced_by"] is None and paged["assigned_to"]
    assert api.get(done)["status"] == "RESOLVED"
    audit = call(api, "GET", n01, f"/silences/{silence_id}/audit").json()["audit"]
    assert [(a["action"], a["actor_id"]) for a in audit] == [("CREATED", "N02"), ("ENDED", "N02")]
    assert [h["action"] for h in paged["history"]][:3] == ["CREATED", "SILENCED", "SILENCE_ENDED"]


def test_a_silence_ends_at_its_end_time_by_the_clock_and_its_alarm_is_paged(api, clock, login_as):
    n02 = login_as("N02", expires_in="3 hours")
    login_as("D03", expires_in="3 hours")
    created = silence(api, n02, clock, hours=1, patient_id="P007", reason="TRANSFER")
    assert created.status_code == 201, created.text
    held = api.incident_of(api.post_alert("P007", "FALL_DETECTED"), status="OPEN")
    assert held["silenced_by"] == created.json()["silence_id"]
    edited = call(api, "PATCH", n02, f"/silences/{held['silenced_by']}",
                  {"ends_at": (clock.now() + dt.timedelta(hours=9)).isoformat()})
    assert edited.status_code == 422  # never past 8 hours from its start
    clock.advance(3601)
    paged = api.wait_until(held["incident_id"], lambda i: i["status"] == "ASSIGNED",
                           "the held alarm paged", timeout=4)
    assert paged["assigned_to"]
    [expired] = call(api, "GET", n02, "/silences?active=false").json()["silences"]
    assert expired["end_reason"] == "EXPIRED" and expired["active"] is False


def test_in_surgery_ends_when_the_patient_returns(api, clock, login_as):
    n02 = login_as("N02")
    login_as("D03")
    created = silence(api, n02, clock, hours=4, patient_id="P005", reason="IN_SURGERY")
    held = api.incident_of(api.post_alert("P005", "BP_LOW", value=80), status="OPEN")
    assert held["silenced_by"] == created.json()["silence_id"]
    back = call(api, "POST", n02, "/silences/patients/P005/returned")
    assert back.status_code == 200 and [s["end_reason"] for s in back.json()["ended"]] == ["PATIENT_RETURNED"]
    wait_for(lambda: api.get(held["incident_id"])["status"] == "ASSIGNED", 4, 0.1, "the held alarm paged")
