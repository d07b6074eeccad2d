"""Incidents nobody acknowledges in time are escalated by the incident service, as the escalation
policy of their severity says: to another available clinician of the policy's roles, with the
supervisors told; or, when nobody else is available, the assignee and supervisors told again.

No test waits a timeout out: the clock is pinned to a known hour of the rota and moved past the
policy's deadline, and the escalator (checking every 0.3 s here) sees it at once."""
import pytest

from tests.support import PlatformApi, metric_value, pipeline, wait_for

pytestmark = pytest.mark.module_database  # the pipeline runs once for the module

CRITICAL_ACK_TIMEOUT = 60  # seconds, the seeded policy (0003_escalation.sql)
PAST_THE_DEADLINE = CRITICAL_ACK_TIMEOUT + 1


@pytest.fixture(scope="module")
def services(module_service_env):
    with pipeline(module_service_env, incident_env={"ASSIGNMENT_RETRY_SECONDS": "0.5",
                                                    "ESCALATION_CHECK_SECONDS": "0.3"}) as running:
        yield running


@pytest.fixture
def api(services, db, clock):
    clock.pin_rota()
    return PlatformApi(services)


@pytest.fixture
def escalated_once_at_most(db):
    """CRITICAL incidents are escalated at most once (the database is fresh for the next test)."""
    with db.transaction() as cur:
        cur.execute("UPDATE escalation_policies SET max_level = 1 WHERE severity = 'CRITICAL'")


def employee_names(db) -> dict[str, str]:
    with db.transaction() as cur:
        cur.execute("SELECT employee_id, name FROM employees")
        return {row["employee_id"]: row["name"] for row in cur.fetchall()}


def history_actions(incident):
    return [(entry["action"], entry["actor_id"]) for entry in incident["history"]]


def escalated_events(notification_events, incident_id, wanted=1):
    def escalations(events):
        return [e for e in events if e["type"] == "INCIDENT_ESCALATED" and e["incident_id"] == incident_id]
    return escalations(notification_events(lambda events: len(escalations(events)) >= wanted,
                                           f"incident {incident_id}'s escalation event"))


def an_escalation_pass_has_run(api, clock):
    """Proof that the escalator has looked at the incidents since the clock last moved: a fresh
    unacknowledged control incident, made overdue, is escalated. (An incident NOT escalated
    proves nothing by itself: the escalator may simply not have run yet.)"""
    control = api.incident_of(api.post_alert("P003", "CARDIAC_ARREST"))
    clock.advance(PAST_THE_DEADLINE)
    api.wait_until(control["incident_id"], lambda i: i["escalation_level"] == 1,
                   "the control incident to be escalated")


def test_unacknowledged_incident_is_escalated_to_another_clinician(
        api, db, login_as, clock, escalated_once_at_most, notification_events):
    doctors = api.on_duty("EMERGENCY_DOCTOR")
    assert len(doctors) == 2
    tokens = {doctor: login_as(doctor) for doctor in doctors}
    incident = api.incident_of(api.post_alert(alert_type="CARDIAC_ARREST"))
    first = incident["assigned_to"]
    assert first in doctors and incident["escalation_level"] == 0

    clock.advance(PAST_THE_DEADLINE)
    escalated = api.wait_until(incident["incident_id"], lambda i: i["status"] == "REASSIGNED",
                               "the unacknowledged incident to be escalated")
    second = escalated["assigned_to"]
    assert second in doctors and second != first
    assert escalated["escalation_level"] == 1
    assert ("ESCALATED", None) in history_actions(escalated)

    [event] = escalated_events(notification_events, incident["incident_id"])
    # The new assignee must act and the supervisors on duty see it (emergency doctors supervise);
    # the first one gets one short notice of their own that it is no longer theirs.
    assert event["recipients"] == [second]
    names = employee_names(db)
    assert event["message"] == (
        f"{incident['title']} was not acknowledged in time by {names[first]} (emergency doctor) and "
        f"is escalated to {names[second]} (emergency doctor) (escalation level 1).")
    assert "EMERGENCY_DOCTOR" not in event["message"]
    taken = [e for e in notification_events(lambda events: True)
             if e["incident_id"] == incident["incident_id"] and first in e["recipients"]
             and e["event_id"].startswith(f"incident-{incident['incident_id']}-reassigned")]
    assert [(e["recipients"], e["message"]) for e in taken] == [
        ([first], f"{incident['title']} was taken over by {names[second]} (emergency doctor).")]
    assert escalated["ack_deadline"] is not None

    # The first assignee can no longer acknowledge it; the new one can.
    assert api.act(tokens[first], incident["incident_id"], "acknowledge").status_code == 403
    assert api.act(tokens[second], incident["incident_id"], "acknowledge").status_code == 200
    # A further timeout passes: an acknowledged incident is not escalated again.
    an_escalation_pass_has_run(api, clock)
    after = api.get(incident["incident_id"])
    assert after["status"] == "ACKNOWLEDGED" and after["escalation_level"] == 1


def test_escalation_with_nobody_else_available_tells_the_assignee_again(
        api, login_as, clock, escalated_once_at_most, notification_events):
    only = api.on_duty("EMERGENCY_DOCTOR")[0]
    login_as(only)
    incident = api.incident_of(api.post_alert(alert_type="CARDIAC_ARREST"))
    assert incident["assigned_to"] == only
    clock.advance(PAST_THE_DEADLINE)
    escalated = api.wait_until(incident["incident_id"], lambda i: i["escalation_level"] == 1,
                               "the escalation")
    assert escalated["assigned_to"] == only and escalated["status"] == "ASSIGNED"
    assert ("ESCALATED", None) in history_actions(escalated)
    assert [e["recipients"] for e in escalated_events(notification_events, incident["incident_id"])] == [
        [only]]


def test_no_escalation_before_the_deadline_and_none_once_acknowledged(api, login_as, clock):
    for doctor in api.on_duty("EMERGENCY_DOCTOR"):
        login_as(doctor)
    incident = api.incident_of(api.post_alert(alert_type="CARDIAC_ARREST"))
    # A second short of the deadline: still the assignee's.
    clock.advance(CRITICAL_ACK_TIMEOUT - 1)
    token = login_as(incident["assigned_to"])
    assert api.get(incident["incident_id"])["escalation_level"] == 0
    assert api.act(token, incident["incident_id"], "acknowledge").status_code == 200
    an_escalation_pass_has_run(api, clock)  # and the deadline is long past
    after = api.get(incident["incident_id"])
    assert after["escalation_level"] == 0 and after["assigned_to"] == incident["assigned_to"]
    assert "ESCALATED" not in [action for action, _ in history_actions(after)]


def test_incidents_nobody_owns_are_announced_and_show_in_the_metrics(api, db, login_as, notification_events):
    """With nobody on duty available, a cardiac arrest stays OPEN: only the supervisors on duty
    now and signed in are told (one signed in but marked away included), not one signed in off
    duty, nor one whose session ran out; Prometheus sees it as active and unowned (IncidentUnowned
    pages on that), and as assigned once a doctor on duty signs in."""
    doctors = {f"D0{n}" for n in range(1, 5)}
    on_duty = api.on_duty("EMERGENCY_DOCTOR")
    off_duty = sorted(doctors - set(on_duty))[0]
    login_as(off_duty)
    login_as("N01", expires_in="-1 minute")  # the charge nurse, a supervisor, signed out by expiry
    away = on_duty[1]
    with db.transaction() as cur:
        cur.execute("UPDATE employees SET availability = 'AWAY' WHERE employee_id = %s", (away,))
    login_as(away)
    alert_id = api.post_alert(alert_type="CARDIAC_ARREST")
    incident = api.incident_of(alert_id, status="OPEN")
    created = [e for e in notification_events(
        lambda events: any(e["type"] == "INCIDENT_CREATED" for e in events), "the unowned incident's event")
        if e["type"] == "INCIDENT_CREATED"]
    assert len(created) == 1 and created[0]["incident_id"] == incident["incident_id"]
    assert created[0]["recipients"] == [away]
    assert created[0]["message"].startswith(f"{incident['title']} (patient P001): nobody on duty")
    assert created[0]["data"]["status"] == "OPEN" and created[0]["data"]["assigned_to"] is None

    # Read from the database at each scrape: what the API shows, /metrics shows.
    assert metric_value(api.url, "incidents_active", severity="CRITICAL", status="OPEN") == 1
    waited = wait_for(lambda: metric_value(api.url, "incident_unassigned_oldest_seconds",
                                           severity="CRITICAL"), 5, 0.2, "the unowned incident's age")
    assert waited > 0
    login_as(on_duty[0])
    assigned = api.incident_of(alert_id, status="ASSIGNED")
    assert assigned["incident_id"] == incident["incident_id"]
    assert metric_value(api.url, "incidents_active", severity="CRITICAL", status="ASSIGNED") == 1
    assert metric_value(api.url, "incident_unassigned_oldest_seconds", severity="CRITICAL") is None
