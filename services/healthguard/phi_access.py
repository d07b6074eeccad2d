"""The PHI access log: who read which patient's identifying data, when, from where and why.

Every route whose answer carries patient-identifying data (names, ages, rooms, readings, patient
ids) calls `record(cur, patient_ids)` with the patients of its answer, inside the transaction that
read them: one INSERT for the whole answer (a list of 50 incidents is one statement, not 50), no
transaction of its own. The log is append-only for the services' database role (migration 0020:
INSERT and SELECT only), hash-chained by healthguard.audit, and read by privacy officers only.

Purpose. A clinician reads for "treatment" unless they say otherwise. To read a patient they are
not caring for, they break the glass: the request carries

    X-Access-Purpose: break-glass
    X-Access-Reason: <why, typed by the clinician; 3 to 500 characters>

and the reason is kept with the record. With PHI_BREAK_GLASS_REQUIRED=1, a single patient's record
(an incident's or an alert's detail) read by a clinician who is not caring for that patient
(`cares_for` below) without the break-glass headers is refused with 403, naming the headers.
Devices and services always read for treatment: the device for its own beds, the service for a
clinician it acts for.
"""
from flask import g, has_request_context, request

from . import clock
from .addresses import client_address
from .context import settings
from .errors import ApiError

PURPOSE_HEADER = "X-Access-Purpose"
REASON_HEADER = "X-Access-Reason"
TREATMENT = "treatment"
BREAK_GLASS = "break-glass"
PURPOSES = (TREATMENT, BREAK_GLASS)
REASON_LENGTH = (3, 500)

# A read's transaction wrote nothing before the log did, so its commit used to cost nothing; with
# the entry it would wait for the WAL to reach the disk, which measured +13 ms a request on this
# shared machine (the insert itself is well under a millisecond). The read's commit does not wait
# (synchronous_commit off for this transaction only, sent with the insert: no extra round trip):
# the entry is durable a few hundred milliseconds later, and only a crash of PostgreSQL itself in
# that window loses it (never half of it; the WAL stays consistent). Only for read routes: a
# transaction that changed anything else must not call record() before its commit.
INSERT_ACCESS = """
    SET LOCAL synchronous_commit = off;
    INSERT INTO phi_access_log (accessed_at, patient_id, employee_id, device_id, accessor_kind, route,
                                address, purpose, reason)
    SELECT %(at)s, patient_id, %(employee_id)s, %(device_id)s, %(kind)s, %(route)s, %(address)s,
           %(purpose)s, %(reason)s
    FROM unnest(%(patients)s::text[]) AS p(patient_id)
"""


def declared_purpose() -> tuple[str, str | None]:
    """The purpose the request declares (treatment when it declares none) and its reason.
    400 for an unknown purpose, or break-glass without a reason."""
    purpose = request.headers.get(PURPOSE_HEADER, "").strip().lower() or TREATMENT
    if purpose not in PURPOSES:
        raise ApiError(400, f"{PURPOSE_HEADER} must be one of: {', '.join(PURPOSES)}", field=PURPOSE_HEADER)
    reason = request.headers.get(REASON_HEADER, "").strip() or None
    if purpose == BREAK_GLASS:
        low, high = REASON_LENGTH
        if reason is None or not low <= len(reason) <= high:
            raise ApiError(400, f"break-glass needs a reason of {low} to {high} characters in "
                                f"{REASON_HEADER}", field=REASON_HEADER)
        return purpose, reason
    return purpose, None


def cares_for(cur, *, employee_id: str, patient_id: str) -> bool:
    """Whether the clinician is caring for the patient now: the assignee of one of the patient's
    unresolved incidents, or a clinician signed in on a shift (on duty) when the patient has one."""
    cur.execute("""
        SELECT EXISTS (
            SELECT 1 FROM incidents i
            WHERE i.patient_id = %(patient)s AND i.status <> 'RESOLVED'
              AND (i.assigned_to = %(employee)s
                   OR %(employee)s IN (SELECT s.employee_id FROM signed_in_clinicians(%(at)s) s))
        ) AS cares""", {"patient": patient_id, "employee": employee_id, "at": clock.now()})
    return cur.fetchone()["cares"]


def check_single_patient_access(cur, patient_id: str) -> None:
    """Before answering one patient's record: with PHI_BREAK_GLASS_REQUIRED, a clinician who is
    not caring for the patient must break the glass (403 otherwise)."""
    caller = getattr(g, "caller", None)
    if caller is None or caller.is_service or not settings().PHI_BREAK_GLASS_REQUIRED:
        return
    purpose, _ = declared_purpose()
    if purpose == BREAK_GLASS:
        return
    if not cares_for(cur, employee_id=caller.clinician.employee_id, patient_id=patient_id):
        raise ApiError(403, f"you are not caring for patient {patient_id}: to read their record, send "
                            f"{PURPOSE_HEADER}: {BREAK_GLASS} and the reason in {REASON_HEADER} "
                            "(the privacy office reviews every break-glass access)")


def _accessor() -> dict:
    device = getattr(g, "device", None)
    caller = getattr(g, "caller", None)
    if device is not None:
        return {"kind": "DEVICE", "employee_id": None, "device_id": device.device_id}
    if caller is not None and caller.clinician is not None:
        return {"kind": "EMPLOYEE", "employee_id": caller.clinician.employee_id, "device_id": None}
    return {"kind": "SERVICE", "employee_id": None, "device_id": None}


def _address() -> str | None:
    return client_address(request, settings().TRUSTED_PROXIES)


def record(cur, patient_ids) -> int:
    """Log that this request's answer carries these patients' data: one row per patient, one
    statement, in the caller's (read) transaction. Returns the number of patients recorded."""
    patients = list(dict.fromkeys(p for p in patient_ids if p))
    if not patients or not has_request_context():
        return 0
    purpose, reason = declared_purpose() if getattr(g, "device", None) is None else (TREATMENT, None)
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    cur.execute(INSERT_ACCESS, {
        **_accessor(), "at": clock.now(), "patients": patients, "route": f"{request.method} {rule}",
        "address": _address(), "purpose": purpose, "reason": reason})
    return len(patients)
