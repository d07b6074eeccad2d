"""Who may take an alarm, and alarms nobody owns.

A claim is for clinicians whose role the alert type is routed or escalated to; an alarm its
assignee has acknowledged or started is taken from them, while they are signed in, only by a
supervisor. An incident nobody could take is offered the moment a suitable clinician signs in or
marks themselves available: the retry interval here is a minute, so only that wake-up can assign it
within the two seconds these tests allow."""
import pytest
import requests

from tests.support import pipeline, wait_for

pytestmark = pytest.mark.module_database

PASSWORD = "password123"  # the seed's demo password (0002_seed.sql)
WAKE_UP_SECONDS = 2


@pytest.fixture(scope="module")
def services(module_service_env):
    with pipeline(module_service_env, incident_env={"ASSIGNMENT_RETRY_SECONDS": "60"}) as running:
        yield running


def test_a_claim_is_refused_outside_the_routing_and_allowed_inside(api, login_as, make_incident):
    login_as("D01")
    incident_id = make_incident(alert_type="APNEA_DETECTED", assigned_to="D01")  # routed to ED, PULMONOLOGIST
    engineer = api.act(login_as("E01"), incident_id, "claim")
    assert engineer.status_code == 403
    assert engineer.json()["message"] == (
        f"cannot claim incident {incident_id}: a biomedical engineer may not take this Apnoea alarm; "
        f"it is for: emergency doctor, pulmonologist")
    assert engineer.json()["allowed_roles"] == ["EMERGENCY_DOCTOR", "PULMONOLOGIST"]
    assert api.get(incident_id)["assigned_to"] == "D01"

    claimed = api.act(login_as("S03"), incident_id, "claim", {"note": "I am on the ward"})
    assert claimed.status_code == 200 and claimed.json()["assigned_to"] == "S03"
    incident = api.get(incident_id)
    [claim] = [h for h in incident["history"] if h["action"] == "CLAIMED"]
    assert claim["actor_id"] == "S03" and claim["note"] == "taken over from D01 (ASSIGNED): I am on the ward"
    assert [(a["employee_id"], a["reason"]) for a in incident["assignments"]] == [
        ("D01", "AUTO"), ("S03", "CLAIM")]


def test_an_acknowledged_alarm_of_a_signed_in_assignee_is_taken_only_by_a_supervisor(
        api, login_as, make_incident):
    login_as("D01")
    incident_id = make_incident(alert_type="APNEA_DETECTED", assigned_to="D01", status="ACKNOWLEDGED")
    refused = api.act(login_as("S03"), incident_id, "claim")
    assert refused.status_code == 403 and refused.json()["message"] == (
        f"cannot claim incident {incident_id}: D01 has acknowledged it and is signed in; only a "
        f"supervisor may take it away from them (reassign)")
    taken = api.act(login_as("D02"), incident_id, "claim")  # an emergency doctor supervises
    assert taken.status_code == 200 and taken.json()["assigned_to"] == "D02"
    [claim] = [h for h in api.get(incident_id)["history"] if h["action"] == "CLAIMED"]
    assert claim["note"] == "taken over from D01 (ACKNOWLEDGED)"


def sign_in(api, login: str) -> str:
    answer = requests.post(api.oncall + "/api/v1/auth/login", json={"login": login, "password": PASSWORD},
                           timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def test_an_unowned_incident_is_assigned_within_seconds_of_a_suitable_sign_in(api):
    alert_id = api.post_alert("P002", "APNEA_DETECTED")
    incident = api.incident_of(alert_id, status="OPEN")
    assert incident["assigned_to"] is None and incident["ack_deadline"] is None
    doctor = api.on_duty("EMERGENCY_DOCTOR")[0]
    sign_in(api, doctor)
    assigned = api.incident_of(alert_id, status="ASSIGNED", timeout=WAKE_UP_SECONDS)
    assert assigned["assigned_to"] == doctor and assigned["ack_deadline"] is not None


def test_marking_oneself_available_takes_the_most_severe_unowned_incident_first(
        api, db, login_as, make_incident):
    doctor = api.on_duty("EMERGENCY_DOCTOR")[0]
    with db.transaction() as cur:
        cur.execute("UPDATE employees SET availability = 'AWAY' WHERE employee_id = %s", (doctor,))
    token = login_as(doctor)
    older_high = make_incident(severity="HIGH", alert_type="CARDIAC_ARREST")
    newer_critical = make_incident(severity="CRITICAL", alert_type="CARDIAC_ARREST")
    answer = requests.patch(api.oncall + "/api/v1/employees/me/availability",
                            json={"availability": "AVAILABLE"}, headers=api.auth(token), timeout=5)
    assert answer.status_code == 200
    wait_for(lambda: all(api.get(i)["status"] == "ASSIGNED" for i in (older_high, newer_critical)),
             WAKE_UP_SECONDS, 0.1, "both unowned incidents to be assigned")
    high, critical = api.get(older_high), api.get(newer_critical)
    assert high["assigned_to"] == critical["assigned_to"] == doctor
    assert critical["assigned_at"] < high["assigned_at"]  # the most severe first, though newer
