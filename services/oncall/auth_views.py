"""POST /api/v1/auth/login, POST /api/v1/auth/logout, GET /api/v1/auth/me."""
from flask import Blueprint, current_app, make_response

from healthguard import clock
from healthguard.auth import clinician_only, current_clinician, public
from healthguard.errors import ApiError
from healthguard.web import json_body, platform

from . import roster, sessions

blueprint = Blueprint("auth", __name__, url_prefix="/api/v1/auth")

MAX_CREDENTIAL_LENGTH = 256


@blueprint.post("/login")
@public
def login():
    body = json_body()
    credentials = {name: body.get(name) for name in ("login", "password")}
    for name, value in credentials.items():
        if not isinstance(value, str) or not value:
            raise ApiError(422, f"{name} is required (a non-empty string)")
        if len(value) > MAX_CREDENTIAL_LENGTH:
            raise ApiError(401, sessions.BAD_CREDENTIALS)
    try:
        with platform().db.transaction() as cur:
            # The failed attempt must be recorded (committed) even though the answer is a 401.
            signed_in = sessions.sign_in(cur, login=credentials["login"].strip(),
                                         password=credentials["password"],
                                         ttl_hours=current_app.extensions["oncall.session_ttl_hours"])
    except sessions.TooManyAttempts as exc:
        response = make_response(current_app.handle_user_exception(exc))
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if not signed_in:
        raise ApiError(401, sessions.BAD_CREDENTIALS)
    return signed_in


@blueprint.post("/logout")
@clinician_only
def logout():
    clinician = current_clinician()
    with platform().db.transaction() as cur:
        sessions.sign_out(cur, session_id=clinician.session_id)
    return "", 204


@blueprint.get("/me")
@clinician_only
def me():
    clinician = current_clinician()
    with platform().db.transaction() as cur:
        employee = roster.get_employee(cur, employee_id=clinician.employee_id, at=clock.now())
        expires_at = sessions.session_expiry(cur, session_id=clinician.session_id)
    return {"employee": employee, "session": {"expires_at": expires_at.isoformat() if expires_at else None}}
