"""Who may take an alarm, and alarms nobody owns.

A claim is for clinicians whose role the alert type is routed or escalated to; an alarm its
assignee has acknowledged or started is taken from them, while they are signed in, only by a
supervisor. An incident nobody could take is offered the moment a suitable clinician signs in or
marks themselves available: the retry interval here is a minute, so only that wake-up can assign it
within the two seconds these tests allow."""
from datetime import timedelta

import pytest
import requests

from tests.support import wait_for

pytestmark = pytest.mark.module_database

PASSWORD = "password123"  # the seed's demo password (0002_seed.sql)
WAKE_UP_SECONDS = 2


@pytest.fixture(scope="module")
def pipeline_settings():
    return {"incident_env": {"ASSIGNMENT_RETRY_SECONDS": "60"}}


def put_on_duty(db, clock, employee_id: str) -> None:
    """An override puts the clinician on duty for the hours around the pinned rota instant."""
    with db.transaction() as cur:
        cur.execute("""
            INSERT INTO oncall_overrides (employee_id, starts_at, ends_at, reason)
            VALUES (%s, %s, %s, 'test: on duty')""",
                    (employee_id, clock.now() - timedelta(hours=2), clock.now() + timedelta(hours=6)))


def test_a_claim_is_refused_outside_the_routing_and_allowed_inside(api, db, clock, login_as, make_incident):
    login_as("D01")
    incident_id = make_incident(alert_type="APNEA_DETECTED", assigned_to="D01")  # routed to ED, PULMONOLOGIST
    put_on_duty(db, clock, "E01")
    assert api.get(incident_id, token=login_as("E01"))["allowed_actions"] == []
    assert api.get(incident_id, token=login_as("S03"))["allowed_actions"] == ["claim"]
    engineer = api.act(login_as("E01"), incident_id, "claim")
    assert engineer.status_code == 403
    assert engineer.json()["message"] == (
        f"cannot claim incident {incident_id}: a CRITICAL Apnoea alarm never goes to a biomedical engineer, "
        f"override or not")
    assert engineer.json()["rule"] == "non_clinical_critical"
    assert engineer.json()["allowed_roles"] == ["EMERGENCY_DOCTOR", "PULMONOLOGIST"]
    # Below CRITICAL the role is what refuses a clinician who does not supervise.
    high = make_incident(severity="HIGH", alert_type="RESPIRATORY_RATE_HIGH", assigned_to="D01")
    refused = api.act(login_as("E01"), high, "claim", {"override_reason": "I am nearest"})
    assert refused.status_code == 403 and refused.json()["rule"] == "override_not_allowed"
    assert refused.json()["message"] == (
        f"cannot claim incident {high}: a biomedical engineer may not take this Tachypnoea alarm; "
        f"it is for: emergency doctor, pulmonologist")
    assert api.get(incident_id)["assigned_to"] == "D01"

    claimed = api.act(login_as("S03"), incident_id, "claim", {"note": "I am on the ward"})
    assert claimed.status_code == 200 and claimed.json()["assigned_to"] == "S03"
    assert claimed.json()["assignment_reason"] == "CLAIM"
    incident = api.get(incident_id)
    [claim] = [h for h in incident["history"] if h["action"] == "CLAIMED"]
    assert claim["actor_id"] == "S03" and claim["note"] == (
        "taken over from Dr. Michael Brooks (emergency doctor) (assigned); I am on the ward")
    assert [(a["employee_id"], a["reason"]) for a in incident["assignments"]] == [
        ("D01", "AUTO"), ("S03", "CLAIM")]


def test_an_acknowledged_alarm_of_a_signed_in_assignee_is_taken_only_by_a_supervisor(
        api, db, clock, login_as, make_incident, notification_events):
    assignee, supervisor = api.on_duty("EMERGENCY_DOCTOR")  # emergency doctors supervise
    login_as(assignee)
    incident_id = make_incident(alert_type="APNEA_DETECTED", assigned_to=assignee, status="ACKNOWLEDGED")
    assert "claim" not in api.get(incident_id, token=login_as("S03"))["allowed_actions"]
    assert "claim" in api.get(incident_id, token=login_as(supervisor))["allowed_actions"]
    refused = api.act(login_as("S03"), incident_id, "claim")
    with db.transaction() as cur:
        cur.execute("SELECT name FROM employees WHERE employee_id = %s", (assignee,))
        name = cur.fetchone()["name"]
    assert refused.status_code == 403 and refused.json()["message"] == (
        f"cannot claim incident {incident_id}: {name} (emergency doctor) has acknowledged it and is signed "
        f"in; only a supervisor may take it away from them (reassign)")
    assert refused.json()["rule"] == "taken_on"
    taken = api.act(login_as(supervisor), incident_id, "claim")
    assert taken.status_code == 200 and taken.json()["assigned_to"] == supervisor
    [claim] = [h for h in api.get(incident_id)["history"] if h["action"] == "CLAIMED"]
    assert claim["note"].startswith("taken over from ")
    assert claim["note"].endswith("(emergency doctor) (acknowledged)")
    [event] = [e for e in notification_events(lambda es: any(e["incident_id"] == incident_id for e in es))
               if e["incident_id"] == incident_id]
    # The one it was taken from hears who took it, in words; nobody is paged by a self-assignment.
    assert event["recipients"] == [supervisor, assignee]
    assert event["data"]["reason"] == "TAKEN_BY_SUPERVISOR" and event["data"]["paged"] == []
    assert event["data"]["previous_assignee"] == assignee and event["data"]["actor_id"] == supervisor
    assert ", a supervisor, took over " in event["message"] and "EMERGENCY_DOCTOR" not in event["message"]


def test_a_nurse_is_offered_no_claim_of_a_critical_cardiac_arrest_and_her_claim_is_refused(
        api, db, clock, login_as, make_incident):
    doctor, colleague = api.on_duty("EMERGENCY_DOCTOR")
    holder = login_as(doctor)
    incident_id = make_incident(alert_type="CARDIAC_ARREST", assigned_to=doctor)
    put_on_duty(db, clock, "N02")  # on duty and signed in: only the alarm's routing refuses her
    nurse = login_as("N02")
    seen = api.get(incident_id, token=nurse)
    assert (seen["severity"], seen["alert_type"]) == ("CRITICAL", "CARDIAC_ARREST")
    assert seen["allowed_actions"] == []
    [row] = [i for i in api.list(nurse, status="ASSIGNED", limit=200).json()["incidents"]
             if i["incident_id"] == incident_id]
    assert row["allowed_actions"] == []  # the list says the same as the incident
    claim = api.act(nurse, incident_id, "claim")
    assert claim.status_code == 403 and claim.json()["rule"] == "override_not_allowed"
    # Whatever she was not offered is refused.
    bodies = {"reassign": {"employee_id": colleague}, "resolve": {"resolution_notes": "done"}}
    for action in ("acknowledge", "decline", "start", "resolve", "reassign"):
        assert api.act(nurse, incident_id, action, bodies.get(action)).status_code in (403, 409), action
    assert api.note(nurse, incident_id, "on my way").status_code == 403
    # The doctors who may own it are offered what they may do; a service, nothing.
    assert api.get(incident_id, token=holder)["allowed_actions"] == [
        "acknowledge", "decline", "reassign", "note"]
    assert api.get(incident_id, token=login_as(colleague))["allowed_actions"] == ["claim", "reassign"]
    assert api.get(incident_id)["allowed_actions"] == []
    assert api.get(incident_id)["assigned_to"] == doctor


def test_a_supervisor_claims_outside_the_routed_roles_only_with_a_reason(
        api, db, clock, login_as, make_incident):
    """N01, the charge nurse, supervises: she may take a cardiac arrest (routed to emergency doctors
    and cardiologists) only by saying why, and that is audited."""
    put_on_duty(db, clock, "N01")
    n01 = login_as("N01")
    incident_id = make_incident(alert_type="CARDIAC_ARREST")  # OPEN: nobody could take it
    refused = api.act(n01, incident_id, "claim")
    assert refused.status_code == 403 and refused.json()["rule"] == "role_not_routed"
    assert "say why in override_reason" in refused.json()["message"]
    taken = api.act(n01, incident_id, "claim", {"override_reason": "no doctor on the ward; starting CPR"})
    assert taken.status_code == 200 and taken.json()["assigned_to"] == "N01"
    incident = api.get(incident_id)
    [claim] = [h for h in incident["history"] if h["action"] == "CLAIMED"]
    assert claim["note"] == ("taken while nobody held it; override: a nurse is not among the routed roles; "
                             "reason: no doctor on the ward; starting CPR")
    assert incident["assignments"][-1]["override_reason"] == "no doctor on the ward; starting CPR"


def test_reassign_obeys_the_ownership_rules_and_an_override_is_audited(
        api, db, clock, login_as, make_incident, notification_events):
    """The red team's findings: charge nurse N01 gave an acknowledged CRITICAL cardiac arrest to
    engineer E01, and a CRITICAL apnoea to a signed-out psychiatrist. Both are refused now."""
    doctor = api.on_duty("EMERGENCY_DOCTOR")[0]
    login_as(doctor)
    n01 = login_as("N01")
    put_on_duty(db, clock, "E01")
    login_as("E01")
    arrest = make_incident(alert_type="CARDIAC_ARREST", assigned_to=doctor, status="ACKNOWLEDGED")
    for body in ({"employee_id": "E01"}, {"employee_id": "E01", "override_reason": "he is in the room"}):
        to_engineer = api.act(n01, arrest, "reassign", body)
        assert to_engineer.status_code == 422, to_engineer.text
        assert to_engineer.json()["rule"] == "non_clinical_critical"
        assert to_engineer.json()["field"] == "employee_id"
        assert to_engineer.json()["message"] == (
            f"cannot reassign incident {arrest}: a CRITICAL Cardiac arrest alarm never goes to a biomedical "
            f"engineer, override or not")
    apnoea = make_incident(alert_type="APNEA_DETECTED", assigned_to=doctor)
    signed_out = api.act(n01, apnoea, "reassign",
                         {"employee_id": "S10", "override_reason": "psychiatric ward"})
    assert signed_out.status_code == 422 and signed_out.json()["rule"] == "not_signed_in"
    off_duty = sorted({"D01", "D02", "D03", "D04"} - set(api.on_duty("EMERGENCY_DOCTOR")))[0]
    login_as(off_duty)
    assert api.act(n01, apnoea, "reassign", {"employee_id": off_duty}).json()["rule"] == "not_on_duty"
    unknown = api.act(n01, apnoea, "reassign", {"employee_id": "X99"})
    assert unknown.status_code == 422 and unknown.json()["rule"] == "unknown_employee"

    # The reassign list says the same before anyone tries.
    owners = requests.get(f"{api.url}/api/v1/incidents/{arrest}/owners", headers=api.auth(n01), timeout=5)
    assert owners.status_code == 200, owners.text
    by_id = {o["employee_id"]: o for o in owners.json()["owners"]}
    assert doctor not in by_id  # the assignee
    assert by_id["E01"]["may_own"] is False and by_id["E01"]["refusal"]["rule"] == "non_clinical_critical"
    assert by_id["S10"]["refusal"]["rule"] == "not_signed_in"
    assert by_id["N01"] == {**by_id["N01"], "may_own": False, "needs_override": True, "refusal": None}
    assert owners.json()["owners"][0]["may_own"] or not any(o["may_own"] for o in owners.json()["owners"])

    login_as("S10")  # the psychiatrist signs in: still not a role an apnoea goes to
    no_reason = api.act(n01, apnoea, "reassign", {"employee_id": "S10"})
    assert no_reason.status_code == 422 and no_reason.json()["field"] == "override_reason"
    assert no_reason.json()["allowed_roles"] == ["EMERGENCY_DOCTOR", "PULMONOLOGIST"]
    overridden = api.act(n01, apnoea, "reassign", {
        "employee_id": "S10", "override_reason": "only doctor on PSY-7", "note": "call me back"})
    assert overridden.status_code == 200 and overridden.json()["assigned_to"] == "S10"
    assert overridden.json()["assignment_reason"] == "REASSIGN" and overridden.json()["paged"] == ["S10"]
    incident = api.get(apnoea)
    [entry] = [h for h in incident["history"] if h["action"] == "REASSIGNED"]
    assert entry["actor_id"] == "N01" and entry["note"] == (
        "call me back; override: a psychiatrist is not among the routed roles; reason: only doctor on PSY-7")
    assert (incident["assignments"][-1]["override_reason"], incident["assignments"][-1]["assigned_by"]) == (
        "only doctor on PSY-7", "N01")
    [event] = [e for e in notification_events(lambda es: any(e["incident_id"] == apnoea for e in es))
               if e["incident_id"] == apnoea]
    assert event["data"]["reason"] == "REASSIGNED" and event["data"]["paged"] == ["S10"]
    assert event["message"] == ("Maria Gonzalez (nurse) reassigned CRITICAL: APNEA_DETECTED, room 312 to "
                                "Dr. Daniel Weiss (psychiatrist).")
    # A clinician of a routed role, on duty and signed in, needs no reason.
    login_as("S03")
    owners = requests.get(f"{api.url}/api/v1/incidents/{apnoea}/owners", headers=api.auth(n01),
                          timeout=5).json()
    # Routed roles in order (emergency doctors, then pulmonologists); S10 has it now.
    assert [o["employee_id"] for o in owners["owners"] if o["may_own"]] == [doctor, "S03"]
    assert api.act(n01, apnoea, "reassign", {"employee_id": "S03"}).status_code == 200
    assert api.act(n01, arrest, "reassign", {"employee_id": "S03"}).json()["rule"] == "role_not_routed"


def test_decline_moves_the_alarm_to_the_next_candidate_and_the_last_one_cannot(
        api, login_as, make_incident, notification_events):
    first, second = api.on_duty("EMERGENCY_DOCTOR")
    tokens = {doctor: login_as(doctor) for doctor in (first, second)}
    incident = api.incident_of(api.post_alert("P002", "CARDIAC_ARREST"))
    holder = incident["assigned_to"]
    other = second if holder == first else first
    # Each is offered what they may do (emergency doctors supervise): the holder its own steps,
    # the other doctor a claim.
    assert api.get(incident["incident_id"], token=tokens[holder])["allowed_actions"] == [
        "acknowledge", "decline", "reassign", "note"]
    assert api.get(incident["incident_id"], token=tokens[other])["allowed_actions"] == ["claim", "reassign"]
    assert api.act(tokens[other], incident["incident_id"], "decline").status_code == 403  # not theirs

    declined = api.act(tokens[holder], incident["incident_id"], "decline",
                       {"reason": "In theatre, scrubbed in"})
    assert declined.status_code == 200, declined.text
    moved = declined.json()
    assert (moved["assigned_to"], moved["status"]) == (other, "REASSIGNED")
    assert moved["assignment_reason"] == "DECLINE"
    assert moved["paged"] == [other] and moved["ack_deadline"] is not None
    entry = api.get(incident["incident_id"])["history"][-1]
    assert (entry["action"], entry["actor_id"], entry["note"]) == (
        "DECLINED", holder, "declined; In theatre, scrubbed in")

    def declined_events(events):
        return [e for e in events
                if e["incident_id"] == incident["incident_id"] and e["data"]["reason"] == "DECLINED"]
    # The next doctor is paged through the pipeline (the notifications queue) within seconds.
    [event] = declined_events(notification_events(declined_events, "the decline's page", timeout=2))
    assert event["type"] == "INCIDENT_REASSIGNED" and event["recipients"] == [other]
    assert event["data"]["paged"] == [other] and event["data"]["previous_assignee"] == holder
    assert event["message"].endswith(
        "could not take CRITICAL: Cardiac arrest, room ICU-2 (In theatre, scrubbed in): "
        "it is assigned to you.")

    # Nobody else of the routing order is available: the last one must acknowledge or hand over.
    last = api.act(tokens[other], incident["incident_id"], "decline")
    assert last.status_code == 409 and last.json()["rule"] == "last_available"
    assert last.json()["message"] == ("Nobody else is available to take it: acknowledge it, or ask a "
                                      "supervisor to hand it over.")
    assert api.get(incident["incident_id"])["assigned_to"] == other
    assert api.act(tokens[other], incident["incident_id"], "acknowledge").status_code == 200
    after = api.act(tokens[other], incident["incident_id"], "decline")
    assert after.status_code == 409 and after.json()["incident_status"] == "ACKNOWLEDGED"


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
