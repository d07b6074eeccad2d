"""Care teams through the public API, with the test clock (issue 22): the patient's own nurse
first, then the ward's charge nurse, then the ward's pool, then the hospital's; a handover moves
a nurse's patients in one action and tells both; a nurse is told of a cardiac arrest a doctor
owns. The rota is pinned (2026-03-11 10:00): N01 and N02 on the day shift, D03 and D04 the
emergency doctors on duty; N03 and N04 are put on duty by an override where a test needs them."""
import datetime as dt

import pytest
import requests

pytestmark = pytest.mark.module_database
WARD = "Internal Medicine"  # P007's ward; P009 is added to it by the tests that need a second patient


def on_duty(db, clock, *employee_ids):
    """An override puts them on duty for the next hours (as a supervisor would enter it)."""
    now = clock.now()
    with db.transaction() as cur:
        for employee_id in employee_ids:
            cur.execute("""INSERT INTO oncall_overrides (employee_id, starts_at, ends_at, reason)
                           VALUES (%s, %s, %s, 'care-team tests')""",
                        (employee_id, now - dt.timedelta(hours=1), now + dt.timedelta(hours=6)))


def sign_out(db, employee_id):
    with db.transaction() as cur:
        cur.execute("UPDATE sessions SET revoked_at = expires_at - interval '1 hour' WHERE employee_id = %s",
                    (employee_id,))


def second_patient(db):
    with db.transaction() as cur:
        cur.execute("""INSERT INTO patients (patient_id, name, date_of_birth, room, ward)
                       VALUES ('P009', 'Ada Lind', '1950-01-01', '511', %s)""", (WARD,))


def handover(api, token, giver, receiver):
    return call(api, "POST", token, "/care-teams/handover",
                {"from_employee_id": giver, "to_employee_id": receiver})


def call(api, method, token, path, body=None):
    return requests.request(method, f"{api.url}/api/v1{path}", json=body, timeout=10,
                            headers=api.auth(token))


def assign(api, token, patient_id, nurse_id, doctor_id=None):
    answer = call(api, "PUT", token, f"/care-teams/patients/{patient_id}",
                  {"nurse_id": nurse_id, **({"doctor_id": doctor_id} if doctor_id else {})})
    assert answer.status_code == 200, answer.text
    return answer.json()


# Past the correlation window (consume_alerts: 5 minutes): a repeat of P007's SpO2 alarm within it
# joins the incident still open for it instead of being routed anew.
PAST_CORRELATION = 6 * 60


def alarm(api, patient_id="P007", alert_type="O2_SATURATION_LOW"):
    value = 85 if alert_type.startswith("O2") else None
    return api.incident_of(api.post_alert(patient_id, alert_type, value=value))


def test_the_assigned_nurse_first_then_the_charge_nurse_then_the_wards_pool(api, db, clock, login_as,
                                                                           make_incident):
    on_duty(db, clock, "N03", "N04")
    second_patient(db)
    n01 = login_as("N01")  # a supervisor (and the ward's charge nurse below)
    for nurse in ("N02", "N03", "N04"):
        login_as(nurse)
    # N02 is the busiest nurse, N04 the least busy.
    for _ in range(2):
        make_incident(severity="HIGH", patient_id="P001", alert_type="FALL_DETECTED", assigned_to="N02")
    make_incident(severity="HIGH", patient_id="P002", alert_type="FALL_DETECTED", assigned_to="N03")
    ward = assign(api, n01, "P007", "N02")
    assign(api, n01, "P009", "N03")
    assert [p["nurse"]["employee_id"] for p in ward["patients"] if p["patient_id"] == "P007"] == ["N02"]

    # N02's patient P007's SpO2 alarm goes to N02, though N03 and N04 are less busy.
    first = alarm(api)
    assert first["assigned_to"] == "N02"
    assert first["why"] == {"routed_as": "CARE_TEAM", "why": "the patient's nurse this shift"}
    assert first["assignments"][-1]["routed_as"] == "CARE_TEAM"

    # N02 signed out: the ward's charge nurse.
    named = call(api, "PUT", n01, f"/care-teams/wards/{WARD}/charge-nurse", {"employee_id": "N01"})
    assert named.status_code == 200 and named.json()["charge_nurse"]["employee_id"] == "N01"
    sign_out(db, "N02")
    clock.advance(PAST_CORRELATION)
    second = alarm(api)
    assert second["assigned_to"] == "N01" and second["why"]["routed_as"] == "CHARGE_NURSE"

    # No charge nurse there either: the ward's nurse pool (N03 works the ward), not N04, less busy.
    sign_out(db, "N01")
    clock.advance(PAST_CORRELATION)
    third = alarm(api)
    assert third["assigned_to"] == "N03" and third["why"]["routed_as"] == "WARD_POOL"


def test_a_ward_without_assignments_routes_as_before(api, login_as):
    for person in ("N02", "D03"):
        login_as(person)
    incident = alarm(api, patient_id="P001")  # Cardiology has no care team
    assert incident["assigned_to"] == "D03"  # an emergency doctor, as before care teams
    assert incident["why"]["routed_as"] == "ROLE_POOL" and incident["told"] == []


def test_handover_moves_the_patients_and_tells_both(api, db, clock, login_as, notification_events):
    on_duty(db, clock, "N04")
    n01 = login_as("N01")
    n02, n04 = login_as("N02"), login_as("N04")
    assign(api, n01, "P007", "N02")
    # Only a supervisor or the ward's charge nurse moves patients.
    refused = handover(api, n02, "N02", "N04")
    assert refused.status_code == 403, refused.text
    done = handover(api, n01, "N02", "N04")
    assert done.status_code == 200, done.text
    assert done.json()["patients"] == ["P007"] and sorted(done.json()["told"]) == ["N02", "N04"]

    incident = alarm(api)
    assert incident["assigned_to"] == "N04" and incident["why"]["routed_as"] == "CARE_TEAM"
    events = notification_events(lambda events: sum(e["type"] == "CARE_TEAM_HANDOVER" for e in events) >= 2,
                                 "both told of the handover")
    told = {e["recipients"][0]: e["message"] for e in events if e["type"] == "CARE_TEAM_HANDOVER"}
    assert set(told) == {"N02", "N04"} and "P007" in told["N04"]
    assert "Walter" not in " ".join(told.values())  # no patient name in a push

    history = call(api, "GET", n04, "/care-teams/patients/P007/history").json()["assignments"]
    assert [(h["employee_id"], h["end_reason"]) for h in history] == [("N04", None), ("N02", "HANDOVER")]


def test_a_nurses_cardiac_arrest_is_owned_by_a_doctor_and_she_is_told(api, login_as, notification_events):
    n01 = login_as("N01")
    login_as("N02")
    login_as("D03")
    assign(api, n01, "P007", "N02")
    incident = alarm(api, alert_type="CARDIAC_ARREST")
    assert incident["assigned_to"] == "D03" and incident["assignee"]["role"] == "EMERGENCY_DOCTOR"
    assert incident["why"]["routed_as"] == "ROLE_POOL"
    assert [(t["employee_id"], t["role"]) for t in incident["told"]] == [("N02", "NURSE")]
    assert "nurse" in incident["told"][0]["reason"]
    assigned = [e for e in notification_events(
        lambda events: any(e["incident_id"] == incident["incident_id"] for e in events), "the page")
        if e["incident_id"] == incident["incident_id"]]
    # Both hear of it; only the doctor is paged.
    assert assigned[0]["recipients"] == ["D03", "N02"] and assigned[0]["data"]["paged"] == ["D03"]


def test_care_team_rules_refuse_with_json_errors(api, db, clock, login_as):
    n02 = login_as("N02")
    n01 = login_as("N01")
    assert call(api, "PUT", n02, "/care-teams/patients/P007", {"nurse_id": "N02"}).status_code == 403
    not_on_duty = call(api, "PUT", n01, "/care-teams/patients/P007", {"nurse_id": "N05"})
    assert not_on_duty.status_code == 422 and not_on_duty.json()["field"] == "nurse_id"
    wrong_role = call(api, "PUT", n01, "/care-teams/patients/P007", {"nurse_id": "D03"})
    assert wrong_role.status_code == 422
    assert call(api, "PUT", n01, "/care-teams/patients/P999", {"nurse_id": "N02"}).status_code == 404
    assert call(api, "GET", n01, "/care-teams?ward=Nowhere").status_code == 404
    nobody = handover(api, n01, "N03", "N02")
    assert nobody.status_code == 409
    # Discharged: the assignment no longer counts, and its end is recorded.
    assign(api, n01, "P007", "N02")
    with db.transaction() as cur:
        cur.execute("UPDATE patients SET status = 'DISCHARGED' WHERE patient_id = 'P007'")
    ward = call(api, "GET", n01, f"/care-teams?ward={WARD}").json()
    assert ward["patients"] == []
    history = call(api, "GET", n01, "/care-teams/patients/P007/history").json()["assignments"]
    assert history[0]["end_reason"] == "DISCHARGE"


def test_the_patients_nurse_who_declines_hands_it_to_the_charge_nurse(api, db, clock, login_as,
                                                                      make_incident):
    on_duty(db, clock, "N04")
    n01 = login_as("N01")
    n02 = login_as("N02")
    login_as("N04")
    login_as("D03")
    # The charge nurse is busier than N04, a nurse who never saw the ward's patients.
    make_incident(severity="HIGH", patient_id="P001", alert_type="FALL_DETECTED", assigned_to="N01")
    assign(api, n01, "P007", "N02")
    named = call(api, "PUT", n01, f"/care-teams/wards/{WARD}/charge-nurse", {"employee_id": "N01"})
    assert named.status_code == 200, named.text
    incident = alarm(api)
    assert incident["assigned_to"] == "N02"

    declined = api.act(n02, incident["incident_id"], "decline", {"reason": "with a patient in 514"})
    assert declined.status_code == 200, declined.text
    moved = api.get(incident["incident_id"])
    assert (moved["assigned_to"], moved["assignment_reason"]) == ("N01", "DECLINE")
    assert moved["why"] == {"routed_as": "CHARGE_NURSE",
                            "why": f"the charge nurse of {WARD} (the patient's nurse has had it)"}
    assert [(a["employee_id"], a["routed_as"]) for a in moved["assignments"]] == [
        ("N02", "CARE_TEAM"), ("N01", "CHARGE_NURSE")]


def test_with_no_charge_nurse_a_decline_goes_to_the_wards_pool_not_a_stranger(api, db, clock, login_as,
                                                                           make_incident):
    on_duty(db, clock, "N03", "N04")
    second_patient(db)
    n01 = login_as("N01")
    n02 = login_as("N02")
    for person in ("N03", "N04", "D03"):
        login_as(person)
    # N03 nurses P009 on the ward and is busier than N04, who does not work the ward; N01 is
    # busier still (a supervisor, not the ward's charge nurse and nursing none of its patients).
    make_incident(severity="HIGH", patient_id="P001", alert_type="FALL_DETECTED", assigned_to="N03")
    for _ in range(2):
        make_incident(severity="HIGH", patient_id="P001", alert_type="FALL_DETECTED", assigned_to="N01")
    assign(api, n01, "P007", "N02")
    assign(api, n01, "P009", "N03")
    incident = alarm(api)
    assert incident["assigned_to"] == "N02"

    assert api.act(n02, incident["incident_id"], "decline").status_code == 200
    moved = api.get(incident["incident_id"])
    # A nurse of the ward: before N04 (less busy) and before the emergency doctor, the role that
    # comes first for low SpO2 where a ward has no care team.
    assert moved["assigned_to"] == "N03"
    assert moved["why"] == {"routed_as": "WARD_POOL",
                            "why": f"the least busy nurse working on {WARD} this shift"}


def test_escalation_keeps_its_roles_and_takes_the_wards_staff_first(api, db, clock, login_as, make_incident):
    on_duty(db, clock, "N03")
    second_patient(db)
    n01 = login_as("N01")
    for person in ("N02", "N03", "D03", "D04"):
        login_as(person)
    # D04 is P009's doctor on the ward and busier than D03, who does not work the ward.
    for _ in range(2):
        make_incident(severity="HIGH", patient_id="P001", alert_type="FALL_DETECTED", assigned_to="D04")
    assign(api, n01, "P007", "N02")
    assign(api, n01, "P009", "N03", doctor_id="D04")
    incident = alarm(api)
    assert incident["assigned_to"] == "N02"

    # N02 does not acknowledge in time (HIGH: 180 s): escalated as before care teams, to the
    # first of the alarm's roles (an emergency doctor), but of them the one who works the ward.
    clock.advance(181)
    escalated = api.wait_until(incident["incident_id"], lambda i: i["assigned_to"] != "N02", "the escalation")
    assert (escalated["assigned_to"], escalated["assignment_reason"]) == ("D04", "ESCALATION")
    assert escalated["why"] == {"routed_as": "WARD_POOL",
                                "why": f"the least busy emergency doctor working on {WARD} this shift"}
