"""The OpenAPI document of the incident management service, served at /api/v1/openapi.json.
tests/test_incidents.py checks that it lists exactly the routes the app serves."""
from healthguard.domain import INCIDENT_STATUSES, SEVERITIES
from healthguard.openapi import build_document, error_response

TIMESTAMP = {"type": ["string", "null"], "format": "date-time"}
INCIDENT_ID = {"name": "incident_id", "in": "path", "required": True, "schema": {"type": "integer"}}


def _json(ref: str, description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _body(ref: str, required: bool = True) -> dict:
    return {"required": required,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


UNAUTHORIZED = error_response("missing, expired or revoked session")
NOT_FOUND = error_response("no such incident")
CONFLICT = error_response("illegal in the incident's current status: the body carries incident_status "
                          "and allowed_actions")


def _action(summary: str, *, body: str = "ActionNote", body_required: bool = False, forbidden: str,
            extra: dict | None = None) -> dict:
    return {"patch": {
        "summary": summary,
        "parameters": [INCIDENT_ID],
        "requestBody": _body(body, body_required),
        "responses": {
            "200": _json("Incident", "the incident after the change"),
            "400": error_response("malformed body"), "401": UNAUTHORIZED,
            "403": error_response(forbidden), "404": NOT_FOUND, "409": CONFLICT, **(extra or {}),
        },
    }}


SCHEMAS = {
    "Incident": {
        "type": "object",
        "properties": {
            "incident_id": {"type": "integer"}, "alert_id": {"type": "integer"},
            "patient_id": {"type": "string"}, "patient_name": {"type": "string"},
            "alert_type": {"type": "string"}, "alert_name": {"type": "string"},
            "severity": {"type": "string", "enum": list(SEVERITIES)}, "category": {"type": "string"},
            "room": {"type": "string"},
            "title": {"type": "string", "example": "CRITICAL: Cardiac arrest, room 312"},
            "status": {"type": "string", "enum": list(INCIDENT_STATUSES)},
            "assigned_to": {"type": ["string", "null"]},
            "assignee": {"type": ["object", "null"], "properties": {
                "employee_id": {"type": "string"}, "name": {"type": "string"}, "role": {"type": "string"},
                "tier": {"type": "integer"}}},
            "escalation_level": {"type": "integer"},
            "created_at": TIMESTAMP, "assigned_at": TIMESTAMP, "acknowledged_at": TIMESTAMP,
            "started_at": TIMESTAMP, "resolved_at": TIMESTAMP, "updated_at": TIMESTAMP,
            "response_seconds": {"type": ["number", "null"],
                                 "description": "OPEN to ACKNOWLEDGED (MTTA sample)"},
            "resolution_seconds": {"type": ["number", "null"],
                                   "description": "OPEN to RESOLVED (MTTR sample)"},
            "resolution_notes": {"type": ["string", "null"]},
            "allowed_actions": {"type": "array", "items": {"type": "string"},
                                "description": "actions the lifecycle allows in this status"},
        },
    },
    "IncidentDetail": {
        "allOf": [{"$ref": "#/components/schemas/Incident"}, {"type": "object", "properties": {
            "alert": {"type": "object", "description": "the alert the incident was opened for"},
            "notes": {"type": "array", "items": {"type": "object"}},
            "assignments": {"type": "array", "items": {"type": "object"}},
            "history": {"type": "array", "description": "the audit trail, oldest first", "items": {
                "type": "object", "properties": {
                    "history_id": {"type": "integer"}, "action": {"type": "string"},
                    "actor_id": {"type": ["string", "null"], "description": "null: the system"},
                    "actor_name": {"type": ["string", "null"]},
                    "previous_status": {"type": ["string", "null"]}, "new_status": {"type": "string"},
                    "note": {"type": ["string", "null"]}, "created_at": TIMESTAMP}}},
        }}],
    },
    "IncidentPage": {
        "type": "object",
        "properties": {
            "incidents": {"type": "array", "items": {"$ref": "#/components/schemas/Incident"}},
            "next": {"type": ["string", "null"], "description": "pass as `cursor` for the next page"},
            "limit": {"type": "integer"},
        },
    },
    "ActionNote": {"type": "object", "properties": {"note": {"type": "string", "maxLength": 4000}}},
    "Resolution": {"type": "object", "required": ["resolution_notes"],
                   "properties": {"resolution_notes": {"type": "string", "maxLength": 4000}}},
    "Reassignment": {"type": "object", "required": ["employee_id"],
                     "properties": {"employee_id": {"type": "string"}, "note": {"type": "string"}}},
    "NewNote": {"type": "object", "required": ["note"],
                "properties": {"note": {"type": "string", "maxLength": 4000}}},
    "Figures": {"type": "object", "properties": {
        "window": {"type": "object"}, "counts": {"type": "object"},
        "active_now": {"type": "integer"}, "unassigned_now": {"type": "integer"},
        "mtta_seconds": {"type": "object", "description": "count, avg, p50, p90"},
        "mttr_seconds": {"type": "object", "description": "count, avg, p50, p90"},
        "clinicians": {"type": "array", "items": {"type": "object"}}}},
}

NOT_ASSIGNEE = "the caller is not the incident's assignee (or is a service, not a clinician)"

PATHS = {
    "/api/v1/incidents": {"get": {
        "summary": "Incidents, newest first",
        "parameters": [
            {"name": "status", "in": "query", "description": "one or several, repeated or comma-separated",
             "schema": {"type": "string"}},
            {"name": "severity", "in": "query", "description": "one or several",
             "schema": {"type": "string"}},
            {"name": "mine", "in": "query", "description": "true: only those assigned to the caller",
             "schema": {"type": "boolean"}},
            {"name": "patient_id", "in": "query", "schema": {"type": "string"}},
            {"name": "since", "in": "query", "description": "created at or after", "schema": TIMESTAMP},
            {"name": "limit", "in": "query", "description": "1 to 500 (default 100)",
             "schema": {"type": "integer"}},
            {"name": "cursor", "in": "query", "description": "the `next` value of the previous page",
             "schema": {"type": "string"}},
        ],
        "responses": {"200": _json("IncidentPage", "one page"), "400": error_response("a malformed filter"),
                      "401": UNAUTHORIZED},
    }},
    "/api/v1/incidents/{incident_id}": {"get": {
        "summary": "One incident with its alert, assignee, notes, assignments and history",
        "parameters": [INCIDENT_ID],
        "responses": {"200": _json("IncidentDetail", "the incident"), "401": UNAUTHORIZED, "404": NOT_FOUND},
    }},
    "/api/v1/incidents/metrics": {"get": {
        "summary": "Counts by status and severity, MTTA and MTTR (avg, p50, p90), per clinician",
        "parameters": [{"name": "hours", "in": "query", "description": "window, 1 to 2160 (default 24)",
                        "schema": {"type": "integer"}}],
        "responses": {"200": _json("Figures", "the figures"), "400": error_response("bad window"),
                      "401": UNAUTHORIZED},
    }},
    "/api/v1/incidents/{incident_id}/acknowledge": _action(
        "The assignee acknowledges (ASSIGNED or REASSIGNED to ACKNOWLEDGED); stores the response time",
        forbidden=NOT_ASSIGNEE),
    "/api/v1/incidents/{incident_id}/start": _action(
        "The assignee starts work (to IN_PROGRESS)", forbidden=NOT_ASSIGNEE),
    "/api/v1/incidents/{incident_id}/resolve": _action(
        "The assignee resolves (IN_PROGRESS to RESOLVED); stores the resolution time",
        body="Resolution", body_required=True, forbidden=NOT_ASSIGNEE),
    "/api/v1/incidents/{incident_id}/claim": _action(
        "The caller takes the incident over (REASSIGNED; ASSIGNED when nobody had it)",
        forbidden="a service cannot claim incidents"),
    "/api/v1/incidents/{incident_id}/reassign": _action(
        "A supervising clinician gives the incident to someone else",
        body="Reassignment", body_required=True, forbidden="the caller is not a supervising clinician",
        extra={"422": error_response("unknown employee_id")}),
    "/api/v1/incidents/{incident_id}/notes": {"post": {
        "summary": "The assignee adds a note",
        "parameters": [INCIDENT_ID],
        "requestBody": _body("NewNote"),
        "responses": {"201": {"description": "the note"}, "400": error_response("note missing"),
                      "401": UNAUTHORIZED, "403": error_response(NOT_ASSIGNEE), "404": NOT_FOUND},
    }},
    "/api/v1/openapi.json": {"get": {"summary": "This document", "security": [],
                                     "responses": {"200": {"description": "OpenAPI 3.1 document"}}}},
    "/health": {"get": {"summary": "Liveness: the process answers (no dependency is asked)",
                        "security": [], "responses": {"200": {"description": "alive"}}}},
    "/ready": {"get": {"summary": "Readiness: whether the database and the broker answer", "security": [],
                       "responses": {"200": {"description": "ready"},
                                     "503": {"description": "a part is down (named in `down`)"}}}},
    "/metrics": {"get": {"summary": "Prometheus metrics: incidents_total, incident_mtta_seconds, "
                                    "incident_mttr_seconds (label severity)", "security": [],
                         "responses": {"200": {"description": "text exposition"}}}},
}

DOCUMENT = build_document(
    title="HealthGuard Ops incident management",
    description="Turns alerts from the `alerts` queue into incidents, assigns the least busy "
                "available clinician of the right role, and tracks the lifecycle. Every change is "
                "recorded in the incident's history and announced on the `notifications` queue.",
    paths=PATHS, schemas=SCHEMAS)
