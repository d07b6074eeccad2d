"""HTTP routes of the alert ingestion service. Each is validated and documented by the models of
schemas.py, calls one function of alerts.py / catalogue.py inside one transaction, and answers JSON."""
import functools

from flask import Blueprint, current_app, g, request

from healthguard import phi_access
from healthguard.api import DEVICE_KEY, DEVICE_KEY_OR_SESSION, responses
from healthguard.auth import (
    authenticate_request,
    clinician_only,
    current_clinician,
    current_device,
    device_api_key,
    supervisor_only,
)
from healthguard.db import BIGINT_MAX
from healthguard.errors import ApiError
from healthguard.params import next_cursor
from healthguard.web import platform

from . import alerts, catalogue, devices, flood_limits, heartbeats, hl7_gateways
from .metrics import ALERTS_RECEIVED
from .schemas import (
    Alert,
    AlertFilter,
    AlertPage,
    AlertReport,
    AlertTypeCatalogue,
    AlertTypeFilter,
    Device,
    DeviceList,
    DeviceRegistration,
    DeviceSelf,
    DeviceWithKey,
    Heartbeat,
    HeartbeatInterval,
    Hl7Gateway,
    Hl7GatewayList,
    Hl7GatewayRegistration,
    ManualAlert,
    PatientFilter,
    PatientList,
    PatientRecord,
    RevokedDevice,
    api,
)

blueprint = Blueprint("alerts", __name__, url_prefix="/api/v1")


def device_key_or_session(view):
    """The alert type catalogue, for devices (the simulator, a gateway) as well as for signed-in
    clinicians and services: X-API-Key when present, else the usual Bearer. Patient data is not
    behind this: it needs a session (a device reads only its beds, GET /devices/me)."""
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


# Authentication decorators sit above api.validate: a caller without credentials gets 401
# before anything about the body is said.

def _flood_limit(source: str, bucket: str) -> None:
    flood_limits.take(platform().db, bucket=bucket,
                      limit=current_app.extensions["alert_ingestion.flood_limits"][source])


@blueprint.post("/alerts")
@device_api_key
@api.validate(json=AlertReport, security=DEVICE_KEY,
              resp=responses({201: Alert, 200: Alert}, [403, 409, 413, 422, 429]))
def receive_device_alert(json: AlertReport):
    """Report a device alarm

    201: stored (the alert and its outbox message committed). 200: this device already reported
    this alarm (same device_id and source_alarm_id): the stored alert, nothing written.
    403: the patient is outside the key's scope (its ward or its patient). 429: this device key
    sent more than DEVICE_ALERTS_PER_SECOND (default 50) this second; retry after Retry-After
    seconds (alarms accepted before are kept)."""
    _flood_limit("device", flood_limits.device_bucket(request.headers["X-API-Key"]))
    # Statement by statement, no BEGIN and COMMIT of their own (two of a request's four round
    # trips): the scope check only reads, and record_alert stores the alert and its outbox row
    # in one statement, which commits (waiting for the disk) before it answers, or writes nothing.
    with platform().db.autocommit() as cur:
        devices.check_scope(cur, current_device(), patient_id=json.patient_id)
        alert, created = alerts.record_alert(cur, alerts.Alarm(**json.model_dump()))
    # Counted and answered only now: the alert and its outbox row have committed.
    return _recorded(alert, created)


@blueprint.post("/alerts/manual")
@clinician_only
@api.validate(json=ManualAlert, body_optional=True, resp=responses({201: Alert}, [403, 413, 422, 429]))
def trigger_manual_alert(json: ManualAlert):
    """Raise a test alert as the signed-in clinician

    For drills and checks. An empty body (or null fields) picks a random admitted patient, a
    random alert type and a typical value of that type. 429: more than MANUAL_ALERTS_PER_MINUTE
    (default 10) from this clinician this minute; retry after Retry-After seconds."""
    _flood_limit("manual", flood_limits.clinician_bucket(current_clinician().employee_id))
    fields = json.model_dump()
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
            cur, alerts.Alarm(**fields, triggered_by=current_clinician().employee_id))
    return _recorded(alert, created)


@blueprint.get("/alerts")
@api.validate(query=AlertFilter, resp=responses({200: AlertPage}))
def list_alerts(query: AlertFilter):
    """Alerts, newest first, a page at a time"""
    with platform().db.transaction() as cur:
        rows = alerts.list_alerts(
            cur, limit=query.limit, before_id=query.cursor, severities=query.severity,
            patient_id=query.patient_id, alert_type=query.alert_type,
            since=query.since, until=query.until)
        phi_access.record(cur, (row["patient_id"] for row in rows[:query.limit]))
    return {"alerts": [alerts.alert_json(row) for row in rows[:query.limit]],
            "next": next_cursor(rows, query.limit, "alert_id"), "limit": query.limit}


@blueprint.get("/alerts/<int(min=1):alert_id>")
@api.validate(resp=responses({200: Alert}, [404]))
def get_alert(alert_id: int):
    """One alert, with its incident once there is one"""
    with platform().db.transaction() as cur:
        alert = alerts.get_alert(cur, alert_id=alert_id)
        if alert is None:
            raise ApiError(404, f"no alert {alert_id}")
        phi_access.check_single_patient_access(cur, alert["patient_id"])
        phi_access.record(cur, [alert["patient_id"]])
    return alerts.alert_json(alert)


@blueprint.get("/alert-types")
@device_key_or_session
@api.validate(query=AlertTypeFilter, security=DEVICE_KEY_OR_SESSION,
              resp=responses({200: AlertTypeCatalogue}))
def list_alert_types(query: AlertTypeFilter):
    """The alert type catalogue"""
    with platform().db.transaction() as cur:
        rows = catalogue.list_alert_types(cur, category=query.category)
    return {"alert_types": rows}


@blueprint.get("/patients")
@api.validate(query=PatientFilter, resp=responses({200: PatientList}))
def list_patients(query: PatientFilter):
    """Patients, by id

    Names and dates of birth: a clinician's session (or the service token), never a device key."""
    with platform().db.transaction() as cur:
        rows = catalogue.list_patients(cur, status=query.status)
        phi_access.record(cur, (row["patient_id"] for row in rows))
    return {"patients": [{**row, "date_of_birth": row["date_of_birth"] and row["date_of_birth"].isoformat(),
                          "admitted_at": row["admitted_at"].isoformat()} for row in rows]}


@blueprint.get("/patients/<patient_id>")
@api.validate(resp=responses({200: PatientRecord}, [404]))
def get_patient(patient_id: str):
    """One patient, and whether a monitor of theirs is silent now

    A clinician's session (or the service token), never a device key; logged as an access."""
    with platform().db.transaction() as cur:
        patient = catalogue.get_patient(cur, patient_id=patient_id[:64])
        if patient is None:
            raise ApiError(404, f"no patient {patient_id[:64]}")
        silent = heartbeats.open_silences(cur, patient_id=patient["patient_id"])
        phi_access.record(cur, [patient["patient_id"]])
    return {**patient, "date_of_birth": patient["date_of_birth"] and patient["date_of_birth"].isoformat(),
            "admitted_at": patient["admitted_at"].isoformat(),
            "monitor_silent_since": silent[0]["silent_since"].isoformat() if silent else None,
            "silent_device": silent[0]["device_name"] if silent else None}


# The device registry: supervisors manage keys; a device reads only itself.

def _device_id(device_id: int) -> int:
    if device_id > BIGINT_MAX:
        raise ApiError(404, f"no device {device_id}")
    return device_id


@blueprint.get("/devices")
@supervisor_only
@api.validate(resp=responses({200: DeviceList}, [403]))
def list_devices():
    """Registered devices and gateways, revoked ones included (never their keys)"""
    with platform().db.transaction() as cur:
        rows = devices.list_devices(cur)
        phi_access.record(cur, (row["patient_id"] for row in rows))
        return {"devices": [devices.device_json(row) for row in rows]}


@blueprint.post("/devices")
@supervisor_only
@api.validate(json=DeviceRegistration, resp=responses({201: DeviceWithKey}, [403, 413, 422]))
def register_device(json: DeviceRegistration):
    """Register a device or gateway and get its key

    The key is in this answer only; the registry keeps its SHA-256. 422: unknown ward or patient."""
    with platform().db.transaction() as cur:
        device, key = devices.register_device(cur, name=json.name, ward=json.ward, patient_id=json.patient_id,
                                              created_by=current_clinician().employee_id)
    location = f"/api/v1/devices/{device['device_id']}"
    return {"device": devices.device_json(device), "key": key}, 201, {"Location": location}


@blueprint.post("/devices/<int(min=1):device_id>/rotate")
@supervisor_only
@api.validate(resp=responses({200: DeviceWithKey}, [403, 404, 409]))
def rotate_device_key(device_id: int):
    """Give a device a new key; the old one stops working at once

    409: the device is revoked."""
    with platform().db.transaction() as cur:
        device, key = devices.rotate_key(cur, device_id=_device_id(device_id))
    return {"device": devices.device_json(device), "key": key}


@blueprint.delete("/devices/<int(min=1):device_id>")
@supervisor_only
@api.validate(resp=responses({200: RevokedDevice}, [403, 404]))
def revoke_device(device_id: int):
    """Revoke a device's key (idempotent); the device stays listed"""
    with platform().db.transaction() as cur:
        return {"device": devices.device_json(devices.revoke_device(cur, device_id=_device_id(device_id)))}


@blueprint.put("/devices/<int(min=1):device_id>/heartbeat")
@supervisor_only
@api.validate(json=HeartbeatInterval, resp=responses({200: Device}, [403, 404, 413, 422]))
def set_heartbeat_interval(device_id: int, json: HeartbeatInterval):
    """Expect the device (or the HL7 gateway it is) to be heard every interval_seconds

    Two intervals without a beat (an alarm, an HL7 message or keep-alive, or POST
    /devices/me/heartbeat) raise DEVICE_SILENT. null: no heartbeat expected."""
    with platform().db.transaction() as cur:
        changed = heartbeats.set_interval(cur, device_id=_device_id(device_id), seconds=json.interval_seconds)
        if changed is None:
            raise ApiError(404, f"no device {device_id}")
        return devices.device_json(devices.get_device(cur, device_id=device_id))


@blueprint.put("/devices/<int(min=1):device_id>/hl7-gateway")
@supervisor_only
@api.validate(json=Hl7GatewayRegistration, resp=responses({200: Hl7Gateway}, [403, 404, 409, 413, 422]))
def register_hl7_gateway(device_id: int, json: Hl7GatewayRegistration):
    """Tie a device to the HL7 gateway (PCD-04 over MLLP) it is, or update that gateway

    The gateway is known by its MSH-3/MSH-4; a message is accepted with the device's key in MSH-8
    or from an allowed address (HL7.md). Sent again for the same device and MSH-3/MSH-4, it
    replaces the addresses and the status endpoint. 409: the device is revoked, or that
    MSH-3/MSH-4 is another device's gateway (never moved here). 422: an allowed network wider
    than the operator allows (/16 by default; never 0.0.0.0/0 or ::/0), or a status endpoint
    outside the device networks the operator configured (HL7_DEVICE_NETWORKS)."""
    with platform().db.transaction() as cur:
        gateway = hl7_gateways.register_gateway(
            cur, device_id=_device_id(device_id), **json.model_dump(),
            rules=current_app.extensions["alert_ingestion.gateway_rules"])
    return hl7_gateways.gateway_json(gateway)


@blueprint.get("/hl7-gateways")
@supervisor_only
@api.validate(resp=responses({200: Hl7GatewayList}, [403]))
def list_hl7_gateways():
    """Registered HL7 gateways, with their device and whether it is revoked"""
    with platform().db.transaction() as cur:
        return {"gateways": [hl7_gateways.gateway_json(row) for row in hl7_gateways.list_gateways(cur)]}


@blueprint.get("/devices/me")
@device_api_key
@api.validate(security=DEVICE_KEY, resp=responses({200: DeviceSelf}))
def describe_calling_device():
    """The calling device: its scope and the beds it may report for

    Patient ids, rooms and wards of admitted patients in its scope; no names, no dates of birth."""
    device = current_device()
    with platform().db.transaction() as cur:
        beds = devices.patients_in_scope(cur, device)
        phi_access.record(cur, (bed["patient_id"] for bed in beds))
    return {"device_id": device.device_id, "name": device.name, "ward": device.ward,
            "patient_id": device.patient_id, "patients": beds}


@blueprint.post("/devices/me/heartbeat")
@device_api_key
@api.validate(security=DEVICE_KEY, resp=responses({200: Heartbeat}, [409]))
def device_heartbeat():
    """The calling device is alive

    A beat for its heartbeat interval (PUT /devices/{id}/heartbeat). 409 for a bootstrap key,
    which is no device of the registry."""
    device = current_device()
    if device.device_id is None:
        raise ApiError(409, "a bootstrap key (DEVICE_API_KEYS) has no heartbeat: register the device")
    with platform().db.transaction() as cur:
        row = heartbeats.beat(cur, device_id=device.device_id)
    return {"device_id": row["device_id"], "last_beat_at": row["last_beat_at"].isoformat(),
            "silent_after": row["silent_after"] and row["silent_after"].isoformat()}
