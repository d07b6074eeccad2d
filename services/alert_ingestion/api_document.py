"""The OpenAPI document of the alert ingestion service, served at /api/v1/openapi.json.
tests/test_alert_ingestion.py checks that it lists exactly the routes the app serves."""
from healthguard.domain import SEVERITIES
from healthguard.openapi import build_document, error_response

SEVERITY = {"type": "string", "enum": list(SEVERITIES)}
TIMESTAMP = {"type": "string", "format": "date-time"}
DEVICE_ONLY = [{"deviceApiKey": []}]
DEVICE_OR_SESSION = [{"deviceApiKey": []}, {"bearerAuth": []}]


def _param(name, description, schema=None, where="query", required=False):
    return {"name": name, "in": where, "required": required, "description": description,
            "schema": schema or {"type": "string"}}


def _json(schema_ref: str, description: str, headers: dict | None = None) -> dict:
    response = {"description": description,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}}
    if headers:
        response["headers"] = headers
    return response


LOCATION = {"Location": {"description": "URL of the stored alert", "schema": {"type": "string"}}}
UNAUTHORIZED = error_response("missing or invalid credentials")

SCHEMAS = {
    "AlertReport": {
        "type": "object",
        "required": ["patient_id", "alert_type"],
        "description": "An alarm as a device reports it. Room, severity and category are taken from "
                       "the patient and the alert type, never from the caller; other fields are ignored.",
        "properties": {
            "patient_id": {"type": "string", "maxLength": 32, "example": "P001"},
            "alert_type": {"type": "string", "maxLength": 64, "example": "CARDIAC_ARREST"},
            "value": {"type": ["number", "null"], "description": "measured value, in the type's unit"},
            "device_id": {"type": ["string", "null"], "maxLength": 100},
            "source_alarm_id": {"type": ["string", "null"], "maxLength": 200,
                                "description": "the device's own id of this alarm; with device_id it "
                                               "makes a retry idempotent"},
            "occurred_at": {**TIMESTAMP, "description": "with a UTC offset; defaults to now"},
            "source": {"type": "string", "enum": ["DEVICE", "SIMULATOR"], "default": "DEVICE"},
        },
    },
    "ManualAlert": {
        "type": "object",
        "description": "Every field is optional: a random admitted patient, a random alert type and "
                       "a typical value from its definition fill in what is missing.",
        "properties": {
            "patient_id": {"type": "string"}, "alert_type": {"type": "string"},
            "value": {"type": ["number", "null"]}, "occurred_at": TIMESTAMP,
        },
    },
    "Alert": {
        "type": "object",
        "properties": {
            "alert_id": {"type": "integer"},
            "status": {"type": "string", "enum": ["RECEIVED", "INCIDENT_CREATED"]},
            "patient_id": {"type": "string"}, "patient_name": {"type": "string"},
            "alert_type": {"type": "string"}, "alert_name": {"type": "string"},
            "severity": SEVERITY, "category": {"type": "string"}, "room": {"type": "string"},
            "value": {"type": ["number", "null"]},
            "device_id": {"type": ["string", "null"]}, "source_alarm_id": {"type": ["string", "null"]},
            "source": {"type": "string", "enum": ["DEVICE", "MANUAL", "SIMULATOR"]},
            "triggered_by": {"type": ["string", "null"], "description": "clinician of a manual alert"},
            "occurred_at": TIMESTAMP, "received_at": TIMESTAMP,
            "incident_id": {"type": ["integer", "null"]},
            "incident_status": {"type": ["string", "null"]},
        },
    },
    "AlertPage": {
        "type": "object",
        "properties": {
            "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
            "next": {"type": ["string", "null"], "description": "pass as `cursor` for the next page"},
            "limit": {"type": "integer"},
        },
    },
    "AlertType": {
        "type": "object",
        "properties": {
            "alert_type": {"type": "string"}, "name": {"type": "string"}, "category": {"type": "string"},
            "severity": SEVERITY, "description": {"type": "string"}, "unit": {"type": ["string", "null"]},
            "typical_min": {"type": ["number", "null"]}, "typical_max": {"type": ["number", "null"]},
            "routes_to": {"type": "array", "items": {"type": "string"},
                          "description": "clinical roles to page, in order"},
        },
    },
    "Patient": {
        "type": "object",
        "properties": {
            "patient_id": {"type": "string"}, "name": {"type": "string"},
            "date_of_birth": {"type": ["string", "null"], "format": "date"},
            "room": {"type": "string"}, "ward": {"type": "string"},
            "status": {"type": "string", "enum": ["ADMITTED", "DISCHARGED"]}, "admitted_at": TIMESTAMP,
        },
    },
}

PATHS = {
    "/api/v1/alerts": {
        "post": {
            "summary": "Report a device alarm",
            "security": DEVICE_ONLY,
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/AlertReport"}}}},
            "responses": {
                "201": _json("Alert", "stored (alert and its outbox message committed)", LOCATION),
                "200": _json("Alert", "this device already reported this alarm: the stored alert", LOCATION),
                "400": error_response("malformed JSON or a field of the wrong type (named in `field`)"),
                "401": error_response("missing or wrong X-API-Key"),
                "409": error_response("source_alarm_id already used for another patient or alert type"),
                "413": error_response("body over 64 KiB"),
                "422": error_response("unknown patient_id or alert_type (named in `field`)"),
            },
        },
        "get": {
            "summary": "Alerts, newest first",
            "parameters": [
                _param("severity", "one or several, repeated or comma-separated"),
                _param("patient_id", "only this patient's alerts"),
                _param("alert_type", "only alerts of this type"),
                _param("since", "received at or after (ISO-8601 with offset)", TIMESTAMP),
                _param("until", "received before (ISO-8601 with offset)", TIMESTAMP),
                _param("limit", "page size, 1 to 500 (default 100)", {"type": "integer"}),
                _param("cursor", "the `next` value of the previous page"),
            ],
            "responses": {"200": _json("AlertPage", "one page of alerts"),
                          "400": error_response("a malformed filter"), "401": UNAUTHORIZED},
        },
    },
    "/api/v1/alerts/manual": {
        "post": {
            "summary": "A signed-in clinician triggers a test alert (random or as given)",
            "requestBody": {"required": False, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/ManualAlert"}}}},
            "responses": {
                "201": _json("Alert", "stored", LOCATION),
                "400": error_response("a field of the wrong type"), "401": UNAUTHORIZED,
                "403": error_response("the service token cannot act as a clinician"),
                "422": error_response("unknown patient_id or alert_type"),
            },
        },
    },
    "/api/v1/alerts/{alert_id}": {
        "get": {
            "summary": "One alert, with its incident once there is one",
            "parameters": [_param("alert_id", "alert id", {"type": "integer"}, "path", True)],
            "responses": {"200": _json("Alert", "the alert"), "401": UNAUTHORIZED,
                          "404": error_response("no such alert")},
        },
    },
    "/api/v1/alert-types": {
        "get": {
            "summary": "The alert type catalogue",
            "security": DEVICE_OR_SESSION,
            "parameters": [_param("category", "only this category (CARDIAC, RESPIRATORY, ...)")],
            "responses": {"200": {"description": "the catalogue", "content": {"application/json": {
                "schema": {"type": "object", "properties": {"alert_types": {
                    "type": "array", "items": {"$ref": "#/components/schemas/AlertType"}}}}}}},
                "401": UNAUTHORIZED},
        },
    },
    "/api/v1/patients": {
        "get": {
            "summary": "Patients",
            "security": DEVICE_OR_SESSION,
            "parameters": [_param("status", "ADMITTED or DISCHARGED")],
            "responses": {"200": {"description": "patients", "content": {"application/json": {
                "schema": {"type": "object", "properties": {"patients": {
                    "type": "array", "items": {"$ref": "#/components/schemas/Patient"}}}}}}},
                "400": error_response("unknown status"), "401": UNAUTHORIZED},
        },
    },
    "/api/v1/openapi.json": {
        "get": {"summary": "This document", "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1 document"}}},
    },
    "/health": {
        "get": {"summary": "Liveness: the process answers (no dependency is asked)", "security": [],
                "responses": {"200": {"description": "alive"}}},
    },
    "/ready": {
        "get": {"summary": "Readiness: whether the database and the broker answer", "security": [],
                "responses": {"200": {"description": "ready, or `degraded` without the broker "
                                                     "(alarms are kept in the outbox)"},
                              "503": {"description": "the database is down (named in `down`)"}}},
    },
    "/metrics": {
        "get": {"summary": "Prometheus metrics, among them alerts_received_total{severity}",
                "security": [], "responses": {"200": {"description": "text exposition"}}},
    },
}

DOCUMENT = build_document(
    title="HealthGuard Ops alert ingestion",
    description="Receives alarms from bedside devices, stores each durably and, through a "
                "transactional outbox, publishes it to the `alerts` queue.",
    paths=PATHS, schemas=SCHEMAS)
