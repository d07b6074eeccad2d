"""The on-call service's OpenAPI document (served at /api/v1/openapi.json)."""
from healthguard.domain import AVAILABILITIES
from healthguard.openapi import build_document, error_response


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, description: str, *, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": {"type": "string"}}


def _path(name: str, type_: str = "string") -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": type_}}


def _errors(*codes: int) -> dict:
    text = {400: "malformed request", 401: "no live session (missing, expired or revoked token)",
            403: "not allowed for this caller", 404: "not found", 422: "invalid input",
            429: "too many failed attempts (see Retry-After)"}
    return {str(code): error_response(text[code]) for code in codes}


def _body(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS = {
    "Employee": {"type": "object", "properties": {
        "employee_id": {"type": "string"}, "login": {"type": "string"}, "name": {"type": "string"},
        "role": {"type": "string"}, "specialty": {"type": ["string", "null"]},
        "tier": {"type": "integer"}, "is_supervisor": {"type": "boolean"},
        "signed_in": {"type": "boolean"}, "availability": {"enum": list(AVAILABILITIES)},
        "last_login": NULLABLE_TIME}},
    "AvailableClinician": {"type": "object", "required": [
        "employee_id", "name", "role", "tier", "active_incidents", "last_assigned_at"], "properties": {
        "employee_id": {"type": "string"}, "name": {"type": "string"}, "role": {"type": "string"},
        "tier": {"type": "integer"}, "active_incidents": {"type": "integer"},
        "last_assigned_at": NULLABLE_TIME}},
    "Shift": {"type": "object", "properties": {
        "employee_id": {"type": "string"}, "name": {"type": "string"}, "role": {"type": "string"},
        "shift_code": {"type": ["string", "null"]},
        "starts_at": {"type": "string", "format": "date-time"},
        "ends_at": {"type": "string", "format": "date-time"},
        "source": {"enum": ["rotation", "override"]}, "rotation_id": {"type": ["integer", "null"]},
        "override_id": {"type": ["integer", "null"]}, "replaces_id": {"type": ["string", "null"]}}},
    "Override": {"type": "object", "properties": {
        "override_id": {"type": "integer"}, "employee_id": {"type": "string"},
        "replaces_id": {"type": ["string", "null"]}, "starts_at": {"type": "string", "format": "date-time"},
        "ends_at": {"type": "string", "format": "date-time"}, "reason": {"type": ["string", "null"]},
        "created_by": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"}}},
}

SESSION_EMPLOYEE = {"type": "object", "properties": {
    "employee_id": {"type": "string"}, "login": {"type": "string"}, "name": {"type": "string"},
    "role": {"type": "string"}, "tier": {"type": "integer"}, "is_supervisor": {"type": "boolean"}}}

PATHS = {
    "/api/v1/auth/login": {"post": {
        "summary": "Sign in: open a session", "security": [],
        "requestBody": _body({"type": "object", "required": ["login", "password"], "properties": {
            "login": {"type": "string"}, "password": {"type": "string", "format": "password"}}}),
        "responses": {"200": _json("the session token (shown once) and who signed in", {
            "type": "object", "properties": {"token": {"type": "string"},
                                             "expires_at": {"type": "string", "format": "date-time"},
                                             "employee": SESSION_EMPLOYEE}}),
            **_errors(400, 401, 422, 429)}}},
    "/api/v1/auth/logout": {"post": {
        "summary": "Sign out: revoke this session everywhere",
        "responses": {"204": {"description": "signed out"}, **_errors(401, 403)}}},
    "/api/v1/auth/me": {"get": {
        "summary": "The signed-in clinician and their session",
        "responses": {"200": _json("who is signed in", {"type": "object", "properties": {
            "employee": _ref("Employee"), "session": {"type": "object", "properties": {
                "expires_at": {"type": "string", "format": "date-time"}}}}}), **_errors(401, 403)}}},
    "/api/v1/oncall/available": {"get": {
        "summary": "Who can take an incident now: on duty, signed in (live session), not away",
        "description": "Ordered by active incidents, then longest idle (never assigned first), then id.",
        "parameters": [_query("roles", "comma-separated roles; absent: any role")],
        "responses": {"200": _json("least busy first", {"type": "object", "properties": {
            "clinicians": {"type": "array", "items": _ref("AvailableClinician")}}}), **_errors(401, 422)}}},
    "/api/v1/oncall/current": {"get": {
        "summary": "Who is on duty now, signed in or not, with availability and workload",
        "parameters": [_query("role", "only this role")],
        "responses": {"200": _json("on duty now", {"type": "object", "properties": {
            "at": {"type": "string", "format": "date-time"}, "timezone": {"type": "string"},
            "clinicians": {"type": "array", "items": {"type": "object"}}}}), **_errors(401, 422)}}},
    "/api/v1/schedules": {"get": {
        "summary": "Concrete shifts in a period of at most 31 days",
        "description": "Dates are hospital-local days (`to` included); date-times without offset "
                       "are hospital-local. Default: today. Without `to`, `days` hospital-local "
                       "days from `from` (default 1).",
        "parameters": [_query("from", "ISO date or date-time"), _query("to", "ISO date or date-time"),
                       _query("days", "with no `to`: how many days (1-31)"),
                       _query("role", "only this role")],
        "responses": {"200": _json("the shifts, earliest first", {"type": "object", "properties": {
            "from": {"type": "string"}, "to": {"type": "string"}, "timezone": {"type": "string"},
            "shifts": {"type": "array", "items": _ref("Shift")}}}), **_errors(401, 422)}}},
    "/api/v1/schedules/overrides": {"post": {
        "summary": "Cover another clinician's shifts (replaces_id) or add someone on duty (supervisors)",
        "requestBody": _body({"type": "object", "required": ["employee_id", "starts_at", "ends_at"],
                              "properties": {"employee_id": {"type": "string"},
                                             "replaces_id": {"type": ["string", "null"]},
                                             "starts_at": {"type": "string", "format": "date-time"},
                                             "ends_at": {"type": "string", "format": "date-time"},
                                             "reason": {"type": "string"}}}),
        "responses": {"201": _json("created", _ref("Override")), **_errors(400, 401, 403, 422)}}},
    "/api/v1/schedules/overrides/{override_id}": {"delete": {
        "summary": "Remove an override (supervisors)", "parameters": [_path("override_id", "integer")],
        "responses": {"204": {"description": "removed"}, **_errors(401, 403, 404)}}},
    "/api/v1/employees": {"get": {
        "summary": "Staff", "parameters": [_query("role", "only this role")],
        "responses": {"200": _json("staff, by id", {"type": "object", "properties": {
            "employees": {"type": "array", "items": _ref("Employee")}}}), **_errors(401, 422)}}},
    "/api/v1/employees/{employee_id}": {"get": {
        "summary": "One employee", "parameters": [_path("employee_id")],
        "responses": {"200": _json("the employee", _ref("Employee")), **_errors(401, 404)}}},
    "/api/v1/employees/me/availability": {"patch": {
        "summary": "Mark yourself available or away (away: no new incidents)",
        "requestBody": _body({"type": "object", "required": ["availability"], "properties": {
            "availability": {"enum": list(AVAILABILITIES)}}}),
        "responses": {"200": _json("your record", _ref("Employee")), **_errors(400, 401, 403, 422)}}},
    "/api/v1/openapi.json": {"get": {
        "summary": "This document", "security": [],
        "responses": {"200": {"description": "OpenAPI 3.1 document"}}}},
    "/health": {"get": {
        "summary": "Liveness: the process answers (no dependency is asked)", "security": [],
        "responses": {"200": {"description": "alive"}}}},
    "/ready": {"get": {
        "summary": "Readiness: whether the database answers", "security": [],
        "responses": {"200": {"description": "ready"}, "503": {"description": "the database is down"}}}},
    "/metrics": {"get": {
        "summary": "Prometheus metrics, including oncall_current{role}", "security": [],
        "responses": {"200": {"description": "text exposition"}}}},
}


def document() -> dict:
    return build_document(
        title="HealthGuard Ops on-call service",
        description="Identity (sessions), shift schedules, who is on duty and who can take an incident.",
        paths=PATHS, schemas=SCHEMAS)
