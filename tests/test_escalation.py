"""Incidents nobody acknowledges in time are escalated by the incident service, as the escalation
policy of their severity says: to another available clinician of the policy's roles, with the
supervisors told; or, when nobody else is available, the assignee and supervisors told again."""
import time

import pytest
import requests

from tests.support import pipeline, wait_for
from tests.test_incidents import Api, queued


@pytest.fixture(scope="module")
def services(service_env):
    with pipeline(service_env, incident_env={"ASSIGNMENT_RETRY_SECONDS": "0.5",
                                             "ESCALATION_CHECK_SECONDS": "0.3"}) as running:
        yield running


@pytest.fixture
def api(services, clean_state):
    return Api(services)


@pytest.fixture
def critical_policy(db):
    """CRITICAL incidents must be acknowledged within 1 s, and are escalated at most once."""
    def set_policy(timeout: int, max_level: int):
        with db.transaction() as cur:
            cur.execute("UPDATE escalation_policies SET ack_timeout_seconds = %s, max_level = %s "
                        "WHERE severity = 'CRITICAL'", (timeout, max_level))
    set_policy(1, 1)
    yield
    set_policy(60, 3)


def on_duty(services, role):
    token = services["incidents"].env["SERVICE_TOKEN"]
    answer = requests.get(services["oncall"].url + "/api/v1/oncall/current", params={"role": role},
                          headers={"Authorization": f"Bearer {token}"}, timeout=5).json()
    return sorted(c["employee_id"] for c in answer["clinicians"])


def history_actions(incident):
    return [(entry["action"], entry["actor_id"]) for entry in incident["history"]]


def test_unacknowledged_incident_is_escalated_to_another_clinician(
        api, services, login_as, critical_policy, rabbitmq_url):
    doctors = on_duty(services, "EMERGENCY_DOCTOR")
    assert len(doctors) >= 2
    tokens = {doctor: login_as(doctor) for doctor in doctors}
    incident = api.incident_of(api.post_alert(alert_type="CARDIAC_ARREST"))
    first = incident["assigned_to"]
    assert first in doctors

    escalated = wait_for(lambda: (i := api.get(incident["incident_id"]))["status"] == "REASSIGNED" and i,
                         15, 0.1, "the unacknowledged incident to be escalated")
    second = escalated["assigned_to"]
    assert second in doctors and second != first
    assert escalated["escalation_level"] == 1
    assert ("ESCALATED", None) in history_actions(escalated)

    events = [e for e in queued(rabbitmq_url, "notifications") if e["type"] == "INCIDENT_ESCALATED"]
    assert len(events) == 1
    # The new assignee must act, the first one learns it is no longer theirs, supervisors see it.
    assert events[0]["recipients"][:2] == [second, first]
    assert set(doctors) <= set(events[0]["recipients"])  # emergency doctors are supervisors

    # The first assignee can no longer acknowledge it; the new one can.
    assert api.act(tokens[first], incident["incident_id"], "acknowledge").status_code == 403
    assert api.act(tokens[second], incident["incident_id"], "acknowledge").status_code == 200
    time.sleep(1.5)  # a further timeout passes: an acknowledged incident is not escalated again
    after = api.get(incident["incident_id"])
    assert after["status"] == "ACKNOWLEDGED" and after["escalation_level"] == 1


def test_escalation_with_nobody_else_available_tells_the_assignee_again(
        api, services, login_as, critical_policy, rabbitmq_url):
    only = on_duty(services, "EMERGENCY_DOCTOR")[0]
    login_as(only)
    incident = api.incident_of(api.post_alert(alert_type="CARDIAC_ARREST"))
    assert incident["assigned_to"] == only
    escalated = wait_for(lambda: (i := api.get(incident["incident_id"]))["escalation_level"] == 1 and i,
                         15, 0.1, "the escalation")
    assert escalated["assigned_to"] == only and escalated["status"] == "ASSIGNED"
    assert ("ESCALATED", None) in history_actions(escalated)
    events = [e for e in queued(rabbitmq_url, "notifications") if e["type"] == "INCIDENT_ESCALATED"]
    assert [e["recipients"] for e in events] == [[only]]


def test_incident_acknowledged_in_time_is_never_escalated(api, services, login_as, db, critical_policy):
    with db.transaction() as cur:  # time enough to acknowledge, even on a busy machine
        cur.execute("UPDATE escalation_policies SET ack_timeout_seconds = 3 WHERE severity = 'CRITICAL'")
    for doctor in on_duty(services, "EMERGENCY_DOCTOR"):
        login_as(doctor)
    incident = api.incident_of(api.post_alert(alert_type="CARDIAC_ARREST"))
    # The assignee acknowledges at once (a session of their own).
    token = login_as(incident["assigned_to"])
    assert api.act(token, incident["incident_id"], "acknowledge").status_code == 200
    time.sleep(3.5)  # past the timeout
    after = api.get(incident["incident_id"])
    assert after["escalation_level"] == 0 and after["assigned_to"] == incident["assigned_to"]
    assert "ESCALATED" not in [action for action, _ in history_actions(after)]


def test_incidents_nobody_owns_are_announced_and_show_in_the_metrics(api, services, login_as, rabbitmq_url):
    """With nobody on duty signed in, a cardiac arrest stays OPEN: a signed-in supervisor who is
    off duty is told (not one whose session ran out), Prometheus sees it as active and unowned
    (IncidentUnowned pages on that), and as assigned once a doctor on duty signs in."""
    doctors = {f"D0{n}" for n in range(1, 5)}
    off_duty = sorted(doctors - set(on_duty(services, "EMERGENCY_DOCTOR")))[0]
    login_as(off_duty)
    login_as("N01", expires_in="-1 minute")  # the charge nurse, a supervisor, signed out by expiry
    alert_id = api.post_alert(alert_type="CARDIAC_ARREST")
    incident = api.incident_of(alert_id, status="OPEN")
    created = wait_for(lambda: [e for e in queued(rabbitmq_url, "notifications")
                                if e["type"] == "INCIDENT_CREATED"], 10, 0.1, "the unowned incident's event")
    assert len(created) == 1 and created[0]["incident_id"] == incident["incident_id"]
    assert created[0]["recipients"] == [off_duty]
    assert created[0]["data"]["status"] == "OPEN" and created[0]["data"]["assigned_to"] is None
    metrics_url = services["incidents"].url + "/metrics"

    def sample(name, **labels):
        text = requests.get(metrics_url, timeout=5).text
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith(f"{name}{{{wanted}}} "):
                return float(line.rsplit(" ", 1)[1])
        return None

    assert sample("incidents_active", severity="CRITICAL", status="OPEN") == 1
    waited = wait_for(lambda: (s := sample("incident_unassigned_oldest_seconds", severity="CRITICAL")) and s,
                      5, 0.2, "the unowned incident's age")
    assert waited > 0
    login_as(on_duty(services, "EMERGENCY_DOCTOR")[0])
    assigned = api.incident_of(alert_id, status="ASSIGNED")
    assert assigned["incident_id"] == incident["incident_id"]
    assert sample("incidents_active", severity="CRITICAL", status="ASSIGNED") == 1
    assert sample("incident_unassigned_oldest_seconds", severity="CRITICAL") is None
