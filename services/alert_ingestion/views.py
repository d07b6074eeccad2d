"""HTTP routes of the alert ingestion service. Each parses its input, calls one function of
alerts.py / catalogue.py inside one transaction, and answers JSON."""
import functools

from flask import Blueprint, g, request

from healthguard.auth import authenticate_request, clinician_only, current_clinician, device_api_key
from healthguard.domain import SEVERITIES
from healthguard.errors import ApiError
from healthguard.params import next_cursor, page_params, query_list, query_timestamp
from healthguard.web import json_body, platform

from . import alerts, catalogue
from .metrics import ALERTS_RECEIVED

blueprint = Blueprint("alerts", __name__, url_prefix="/api/v1")


def device_key_or_session(view):
    """Catalogue reads for devices (the simulator, a gateway mapping beds to patients) as well
    as for signed-in clinicians and services: X-API-Key when present, else the usual Bearer."""
    with_key = device_api_key(view)

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if "X-API-Key" in request.headers:
            return with_key(*args, **kwargs)
        g.caller = authenticate_request()
        return view(*args, **kwargs)
    wrapper.hg_public = True  # authenticated here instead of in the app-wide hook
    return wrapper


def _recorded(alert: dict, created: bool):
    if created:
        ALERTS_RECEIVED.labels(severity=alert["severity"]).inc()
    headers = {"Location": f"/api/v1/alerts/{alert['alert_id']}"}
    return alerts.alert_json(alert), 201 if created else 200, headers


@blueprint.post("/alerts")
@device_api_key
def receive_device_alert():
    fields = alerts.parse_report(json_body())
    with platform().db.transaction() as cur:
        alert, created = alerts.record_alert(cur, alerts.AlertReport(**fields))
    # Counted and answered only now: the transaction (alert and outbox row) has committed.
    return _recorded(alert, created)


@blueprint.post("/alerts/manual")
@clinician_only
def trigger_manual_alert():
    body = json_body() if request.get_data() else {}
    fields = alerts.parse_report(body, sources=("MANUAL",), require_ids=False)
    for name in ("device_id", "source_alarm_id"):
        if fields.pop(name):
            raise ApiError(400, f"{name} is for device alarms; a manual alert has none", field=name)
    with platform().db.transaction() as cur:
        if fields["patient_id"] is None:
            fields["patient_id"] = catalogue.random_admitted_patient(cur)["patient_id"]
        if fields["alert_type"] is None:
            alert_type = catalogue.random_alert_type(cur)
            fields["alert_type"] = alert_type["alert_type"]
        else:
            alert_type = catalogue.get_alert_type(cur, alert_type=fields["alert_type"])
        if fields["value"] is None and alert_type is not None:
            fields["value"] = catalogue.typical_value(alert_type)
        alert, created = alerts.record_alert(
            cur, alerts.AlertReport(**fields, triggered_by=current_clinician().employee_id))
    return _recorded(alert, created)


@blueprint.get("/alerts")
def list_alerts():
    limit, cursor = page_params()
    with platform().db.transaction() as cur:
        rows = alerts.list_alerts(
            cur, limit=limit, before_id=cursor,
            severities=query_list("severity", allowed=SEVERITIES),
            patient_id=request.args.get("patient_id") or None,
            alert_type=request.args.get("alert_type") or None,
            since=query_timestamp("since"), until=query_timestamp("until"))
    return {"alerts": [alerts.alert_json(row) for row in rows[:limit]],
            "next": next_cursor(rows, limit, "alert_id"), "limit": limit}


@blueprint.get("/alerts/<int:alert_id>")
def get_alert(alert_id: int):
    with platform().db.transaction() as cur:
        alert = alerts.get_alert(cur, alert_id=alert_id)
    if alert is None:
        raise ApiError(404, f"no alert {alert_id}")
    return alerts.alert_json(alert)


@blueprint.get("/alert-types")
@device_key_or_session
def list_alert_types():
    with platform().db.transaction() as cur:
        rows = catalogue.list_alert_types(cur, category=request.args.get("category") or None)
    return {"alert_types": rows}


@blueprint.get("/patients")
@device_key_or_session
def list_patients():
    status = request.args.get("status") or None
    if status not in (None, "ADMITTED", "DISCHARGED"):
        raise ApiError(400, "status must be ADMITTED or DISCHARGED", field="status")
    with platform().db.transaction() as cur:
        rows = catalogue.list_patients(cur, status=status)
    return {"patients": [{**row, "date_of_birth": row["date_of_birth"] and row["date_of_birth"].isoformat(),
                          "admitted_at": row["admitted_at"].isoformat()} for row in rows]}
