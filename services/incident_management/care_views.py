"""HTTP routes of care teams (who cares for which patient this shift, the ward's charge nurse,
handovers) and silences. Each validates with its models (care_schemas.py), asks the on-call
service who is on duty before the transaction when it names someone, and calls one function of
care_teams.py / silences.py inside one transaction."""
from flask import Blueprint

from healthguard.api import responses
from healthguard.auth import clinician_only, current_clinician
from healthguard.errors import ApiError
from healthguard.web import platform

from . import care_teams, routing, silences
from .care_schemas import (
    CareHistory,
    ChargeNurse,
    EndedSilences,
    Handover,
    HandoverDone,
    NewSilence,
    PatientAssignment,
    Silence,
    SilenceAudit,
    SilenceChange,
    SilenceFilter,
    Silences,
    WardCareTeam,
    WardQuery,
)
from .schemas import api
from .views import _oncall

blueprint = Blueprint("care_teams", __name__, url_prefix="/api/v1")


def _on_duty() -> dict[str, dict]:
    return routing.on_duty_now(_oncall())


def _known_patient(cur, patient_id: str) -> None:
    """404 for a patient the URL names and the hospital does not have."""
    cur.execute("SELECT 1 FROM patients WHERE patient_id = %s", (patient_id,))
    if cur.fetchone() is None:
        raise ApiError(404, f"no patient {patient_id}")


@blueprint.get("/care-teams")
@api.validate(query=WardQuery, resp=responses({200: WardCareTeam}, (404, 503)))
def ward_care_team(query: WardQuery):
    """A ward's patients with their nurse and doctor this shift, its charge nurse, and who is on duty

    503 when the on-call service cannot say who is on duty."""
    on_duty = _on_duty()
    with platform().db.transaction() as cur:
        return care_teams.ward_care_team(cur, ward=query.ward, on_duty=on_duty)


@blueprint.put("/care-teams/patients/<patient_id>")
@clinician_only
@api.validate(json=PatientAssignment, resp=responses({200: WardCareTeam}, (403, 404, 409, 413, 422, 503)))
def assign_patient(patient_id: str, json: PatientAssignment):
    """Give a patient a nurse (and optionally a doctor) until the end of that carer's shift

    By a supervisor or the ward's charge nurse (403 otherwise). 422 for someone unknown, not on
    duty by the rota, or of the wrong role; 409 for a patient not admitted. The ward as it is now."""
    on_duty = _on_duty()
    with platform().db.transaction() as cur:
        return care_teams.assign_patient(cur, patient_id=patient_id, nurse_id=json.nurse_id,
                                         doctor_id=json.doctor_id, clinician=current_clinician(),
                                         on_duty=on_duty)


@blueprint.get("/care-teams/patients/<patient_id>/history")
@api.validate(resp=responses({200: CareHistory}, (404,)))
def care_history(patient_id: str):
    """Who cared for the patient, when (every assignment, newest first)"""
    with platform().db.transaction() as cur:
        _known_patient(cur, patient_id)
        return {"patient_id": patient_id,
                "assignments": care_teams.patient_history(cur, patient_id=patient_id)}


@blueprint.post("/care-teams/handover")
@clinician_only
@api.validate(json=Handover, resp=responses({200: HandoverDone}, (403, 409, 413, 422, 503)))
def hand_over(json: Handover):
    """"Take over N02's patients": every patient of one carer moves to another, in one action

    Both are told (a notification each). 409 when the first cares for nobody now; 422 when the
    second is not on duty or of another role."""
    on_duty = _on_duty()
    with platform().db.transaction() as cur:
        return care_teams.hand_over_patients(cur, from_id=json.from_employee_id, to_id=json.to_employee_id,
                                             clinician=current_clinician(), on_duty=on_duty)


@blueprint.put("/care-teams/wards/<ward>/charge-nurse")
@clinician_only
@api.validate(json=ChargeNurse, resp=responses({200: WardCareTeam}, (403, 404, 413, 422, 503)))
def name_charge_nurse(ward: str, json: ChargeNurse):
    """A supervisor names the ward's charge nurse for their shift (a nurse on duty by the rota)"""
    on_duty = _on_duty()
    with platform().db.transaction() as cur:
        return care_teams.name_charge_nurse(cur, ward=ward, employee_id=json.employee_id,
                                            clinician=current_clinician(), on_duty=on_duty)


@blueprint.get("/silences")
@api.validate(query=SilenceFilter, resp=responses({200: Silences}))
def list_silences(query: SilenceFilter):
    """Silences, running ones first (every clinician of a ward sees its running silences)"""
    with platform().db.transaction() as cur:
        return {"silences": silences.list_silences(cur, ward=query.ward, active_only=query.active)}


@blueprint.post("/silences")
@clinician_only
@api.validate(json=NewSilence, resp=responses({201: Silence}, (403, 413, 422)))
def create_silence(json: NewSilence):
    """Silence matching alarms until ends_at (at most 8 hours): stored and shown, paging nobody

    422: a CRITICAL type other than for one device (never by ward or type), over 8 hours, nothing
    to match, IN_SURGERY or TRANSFER without a patient. 403: a silence that may hold a CRITICAL
    alarm (a CRITICAL type, or a device's every alarm) by someone not a supervisor. Audited."""
    with platform().db.transaction() as cur:
        silence = silences.create_silence(cur, fields=json.model_dump(), clinician=current_clinician())
    return silence, 201, {"Location": f"/api/v1/silences/{silence['silence_id']}"}


@blueprint.patch("/silences/<int:silence_id>")
@clinician_only
@api.validate(json=SilenceChange, resp=responses({200: Silence}, (403, 404, 409, 413, 422)))
def edit_silence(silence_id: int, json: SilenceChange):
    """Change a running silence's end time or note, under the same limits (audited)"""
    with platform().db.transaction() as cur:
        return silences.edit_silence(cur, silence_id=silence_id, changes=json.model_dump(exclude_none=True),
                                     clinician=current_clinician())


@blueprint.post("/silences/<int:silence_id>/end")
@clinician_only
@api.validate(resp=responses({200: Silence}, (403, 404, 409)))
def end_silence(silence_id: int):
    """End a silence now: every still-active alarm it held is paged at once (audited)"""
    with platform().db.transaction() as cur:
        return silences.end_silence(cur, silence_id=silence_id, clinician=current_clinician())


@blueprint.get("/silences/<int:silence_id>/audit")
@api.validate(resp=responses({200: SilenceAudit}, (404,)))
def silence_audit(silence_id: int):
    """Who created, edited and ended the silence, and how it was each time"""
    with platform().db.transaction() as cur:
        audit = silences.silence_audit(cur, silence_id=silence_id)
    if not audit:
        raise ApiError(404, f"no silence {silence_id}")
    return {"silence_id": silence_id, "audit": audit}


@blueprint.post("/silences/patients/<patient_id>/returned")
@clinician_only
@api.validate(resp=responses({200: EndedSilences}, (404,)))
def patient_returned(patient_id: str):
    """The patient is back (from surgery, from transfer): their IN_SURGERY and TRANSFER silences end"""
    with platform().db.transaction() as cur:
        _known_patient(cur, patient_id)
        return {"ended": silences.patient_returned(cur, patient_id=patient_id, clinician=current_clinician())}
