"""The notification service's OpenAPI document (served at /api/v1/openapi.json)."""
from healthguard.domain import SEVERITIES
from healthguard.incident_events import INCIDENT_EVENT_TYPES
from healthguard.openapi import build_document, error_response

NOTIFICATION = {
    "type": "object",
    "required": ["id", "event_id", "event_type", "employee_id", "title", "message", "created_at"],
    "properties": {
        "id": {"type": "integer", "description": "increasing; the cursor for after_id and WebSocket replay"},
        "event_id": {"type": "string"},
        "event_type": {"type": "string", "enum": list(INCIDENT_EVENT_TYPES)},
        "employee_id": {"type": "string", "description": "always the caller"},
        "incident_id": {"type": ["integer", "null"]},
        "title": {"type": "string"},
        "message": {"type": "string"},
        "severity": {"type": ["string", "null"], "enum": [*SEVERITIES, None]},
        "data": {"type": "object", "description": "status, patient_id, room, alert_type, assigned_to"},
        "created_at": {"type": "string", "format": "date-time"},
        "read_at": {"type": ["string", "null"], "format": "date-time"},
    },
}

UNREAD_COUNT = {"type": "integer", "description": "the caller's unread notifications after this request"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


COMMON_ERRORS = {
    "401": error_response("no valid session token"),
    "403": error_response("the service token is not a clinician: these are a person's notifications"),
}

PATHS = {
    "/api/v1/notifications": {
        "get": {
            "summary": "The caller's own notifications",
            "description": "Newest first; with after_id, oldest first from there (catching up).",
            "parameters": [
                {"name": "unread", "in": "query", "schema": {"type": "boolean", "default": False}},
                {"name": "after_id", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                {"name": "limit", "in": "query",
                 "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
            ],
            "responses": {
                "200": _json({"type": "object", "required": ["notifications", "has_more", "unread_count"],
                              "properties": {
                                  "notifications": {"type": "array",
                                                    "items": {"$ref": "#/components/schemas/Notification"}},
                                  "has_more": {"type": "boolean"},
                                  "unread_count": UNREAD_COUNT}}, "a page of notifications"),
                "400": error_response("a parameter is malformed or out of range"),
                **COMMON_ERRORS,
            },
        },
    },
    "/api/v1/notifications/{notification_id}/read": {
        "patch": {
            "summary": "Mark one of the caller's notifications read (idempotent)",
            "parameters": [{"name": "notification_id", "in": "path", "required": True,
                            "schema": {"type": "integer"}}],
            "responses": {
                "200": _json({"type": "object", "properties": {
                    "notification": {"$ref": "#/components/schemas/Notification"},
                    "unread_count": UNREAD_COUNT}}, "marked read"),
                "404": error_response("the caller has no such notification (someone else's included)"),
                **COMMON_ERRORS,
            },
        },
    },
    "/api/v1/notifications/read-all": {
        "post": {
            "summary": "Mark all the caller's unread notifications read",
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"up_to_id": {
                    "type": "integer", "minimum": 0,
                    "description": "only up to this id: one that arrived after the list was shown "
                                   "stays unread"}}}}}},
            "responses": {
                "200": _json({"type": "object", "properties": {
                    "marked_read": {"type": "integer"}, "unread_count": UNREAD_COUNT}}, "marked read"),
                "400": error_response("the body is not a JSON object or up_to_id is malformed"),
                **COMMON_ERRORS,
            },
        },
    },
    "/ws": {
        "get": {
            "summary": "WebSocket: live notifications and incident updates (see WEBSOCKET.md)",
            "description": "Upgrade to a WebSocket. The session token comes as ?token= (browsers) or "
                           "Authorization: Bearer. ?last_id=N replays the caller's notifications with "
                           "id > N before live ones. Frames are JSON objects with a type: notification, "
                           "incident_updated, ping.",
            "security": [{"bearerAuth": []}, {"sessionTokenQuery": []}],
            "parameters": [
                {"name": "token", "in": "query", "schema": {"type": "string"}},
                {"name": "last_id", "in": "query", "schema": {"type": "integer", "minimum": 0}},
            ],
            "responses": {
                "101": {"description": "switching to the WebSocket protocol"},
                "400": error_response("not a WebSocket upgrade, or last_id is malformed"),
                "401": error_response("missing, invalid, expired or revoked session token"),
            },
        },
    },
}


def document() -> dict:
    doc = build_document(
        title="HealthGuard Ops notification service",
        description="Stored notification history and read state of the signed-in clinician; "
                    "live push over the WebSocket at /ws.",
        paths=PATHS, schemas={"Notification": NOTIFICATION})
    doc["components"]["securitySchemes"]["sessionTokenQuery"] = {
        "type": "apiKey", "in": "query", "name": "token",
        "description": "the session token, for WebSocket clients that cannot set headers"}
    return doc
