"""Care teams: which nurse (and doctor) cares for which patient this shift, and each ward's
charge nurse; routing.py offers an alarm to the patient's own nurse first.

Why here, in incident management: patients are alert ingestion's catalogue and the rota is the
on-call service's, but the one reader that matters is routing, which must read the care team of
every alarm of a batch inside the transaction that assigns them (one query per batch, no HTTP
call per alarm). Owning the assignments here keeps that read local; the rota is asked (on-call
service, before the transaction) only when someone is named, to check they are on duty and to
learn when their shift ends, which is when the assignment ends. The patient's ward is read from
the shared catalogue table, never copied: an assignment whose patient moved ward or was
discharged stops counting at once (CURRENT), and its end is recorded at the next read.

Who may assign: a supervisor, or the ward's charge nurse (named by a supervisor for a shift,
from the nurses on duty by the rota). History is kept: rows are ended, never deleted.
"""
import datetime

from healthguard import clock
from healthguard.care_team_terms import CURRENT, CURRENT_CHARGE, CURRENT_PERIOD
from healthguard.errors import ApiError
from healthguard.incident_events import IncidentEvent, person, role_in_words
from healthguard.outbox import enqueue

from .routing import CareTeam

DOCTOR_ROLES_EXCLUDED = ("NURSE", "BIOMEDICAL_ENGINEER")



def care_teams_of(cur, *, patient_ids, at: datetime.datetime) -> dict[str, CareTeam]:
    """patient_id -> their care team now, for the patients whose ward has one (an assignment or
    a charge nurse); one query for a whole batch of alarms. A device's own alarm has no patient
    (None): no care team, it routes by role."""
    # Each ward's staff is grouped once (a hash aggregate) and each patient's carers are looked
    # up by patient (an index, per patient of the batch): a subquery per patient over the ward's
    # staff cost a batch of 100 alarms on wards of 2,000 assigned patients 3 x 100 x 2,000 row
    # visits. The LATERAL joins fix the plan whatever the table's statistics say: a shift's
    # assignments arrive within minutes and ANALYZE follows later, and with the statistics of an
    # empty table the planner looped over 2,000 assignments x the batch (48 ms a batch, not 2).
    # The assignments' patient check (care_team_terms.ON_WARD) is made against the batch's own
    # patients; the ward's staff are whoever is assigned on the ward this shift, their patient
    # still there or not (a nurse whose patient was discharged an hour ago still works there).
    cur.execute(f"""
        WITH batch AS (SELECT p.patient_id, p.ward, p.status FROM patients p
                       WHERE p.patient_id = ANY(%(ids)s)),
        staff AS (
            SELECT c.ward, c.patient_id, c.care_role, c.employee_id
            FROM (SELECT DISTINCT ward FROM batch) w
            CROSS JOIN LATERAL (SELECT c.* FROM care_team_assignments c
                                WHERE c.ward = w.ward AND {CURRENT_PERIOD}) c),
        charge AS (
            SELECT DISTINCT ON (w.ward) w.ward, w.employee_id FROM ward_charge_nurses w
            WHERE w.ward IN (SELECT ward FROM batch) AND {CURRENT_CHARGE}
            ORDER BY w.ward, w.starts_at DESC),
        carers AS (
            SELECT b.patient_id, m.nurse, m.doctor
            FROM batch b CROSS JOIN LATERAL (
                SELECT min(c.employee_id) FILTER (WHERE c.care_role = 'NURSE') AS nurse,
                       min(c.employee_id) FILTER (WHERE c.care_role = 'DOCTOR') AS doctor
                FROM care_team_assignments c
                WHERE c.patient_id = b.patient_id AND c.ward = b.ward AND {CURRENT_PERIOD}) m
            WHERE b.status = 'ADMITTED'),
        ward_staff AS (
            SELECT u.ward, array_agg(DISTINCT u.employee_id) AS ward_staff
            FROM (SELECT ward, employee_id FROM staff UNION ALL SELECT ward, employee_id FROM charge) u
            GROUP BY u.ward)
        SELECT b.patient_id, b.ward, m.nurse, m.doctor, ch.employee_id AS charge_nurse, ws.ward_staff
        FROM batch b
        LEFT JOIN carers m ON m.patient_id = b.patient_id
        LEFT JOIN charge ch ON ch.ward = b.ward
        LEFT JOIN ward_staff ws ON ws.ward = b.ward
    """, {"ids": sorted({p for p in patient_ids if p}), "at": at})  # noqa: S608 (constant conditions)
    return {row["patient_id"]: CareTeam(patient_id=row["patient_id"], ward=row["ward"], nurse=row["nurse"],
                                        doctor=row["doctor"], charge_nurse=row["charge_nurse"],
                                        ward_staff=frozenset(row["ward_staff"]))
            for row in cur.fetchall() if row["ward_staff"]}


# --- Reading a ward ------------------------------------------------------------------------------

def _record_departures(cur, *, ward: str, at: datetime.datetime) -> None:
    """Assignments whose patient left the ward or was discharged: ended, with the reason."""
    cur.execute("""
        UPDATE care_team_assignments c
        SET ended_at = %(at)s,
            end_reason = CASE WHEN p.status = 'DISCHARGED' THEN 'DISCHARGE' ELSE 'TRANSFER' END
        FROM patients p
        WHERE p.patient_id = c.patient_id AND c.ward = %(ward)s AND c.ended_at IS NULL AND c.ends_at > %(at)s
          AND (p.ward <> c.ward OR p.status <> 'ADMITTED')
    """, {"at": at, "ward": ward})


def _charge_nurse(cur, *, ward: str, at: datetime.datetime) -> dict | None:
    cur.execute(f"""
        SELECT w.charge_id, w.employee_id, e.name, w.starts_at, w.ends_at
        FROM ward_charge_nurses w JOIN employees e ON e.employee_id = w.employee_id
        WHERE w.ward = %(ward)s AND {CURRENT_CHARGE}
        ORDER BY w.starts_at DESC LIMIT 1
    """, {"ward": ward, "at": at})  # noqa: S608
    return cur.fetchone()


def ward_care_team(cur, *, ward: str | None, on_duty: dict[str, dict]) -> dict:
    """The ward now (by default the first by name): its patients with their nurse and doctor, its
    charge nurse, and who on duty may be given a patient (the care-team page)."""
    at = clock.now()
    if ward is None:
        cur.execute("SELECT min(ward) AS ward FROM patients WHERE status = 'ADMITTED'")
        ward = cur.fetchone()["ward"] or ""
    _record_departures(cur, ward=ward, at=at)
    cur.execute("SELECT patient_id, name, room FROM patients WHERE ward = %s AND status = 'ADMITTED' "
                "ORDER BY room, patient_id", (ward,))
    patients = cur.fetchall()
    if not patients and not _ward_exists(cur, ward):
        raise ApiError(404, f"no ward {ward!r}")
    cur.execute(f"""
        SELECT c.care_assignment_id, c.patient_id, c.care_role, c.employee_id, e.name, e.role,
               c.starts_at, c.ends_at, c.assigned_by
        FROM care_team_assignments c JOIN employees e ON e.employee_id = c.employee_id
        WHERE c.ward = %(ward)s AND {CURRENT}
    """, {"ward": ward, "at": at})  # noqa: S608
    current = {(row["patient_id"], row["care_role"]): _iso(row) for row in cur.fetchall()}
    charge = _charge_nurse(cur, ward=ward, at=at)
    staff = sorted(({"employee_id": c["employee_id"], "name": c.get("name"), "role": c["role"],
                     "signed_in": bool(c.get("signed_in"))}
                    for c in on_duty.values() if c["role"] not in ("BIOMEDICAL_ENGINEER",)),
                   key=lambda c: (c["role"] != "NURSE", c["role"], c["employee_id"]))
    cur.execute("SELECT DISTINCT ward FROM patients WHERE status = 'ADMITTED' ORDER BY ward")
    return {"ward": ward, "wards": [row["ward"] for row in cur.fetchall()],
            "charge_nurse": _iso(charge),
            "patients": [{**p, "nurse": current.get((p["patient_id"], "NURSE")),
                          "doctor": current.get((p["patient_id"], "DOCTOR"))} for p in patients],
            "staff_on_duty": staff}


def _ward_exists(cur, ward: str) -> bool:
    cur.execute("SELECT EXISTS (SELECT 1 FROM patients WHERE ward = %s) AS found", (ward,))
    return cur.fetchone()["found"]


def _iso(row: dict | None) -> dict | None:
    if row is None:
        return None
    return {k: v.isoformat() if isinstance(v, datetime.datetime) else v for k, v in row.items()}


def patient_history(cur, *, patient_id: str) -> list[dict]:
    """Who cared for the patient, when: every assignment, newest first."""
    cur.execute("""
        SELECT c.care_assignment_id, c.patient_id, c.ward, c.care_role, c.employee_id, e.name,
               c.assigned_by, c.starts_at, c.ends_at, c.ended_at, c.end_reason
        FROM care_team_assignments c JOIN employees e ON e.employee_id = c.employee_id
        WHERE c.patient_id = %s ORDER BY c.starts_at DESC, c.care_assignment_id DESC
    """, (patient_id,))
    return [_iso(row) for row in cur.fetchall()]


# --- Changing it ---------------------------------------------------------------------------------

def _may_assign(cur, *, clinician, ward: str, at: datetime.datetime) -> None:
    if clinician.is_supervisor:
        return
    charge = _charge_nurse(cur, ward=ward, at=at)
    if charge is None or charge["employee_id"] != clinician.employee_id:
        raise ApiError(403, f"only a supervisor or the charge nurse of {ward} may assign its patients")


def _carer(cur, employee_id: str, *, care_role: str, on_duty: dict[str, dict],
           field: str) -> tuple[dict, dict]:
    """The employee to name, and their duty (shift) from the rota: on duty now, of the role."""
    cur.execute("SELECT employee_id, name, role FROM employees WHERE employee_id = %s", (employee_id,))
    employee = cur.fetchone()
    if employee is None:
        raise ApiError(422, f"unknown employee_id {employee_id!r}", field=field)
    is_nurse = employee["role"] == "NURSE"
    not_a_doctor = care_role == "DOCTOR" and employee["role"] in DOCTOR_ROLES_EXCLUDED
    if (care_role == "NURSE") != is_nurse or not_a_doctor:
        raise ApiError(422, f"{person(employee)} ({role_in_words(employee['role'])}) cannot be a patient's "
                            f"{care_role.lower()}", field=field)
    duty = on_duty.get(employee_id)
    if duty is None:
        raise ApiError(422, f"{person(employee)} is not on duty now (rota)", field=field)
    return employee, duty


def _shift_end(duty: dict) -> datetime.datetime:
    return datetime.datetime.fromisoformat(duty["shift"]["ends_at"])


def _lock_patient(cur, patient_id: str) -> dict:
    cur.execute("SELECT patient_id, name, ward, status FROM patients WHERE patient_id = %s FOR UPDATE",
                (patient_id,))
    patient = cur.fetchone()
    if patient is None:
        raise ApiError(404, f"no patient {patient_id}")
    if patient["status"] != "ADMITTED":
        raise ApiError(409, f"patient {patient_id} is not admitted")
    return patient


def _end_current(cur, *, patient_id: str, care_role: str, at: datetime.datetime, reason: str) -> list[dict]:
    cur.execute(f"""
        UPDATE care_team_assignments c SET ended_at = %(at)s, end_reason = %(reason)s
        WHERE c.patient_id = %(patient_id)s AND c.care_role = %(role)s AND {CURRENT}
        RETURNING c.employee_id
    """, {"at": at, "reason": reason, "patient_id": patient_id, "role": care_role})  # noqa: S608
    return cur.fetchall()


def _start(cur, *, patient: dict, employee_id: str, care_role: str, by: str, at, ends_at) -> None:
    cur.execute("""
        INSERT INTO care_team_assignments (patient_id, ward, employee_id, care_role, assigned_by,
                                           starts_at, ends_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s)
    """, (patient["patient_id"], patient["ward"], employee_id, care_role, by, at, ends_at))


def assign_patient(cur, *, patient_id: str, nurse_id: str, doctor_id: str | None, clinician,
                   on_duty: dict[str, dict]) -> dict:
    """Give the patient a nurse (and a doctor, or none) until the end of that carer's shift; the
    assignment it replaces ends (REPLACED), kept in the history."""
    at = clock.now()
    patient = _lock_patient(cur, patient_id)
    _may_assign(cur, clinician=clinician, ward=patient["ward"], at=at)
    chosen = [("NURSE", nurse_id, "nurse_id")] + ([("DOCTOR", doctor_id, "doctor_id")] if doctor_id else [])
    for care_role, employee_id, field in chosen:
        _, duty = _carer(cur, employee_id, care_role=care_role, on_duty=on_duty, field=field)
        _end_current(cur, patient_id=patient_id, care_role=care_role, at=at, reason="REPLACED")
        _start(cur, patient=patient, employee_id=employee_id, care_role=care_role, by=clinician.employee_id,
               at=at, ends_at=_shift_end(duty))
    return ward_care_team(cur, ward=patient["ward"], on_duty=on_duty)


def hand_over_patients(cur, *, from_id: str, to_id: str, clinician, on_duty: dict[str, dict]) -> dict:
    """"Take over N02's patients": every current assignment of `from_id` moves to `to_id` in one
    transaction (HANDOVER), and both are told (a notification each)."""
    at = clock.now()
    if from_id == to_id:
        raise ApiError(422, "a handover needs two different people", field="to_employee_id")
    cur.execute(f"""
        SELECT c.care_assignment_id, c.patient_id, c.care_role, c.ward FROM care_team_assignments c
        WHERE c.employee_id = %(from)s AND {CURRENT} ORDER BY c.patient_id FOR UPDATE
    """, {"from": from_id, "at": at})  # noqa: S608
    moving = cur.fetchall()
    if not moving:
        raise ApiError(409, f"{from_id} cares for no patient now", field="from_employee_id")
    for ward in {m["ward"] for m in moving}:
        _may_assign(cur, clinician=clinician, ward=ward, at=at)
    roles = {m["care_role"] for m in moving}
    receiver, duty = _carer(cur, to_id, care_role=roles.pop(), on_duty=on_duty, field="to_employee_id")
    if roles:
        raise ApiError(422, f"{from_id} is both a nurse and a doctor of patients; hand over one by one")
    giver = _employee(cur, from_id)
    cur.execute("""
        UPDATE care_team_assignments SET ended_at = %s, end_reason = 'HANDOVER'
        WHERE care_assignment_id = ANY(%s)
    """, (at, [m["care_assignment_id"] for m in moving]))
    cur.execute("""
        INSERT INTO care_team_assignments (patient_id, ward, employee_id, care_role, assigned_by,
                                           starts_at, ends_at)
        SELECT patient_id, ward, %s, care_role, %s, %s, %s FROM care_team_assignments
        WHERE care_assignment_id = ANY(%s)
        RETURNING care_assignment_id
    """, (to_id, clinician.employee_id, at, _shift_end(duty), [m["care_assignment_id"] for m in moving]))
    first = min(row["care_assignment_id"] for row in cur.fetchall())
    patients = [m["patient_id"] for m in moving]
    # Room numbers and ids only: a patient's name never leaves the hospital network in a push.
    words = ", ".join(patients)
    events = []
    for recipient, message in (
            (to_id, f"You now care for {len(patients)} patient(s) of {person(giver)}: {words}."),
            (from_id, f"{person(receiver)} took over your {len(patients)} patient(s): {words}.")):
        event_id = f"care-handover-{first}-{recipient}"
        events.append(IncidentEvent(
            event_id=event_id, type="CARE_TEAM_HANDOVER", recipients=[recipient], incident_id=None,
            title="Patients handed over", message=message, severity=None,
            data={"from": from_id, "to": to_id, "patients": patients}, occurred_at=at.isoformat()))
    enqueue(cur, [event.outbox_row() for event in events])
    return {"from_employee_id": from_id, "to_employee_id": to_id, "patients": patients,
            "told": [to_id, from_id]}


def _employee(cur, employee_id: str) -> dict:
    cur.execute("SELECT employee_id, name, role FROM employees WHERE employee_id = %s", (employee_id,))
    return cur.fetchone() or {"employee_id": employee_id}


def name_charge_nurse(cur, *, ward: str, employee_id: str, clinician, on_duty: dict[str, dict]) -> dict:
    """A supervisor names the ward's charge nurse for their shift (a nurse on duty by the rota);
    the one before steps down."""
    at = clock.now()
    if not clinician.is_supervisor:
        raise ApiError(403, "only a supervisor names a ward's charge nurse")
    if not _ward_exists(cur, ward):
        raise ApiError(404, f"no ward {ward!r}")
    _, duty = _carer(cur, employee_id, care_role="NURSE", on_duty=on_duty, field="employee_id")
    cur.execute("SELECT pg_advisory_xact_lock(hashtext('ward-charge:' || %s))", (ward,))
    cur.execute(f"""
        UPDATE ward_charge_nurses w SET ended_at = %(at)s WHERE w.ward = %(ward)s AND {CURRENT_CHARGE}
    """, {"at": at, "ward": ward})  # noqa: S608
    cur.execute("""
        INSERT INTO ward_charge_nurses (ward, employee_id, assigned_by, starts_at, ends_at)
        VALUES (%s, %s, %s, %s, %s)
    """, (ward, employee_id, clinician.employee_id, at, _shift_end(duty)))
    return ward_care_team(cur, ward=ward, on_duty=on_duty)
