"""Incidents nobody acknowledges in time are escalated by the incident service, as the escalation
policy of their severity says: to another available clinician of the policy's roles, with the
supervisors told; or, when nobody else is available, the assignee and supervisors told again.

No test waits a timeout out: the clock is pinned to a known hour of the rota and moved past the
policy's deadline, and the escalator (checking every 0.3 s here) sees it at once."""
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import psycopg2.errors
import pytest
import requests

from healthguard.db import Database
from tests.support import metric_value, wait_for

pytestmark = pytest.mark.module_database  # the pipeline runs once for the module

CRITICAL_ACK_TIMEOUT = 60  # seconds, the seeded policy (0003_escalation.sql)
PAST_THE_DEADLINE = CRITICAL_ACK_TIMEOUT + 1
START_TIMEOUT = 600  # seconds from acknowledgement to the start of work (0006_escalation_deadlines.sql)


@pytest.fixture(scope="module")
def pipeline_settings():
    return {"incident_env": {"ASSIGNMENT_RETRY_SECONDS": "0.5", "ESCALATION_CHECK_SECONDS": "0.3"}}


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
    # Escalated, not "taken over": the first did not acknowledge, and the words say so.
    assert [(e["recipients"], e["message"], e["data"]["reason"], e["data"]["paged"]) for e in taken] == [
        ([first], f"{incident['title']} was not acknowledged in time and was escalated to {names[second]} "
                  f"(emergency doctor); it is no longer yours.", "ESCALATED", [])]
    assert event["data"]["reason"] == "ESCALATED" and event["data"]["paged"] == [second]
    assert escalated["ack_deadline"] is not None
    # Told apart from a reassignment, so the UI can say "Escalated".
    assert escalated["assignment_reason"] == "ESCALATION" and escalated["paged"] == [second]
    [entry] = [h for h in escalated["history"] if h["action"] == "ESCALATED"]
    assert entry["note"] == (f"not acknowledged in time by {names[first]} (emergency doctor); "
                             f"escalation level 1")

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


def test_the_deadline_is_stored_and_shown_then_moves_with_each_escalation(api, login_as, clock):
    for doctor in api.on_duty("EMERGENCY_DOCTOR"):
        login_as(doctor)
    incident = api.incident_of(api.post_alert(alert_type="CARDIAC_ARREST"))
    assigned_at = datetime.fromisoformat(incident["assigned_at"])
    timeout = timedelta(seconds=CRITICAL_ACK_TIMEOUT)
    assert datetime.fromisoformat(incident["ack_deadline"]) == assigned_at + timeout
    clock.advance(PAST_THE_DEADLINE)
    escalated = api.wait_until(incident["incident_id"], lambda i: i["escalation_level"] == 1,
                               "the escalation")
    # The next deadline counts from the escalation, for the new assignee.
    assert datetime.fromisoformat(escalated["ack_deadline"]) == (
        datetime.fromisoformat(escalated["assigned_at"]) + timeout)
    assert escalated["ack_deadline"] > incident["ack_deadline"]  # ISO 8601 in UTC: ordered as text


def test_an_acknowledged_incident_not_started_in_time_pages_its_owner_again(
        api, login_as, clock, notification_events):
    doctors = api.on_duty("EMERGENCY_DOCTOR")
    tokens = {doctor: login_as(doctor) for doctor in doctors}
    incident = api.incident_of(api.post_alert(alert_type="CARDIAC_ARREST"))
    owner = incident["assigned_to"]
    acknowledged = api.act(tokens[owner], incident["incident_id"], "acknowledge").json()
    deadline = datetime.fromisoformat(acknowledged["ack_deadline"])
    assert START_TIMEOUT - 5 < (deadline - clock.now()).total_seconds() <= START_TIMEOUT

    clock.advance(START_TIMEOUT + 1)
    # The history and the deadline come from one snapshot: once the one shows it, so does the other.
    repaged = api.wait_until(incident["incident_id"],
                             lambda i: "REPAGED" in [h["action"] for h in i["history"]], "the re-page")
    # Still theirs, still acknowledged, not escalated; the next reminder is another timeout away.
    assert repaged["status"] == "ACKNOWLEDGED" and repaged["assigned_to"] == owner
    assert repaged["escalation_level"] == 0
    assert datetime.fromisoformat(repaged["ack_deadline"]) > deadline
    events = notification_events(lambda events: any(e["type"] == "INCIDENT_REPAGED" for e in events),
                                 "the re-page event")
    [event] = [e for e in events if e["type"] == "INCIDENT_REPAGED"]
    assert event["recipients"] == [owner] and "not started" in event["message"]


def test_past_the_last_level_every_emergency_doctor_on_duty_is_paged_loudly_until_one_takes_it(
        api, login_as, clock, escalated_once_at_most, notification_events):
    """The last step is as loud as an assignment: every emergency doctor on duty is paged (the
    event pages them all), the incident is unowned (API flag and time), it is paged again at the
    policy's interval, and the first to acknowledge owns it: the others' alarms stop."""
    doctors = api.on_duty("EMERGENCY_DOCTOR")
    only, other = doctors
    login_as(only)  # the other doctor on duty is not signed in yet: paged all the same
    incident = api.incident_of(api.post_alert(alert_type="CARDIAC_ARREST"))
    incident_id = incident["incident_id"]
    assert incident["unowned"] is False and incident["paged"] == [only]
    clock.advance(PAST_THE_DEADLINE)
    api.wait_until(incident_id, lambda i: i["escalation_level"] == 1, "level 1")
    clock.advance(PAST_THE_DEADLINE)
    last = api.wait_until(incident_id, lambda i: i["unowned"], "the last level")
    assert last["escalation_level"] == 1 and last["assigned_to"] == only
    assert last["unowned_since"] is not None and sorted(last["paged"]) == sorted(doctors)
    assert last["ack_deadline"] is not None  # the next page, at the policy's interval
    events = escalated_events(notification_events, incident_id, wanted=2)
    assert set(doctors) <= set(events[-1]["recipients"])
    assert events[-1]["data"]["reason"] == "LAST_RESORT" and set(events[-1]["data"]["paged"]) == set(doctors)
    assert events[-1]["data"]["unowned_since"] == last["unowned_since"]
    assert "every emergency doctor on duty is paged" in events[-1]["message"]

    # Nobody takes it: paged again, and still unowned since the same instant.
    clock.advance(PAST_THE_DEADLINE)
    again = api.wait_until(incident_id, lambda i: "REPAGED" in [h["action"] for h in i["history"]],
                           "the re-page")
    assert again["unowned_since"] == last["unowned_since"]

    def repages(events):
        return [e for e in events
                if e["incident_id"] == incident_id and e["data"]["reason"] == "UNOWNED_REPAGE"]
    [repage] = repages(notification_events(repages, "the re-page event"))
    assert repage["type"] == "INCIDENT_REPAGED" and set(repage["data"]["paged"]) == set(doctors)
    assert "has had no owner for 1 min" in repage["message"]

    # The other doctor signs in and acknowledges from the pop-up: theirs now, owned; the first's
    # alarm stops (an event that no longer pages them).
    token = login_as(other)
    taken = api.act(token, incident_id, "acknowledge")
    assert taken.status_code == 200, taken.text
    owned = taken.json()
    assert (owned["assigned_to"], owned["status"], owned["unowned"], owned["paged"]) == (
        other, "ACKNOWLEDGED", False, [])
    assert [h["action"] for h in api.get(incident_id)["history"]][-2:] == ["CLAIMED", "ACKNOWLEDGED"]

    def taken_events(events):
        return [e for e in events
                if e["incident_id"] == incident_id and e["data"]["reason"] == "TAKEN"]
    [stop] = taken_events(notification_events(taken_events, "the event that stops the others' alarms"))
    assert only in stop["recipients"] and stop["data"]["paged"] == []
    assert stop["data"]["unowned_since"] is None
    # Too late for the first: it is no longer theirs.
    assert api.act(login_as(only), incident_id, "acknowledge").status_code == 403
    an_escalation_pass_has_run(api, clock)
    assert api.get(incident_id)["status"] == "ACKNOWLEDGED"


def test_a_restarted_scanner_loses_no_deadline(alert_pipeline, api, login_as, clock):
    for doctor in api.on_duty("EMERGENCY_DOCTOR"):
        login_as(doctor)
    incident = api.incident_of(api.post_alert(alert_type="CARDIAC_ARREST"))
    worker = alert_pipeline["incidents"]
    worker.stop_worker()
    try:
        clock.advance(PAST_THE_DEADLINE)  # the deadline passes while no scanner runs
    finally:
        worker.start_worker()
    escalated = api.wait_until(incident["incident_id"], lambda i: i["escalation_level"] == 1,
                               "the escalation after the restart")
    assert escalated["assigned_to"] != incident["assigned_to"]


class StubOnCall:
    """The on-call answers a scanner needs: D02 is available, D01 and D02 supervise."""

    def available(self):
        return [{"employee_id": "D02", "name": "Dr. Elena Rossi", "role": "EMERGENCY_DOCTOR", "tier": 2}]

    def on_duty(self, role=None):
        return [{"employee_id": d, "role": "EMERGENCY_DOCTOR", "is_supervisor": True, "signed_in": True}
                for d in ("D01", "D02")]


def test_several_scanners_never_escalate_one_incident_twice(alert_pipeline, db, make_incident, clock):
    """Four scanners in this process race over twenty overdue incidents, and the service's own
    worker with them: each incident is escalated exactly once."""
    from incident_management.escalate_unacknowledged import escalate_unacknowledged

    ids = [make_incident(assigned_to="D01", assigned_ago="2 minutes") for _ in range(20)]
    with db.transaction() as cur:
        cur.execute("UPDATE incidents SET ack_deadline = %s WHERE incident_id = ANY(%s)",
                    (clock.now() - timedelta(seconds=1), ids))
    scanners = Database(db.url, maxconn=4)
    try:
        with ThreadPoolExecutor(4) as pool:
            acted = sum(pool.map(lambda _: escalate_unacknowledged(db=scanners, oncall=StubOnCall()),
                                 range(4)))
    finally:
        scanners.close()
    assert acted <= 20
    with db.transaction() as cur:
        cur.execute("""
            SELECT i.incident_id, i.escalation_level,
                   (SELECT count(*) FROM incident_history h
                     WHERE h.incident_id = i.incident_id AND h.action = 'ESCALATED') AS escalations
            FROM incidents i WHERE i.incident_id = ANY(%s)""", (ids,))
        rows = cur.fetchall()
    assert [(r["escalation_level"], r["escalations"]) for r in rows] == [(1, 1)] * 20


def test_supervisors_list_and_edit_the_policies_with_an_audit_row(api, db, login_as):
    d01, n02 = login_as("D01"), login_as("N02")
    url = api.url + "/api/v1/escalation-policies"
    listed = requests.get(url, headers=api.auth(n02), timeout=5)
    assert listed.status_code == 200
    policies = {p["severity"]: p for p in listed.json()["policies"]}
    assert list(policies) == ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
    assert policies["CRITICAL"] == {"severity": "CRITICAL", "ack_timeout_seconds": 60,
                                    "start_timeout_seconds": 600, "escalate_to_roles": ["EMERGENCY_DOCTOR"],
                                    "max_level": 3}
    assert policies["LOW"]["start_timeout_seconds"] is None

    assert requests.patch(url + "/HIGH", json={"ack_timeout_seconds": 90}, headers=api.auth(n02),
                          timeout=5).status_code == 403  # a nurse who does not supervise
    changed = requests.patch(url + "/HIGH", json={"ack_timeout_seconds": 90}, headers=api.auth(d01),
                             timeout=5)
    assert changed.status_code == 200 and changed.json()["ack_timeout_seconds"] == 90
    assert changed.json()["escalate_to_roles"] == ["EMERGENCY_DOCTOR"]  # untouched
    unknown = requests.put(url + "/HIGH", json={"ack_timeout_seconds": 90, "escalate_to_roles": ["WIZARD"],
                                                "max_level": 2},
                           headers=api.auth(d01), timeout=5)
    assert unknown.status_code == 422 and unknown.json()["field"] == "escalate_to_roles"
    replaced = requests.put(url + "/LOW", json={"ack_timeout_seconds": 900, "escalate_to_roles": ["NURSE"],
                                                "max_level": 2},
                            headers=api.auth(d01), timeout=5)
    assert replaced.status_code == 200 and replaced.json()["max_level"] == 2
    assert requests.patch(url + "/URGENT", json={}, headers=api.auth(d01), timeout=5).status_code == 404
    with db.transaction() as cur:
        cur.execute("SELECT severity, changed_by, before, after FROM escalation_policy_changes "
                    "ORDER BY change_id")
        changes = cur.fetchall()
    assert [(c["severity"], c["changed_by"], c["before"]["ack_timeout_seconds"],
             c["after"]["ack_timeout_seconds"]) for c in changes] == [("HIGH", "D01", 180, 90),
                                                                     ("LOW", "D01", 1800, 900)]


def test_policy_guard_rails_escalate_at_least_once_and_critical_waits_at_most_five_minutes(
        api, db, login_as):
    d01 = login_as("D01")
    url = api.url + "/api/v1/escalation-policies"
    for severity, body, field in [("CRITICAL", {"max_level": 0}, "max_level"),
                                  ("LOW", {"max_level": 0}, "max_level"),
                                  ("CRITICAL", {"ack_timeout_seconds": 301}, "ack_timeout_seconds"),
                                  ("CRITICAL", {"ack_timeout_seconds": 24 * 3600}, "ack_timeout_seconds")]:
        refused = requests.patch(f"{url}/{severity}", json=body, headers=api.auth(d01), timeout=5)
        assert refused.status_code == 422 and refused.json()["field"] == field, refused.text
    whole = {"ack_timeout_seconds": 600, "escalate_to_roles": ["EMERGENCY_DOCTOR"], "max_level": 2}
    assert requests.put(f"{url}/CRITICAL", json=whole, headers=api.auth(d01), timeout=5).status_code == 422
    assert requests.put(f"{url}/HIGH", json=whole, headers=api.auth(d01), timeout=5).status_code == 200
    assert requests.patch(f"{url}/CRITICAL", json={"ack_timeout_seconds": 300}, headers=api.auth(d01),
                          timeout=5).status_code == 200
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM escalation_policy_changes")
        assert cur.fetchone()["n"] == 2  # nothing refused was recorded
    # The database holds the same rules for whoever writes to it directly.
    for statement in ("UPDATE escalation_policies SET max_level = 0 WHERE severity = 'LOW'",
                      "UPDATE escalation_policies SET ack_timeout_seconds = 301 WHERE severity = 'CRITICAL'"):
        with pytest.raises(psycopg2.errors.CheckViolation), db.transaction() as cur:
            cur.execute(statement)
