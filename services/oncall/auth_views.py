"""POST /api/v1/auth/login, POST /api/v1/auth/password, POST /api/v1/auth/logout,
GET /api/v1/auth/me."""
import logging

from flask import Blueprint, current_app, make_response, request

from healthguard import clock
from healthguard.addresses import client_address
from healthguard.api import PUBLIC, responses
from healthguard.auth import clinician_only, current_clinician, public
from healthguard.errors import ApiError
from healthguard.web import platform

from . import roster, sessions
from .schemas import Credentials, Me, PasswordChange, SignedIn, api

blueprint = Blueprint("auth", __name__, url_prefix="/api/v1/auth")
log = logging.getLogger(__name__)


def _source_address() -> str | None:
    return client_address(request, current_app.extensions["oncall.trusted_proxies"])


def _throttled(exc: sessions.TooManyAttempts, login: str):
    # Names the source for whoever the SignInThrottled alert sends to look (never the password).
    log.warning("sign-in throttled", extra={"reason": exc.reason, "login": login,
                                            "address": _source_address(),
                                            "retry_after_seconds": exc.retry_after})
    response = make_response(current_app.handle_user_exception(exc))
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


@blueprint.post("/login")
@public
@api.validate(json=Credentials, security=PUBLIC,
              resp=responses({200: SignedIn}, [400, 401, 403, 413, 429, 503], public_route=True))
def login(json: Credentials):
    """Sign in: open a session

    Failures are throttled per login and source address: after five within 15 minutes each
    further attempt from that address waits twice as long as the one before (30 s, 1 min, ...;
    429 with Retry-After), and one address gets at most 30 failures in 15 minutes over all
    logins. The same login from another address is not held back. A one-time password from a
    supervisor's reset answers 403 `password_change_required` (POST /api/v1/auth/password)."""
    try:
        with platform().db.transaction() as cur:
            # The failed attempt must be recorded (committed) even though the answer is a 401.
            signed_in = sessions.sign_in(cur, login=json.login, password=json.password,
                                         ttl_hours=current_app.extensions["oncall.session_ttl_hours"],
                                         address=_source_address())
    except sessions.TooManyAttempts as exc:
        return _throttled(exc, json.login)
    if not signed_in:
        raise ApiError(401, sessions.BAD_CREDENTIALS)
    return signed_in


@blueprint.post("/password")
@public
@api.validate(json=PasswordChange, security=PUBLIC,
              resp=responses({204: None}, [400, 401, 413, 422, 429, 503], public_route=True))
def change_password(json: PasswordChange):
    """Change a password, proven by the current one

    Also the way out of a forced change after a reset (the one-time password is the current one).
    Throttled like a sign-in. Every session of the clinician ends: sign in again."""
    if json.new_password == json.current_password:
        raise ApiError(422, "the new password must differ from the current one",
                       field="new_password")
    try:
        with platform().db.transaction() as cur:
            changed = sessions.change_password(cur, login=json.login,
                                               current_password=json.current_password,
                                               new_password=json.new_password,
                                               address=_source_address())
    except sessions.TooManyAttempts as exc:
        return _throttled(exc, json.login)
    if not changed:
        raise ApiError(401, sessions.BAD_CREDENTIALS)
    return "", 204


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
    """The signed-in clinician, their session, and the hospital's time zone (every time shown in it)"""
    clinician = current_clinician()
    with platform().db.transaction() as cur:
        employee = roster.get_employee(cur, employee_id=clinician.employee_id, at=clock.now())
        expires_at = sessions.session_expiry(cur, session_id=clinician.session_id)
    return {"employee": employee, "session": {"expires_at": expires_at.isoformat() if expires_at else None},
            "timezone": current_app.extensions["oncall.tz"].key}
