"""HTTP routes of the incident management service. Each parses its input, calls one function of
lifecycle.py / incidents.py / performance.py inside one transaction, observes metrics once that
transaction committed, and answers JSON."""
from flask import Blueprint, request

from healthguard.auth import caller, clinician_only, current_clinician, supervisor_only
from healthguard.domain import INCIDENT_STATUSES, SEVERITIES
from healthguard.errors import ApiError
from healthguard.params import next_cursor, page_params, query_flag, query_list, query_timestamp
from healthguard.web import json_body, platform

from . import incidents, lifecycle, performance
from .metrics import ASSIGNMENTS, MTTA, MTTR

blueprint = Blueprint("incidents", __name__, url_prefix="/api/v1")


def optional_body() -> dict:
    """PATCH bodies are optional ({"note": ...}); when one is sent it must be a JSON object."""
    return json_body() if request.get_data() else {}


def _answer(change: lifecycle.Change, status: int = 200):
    severity = change.incident["severity"]
    if change.response_seconds is not None:
        MTTA.labels(severity=severity).observe(change.response_seconds)
    if change.resolution_seconds is not None:
        MTTR.labels(severity=severity).observe(change.resolution_seconds)
    with platform().db.transaction() as cur:
        incident = incidents.get_incident(cur, incident_id=change.incident["incident_id"])
    return incidents.incident_json(incident), status


@blueprint.patch("/incidents/<int:incident_id>/acknowledge")
@clinician_only
def acknowledge(incident_id: int):
    note = lifecycle.text_field(optional_body(), "note", required=False)
    with platform().db.transaction() as cur:
        change = lifecycle.acknowledge_incident(cur, incident_id=incident_id, clinician=current_clinician(),
                                                note=note)
    return _answer(change)


@blueprint.patch("/incidents/<int:incident_id>/start")
@clinician_only
def start(incident_id: int):
    note = lifecycle.text_field(optional_body(), "note", required=False)
    with platform().db.transaction() as cur:
        change = lifecycle.start_work(cur, incident_id=incident_id, clinician=current_clinician(), note=note)
    return _answer(change)


@blueprint.patch("/incidents/<int:incident_id>/resolve")
@clinician_only
def resolve(incident_id: int):
    notes = lifecycle.text_field(json_body(), "resolution_notes", required=True)
    with platform().db.transaction() as cur:
        change = lifecycle.resolve_incident(cur, incident_id=incident_id, clinician=current_clinician(),
                                            resolution_notes=notes)
    return _answer(change)


@blueprint.patch("/incidents/<int:incident_id>/claim")
@clinician_only
def claim(incident_id: int):
    note = lifecycle.text_field(optional_body(), "note", required=False)
    with platform().db.transaction() as cur:
        change = lifecycle.claim_incident(cur, incident_id=incident_id, clinician=current_clinician(),
                                          note=note)
    ASSIGNMENTS.labels(reason="CLAIM").inc()
    return _answer(change)


@blueprint.patch("/incidents/<int:incident_id>/reassign")
@supervisor_only
def reassign(incident_id: int):
    body = json_body()
    employee_id = lifecycle.text_field(body, "employee_id", required=True)
    note = lifecycle.text_field(body, "note", required=False)
    with platform().db.transaction() as cur:
        change = lifecycle.reassign_incident(cur, incident_id=incident_id, clinician=current_clinician(),
                                             employee_id=employee_id, note=note)
    ASSIGNMENTS.labels(reason="REASSIGN").inc()
    return _answer(change)


@blueprint.post("/incidents/<int:incident_id>/notes")
@clinician_only
def add_note(incident_id: int):
    body = lifecycle.text_field(json_body(), "note", required=True)
    with platform().db.transaction() as cur:
        note, _ = lifecycle.add_note(cur, incident_id=incident_id, clinician=current_clinician(), body=body)
    return ({**note, "created_at": note["created_at"].isoformat()}, 201,
            {"Location": f"/api/v1/incidents/{incident_id}"})


@blueprint.get("/incidents")
def list_incidents():
    limit, cursor = page_params()
    mine = query_flag("mine")
    if mine and caller().is_service:
        raise ApiError(400, "mine=true needs a signed-in clinician", field="mine")
    with platform().db.transaction() as cur:
        rows = incidents.list_incidents(
            cur, limit=limit, before_id=cursor,
            statuses=query_list("status", allowed=INCIDENT_STATUSES),
            severities=query_list("severity", allowed=SEVERITIES),
            assigned_to=current_clinician().employee_id if mine else None,
            patient_id=request.args.get("patient_id") or None,
            since=query_timestamp("since"))
    return {"incidents": [incidents.incident_json(row) for row in rows[:limit]],
            "next": next_cursor(rows, limit, "incident_id"), "limit": limit}


@blueprint.get("/incidents/<int:incident_id>")
def get_incident(incident_id: int):
    with platform().db.transaction() as cur:
        incident = incidents.get_incident(cur, incident_id=incident_id)
        if incident is None:
            raise ApiError(404, f"no incident {incident_id}")
        return incidents.incident_detail(cur, incident)


@blueprint.get("/incidents/metrics")
def incident_metrics():
    raw = request.args.get("hours", "24")
    if not raw.isdigit() or not 1 <= int(raw) <= 24 * 90:
        raise ApiError(400, "hours must be a whole number of hours between 1 and 2160", field="hours")
    with platform().db.transaction() as cur:
        return performance.incident_figures(cur, hours=int(raw))
