"""POST /api/v1/auth/login, POST /api/v1/auth/logout, GET /api/v1/auth/me."""
from flask import Blueprint, current_app, make_response

from healthguard import clock
from healthguard.api import PUBLIC, responses
from healthguard.auth import clinician_only, current_clinician, public
from healthguard.errors import ApiError
from healthguard.web import platform

from . import roster, sessions
from .schemas import Credentials, Me, SignedIn, api

blueprint = Blueprint("auth", __name__, url_prefix="/api/v1/auth")


@blueprint.post("/login")
@public
@api.validate(json=Credentials, security=PUBLIC,
              resp=responses({200: SignedIn}, [400, 401, 413, 429, 503], public_route=True))
def login(json: Credentials):
    """Sign in: open a session

    Five failed attempts on one login within 15 minutes lock it (429, Retry-After) until the
    oldest of them is 15 minutes old; a success resets the count."""
    try:
        with platform().db.transaction() as cur:
            # The failed attempt must be recorded (committed) even though the answer is a 401.
            signed_in = sessions.sign_in(cur, login=json.login, password=json.password,
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
@api.validate(resp=responses({204: None}, [403]))
def logout():
    """Sign out: revoke this session"""
    clinician = current_clinician()
    with platform().db.transaction() as cur:
        sessions.sign_out(cur, session_id=clinician.session_id)
    return "", 204


@blueprint.get("/me")
@clinician_only
@api.validate(resp=responses({200: Me}, [403]))
def me():
    """The signed-in clinician and their session"""
    clinician = current_clinician()
    with platform().db.transaction() as cur:
        employee = roster.get_employee(cur, employee_id=clinician.employee_id, at=clock.now())
        expires_at = sessions.session_expiry(cur, session_id=clinician.session_id)
    return {"employee": employee, "session": {"expires_at": expires_at.isoformat() if expires_at else None}}
