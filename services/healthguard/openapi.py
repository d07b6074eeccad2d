"""Each service publishes its OpenAPI document at /api/v1/openapi.json, built from this skeleton:
shared security schemes and the one error shape every service answers with."""
from flask import Blueprint

from .auth import public

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message", "status"],
    "properties": {
        "error": {"type": "string", "description": "HTTP reason phrase"},
        "message": {"type": "string", "description": "what is wrong, for a person"},
        "status": {"type": "integer"},
        "request_id": {"type": "string"},
    },
    "additionalProperties": True,
}


def error_response(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def build_document(*, title: str, description: str, paths: dict, schemas: dict | None = None) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1.0.0", "description": description},
        "paths": paths,
        "security": [{"bearerAuth": []}],
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "session token from POST /api/v1/auth/login"},
                "deviceApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
            "schemas": {"Error": ERROR_SCHEMA, **(schemas or {})},
        },
    }


def openapi_blueprint(document: dict) -> Blueprint:
    blueprint = Blueprint("openapi", __name__)

    @blueprint.get("/api/v1/openapi.json")
    @public
    def openapi_document():
        return document

    return blueprint


def _openapi_path(rule: str) -> str:
    """Flask's /api/v1/alerts/<int:alert_id> is OpenAPI's /api/v1/alerts/{alert_id}."""
    import re
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def app_operations(app) -> set[tuple[str, str]]:
    """(METHOD, path) of every route the app serves, as OpenAPI spells them; for tests that the
    published document and the url_map agree."""
    return {(method, _openapi_path(rule.rule))
            for rule in app.url_map.iter_rules() if rule.endpoint != "static"
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def document_operations(document: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items()
            for method in item if method in ("get", "post", "put", "patch", "delete")}
