"""POST /api/v1/auth/login, POST /api/v1/auth/password, POST /api/v1/auth/logout,
GET /api/v1/auth/me."""
import datetime as dt
import logging

from flask import Blueprint, current_app, make_response, request

from healthguard import clock
from healthguard.addresses import client_address
from healthguard.api import PUBLIC, responses
from healthguard.auth import (
    bearer_token,
    clear_session_cookie,
    clinician_only,
    csrf_token,
    current_clinician,
    public,
    session_cookie_token,
    set_session_cookie,
)
from healthguard.context import settings
from healthguard.errors import ApiError
from healthguard.web import platform

from . import roster, sessions
from .schemas import Credentials, Me, PasswordChange, SignedIn, api

blueprint = Blueprint("auth", __name__, url_prefix="/api/v1/auth")
log = logging.getLogger(__name__)


def source_address() -> str | None:
    """The client's address (nginx's X-Real-IP only from TRUSTED_PROXIES): throttle and audit."""
    return client_address(request, settings().TRUSTED_PROXIES)


def _secure_cookie() -> bool:
    """Secure cookies when the web UI is served over HTTPS; over plain HTTP (a workstation's
    http://localhost) a Secure cookie would never be sent back."""
    return settings().WEB_ORIGIN.lower().startswith("https://")


def _throttled(exc: sessions.TooManyAttempts, login: str):
    # Names the source for whoever the SignInThrottled alert sends to look (never the password).
    log.warning("sign-in throttled", extra={"reason": exc.reason, "login": login,
                                            "address": source_address(),
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
    logins. The same login from another address is not held back. A one-time password from an
    account administrator's reset answers 403 `password_change_required` (POST
    /api/v1/auth/password), or 401 `one_time_password_expired` once it expired.

    The session lasts SESSION_TTL_HOURS (a shift). With `session_cookie` (the web UI) it is
    set as an HttpOnly, SameSite=Strict cookie that every tab of the browser shares, it also
    ends after SESSION_IDLE_MINUTES without a request, and the answer carries the CSRF token
    instead of the session token."""
    cookie = json.session_cookie
    try:
        with platform().db.transaction() as cur:
            # The failed attempt must be recorded (committed) even though the answer is a 401.
            signed_in = sessions.sign_in(
                cur, login=json.login, password=json.password,
                ttl_hours=settings().SESSION_TTL_HOURS,
                idle_timeout=settings().session_idle if cookie else None,
                address=source_address())
    except sessions.TooManyAttempts as exc:
        return _throttled(exc, json.login)
    if signed_in.get("one_time_password_expired"):
        raise ApiError(401, sessions.EXPIRED_ONE_TIME, one_time_password_expired=True)
    if not signed_in:
        raise ApiError(401, sessions.BAD_CREDENTIALS)
    if not cookie:
        return signed_in
    token = signed_in.pop("token")
    response = make_response({**signed_in, "csrf_token": csrf_token(token)})
    set_session_cookie(response, token, expires_at=dt.datetime.fromisoformat(signed_in["expires_at"]),
                       secure=_secure_cookie())
    return response


@blueprint.post("/password")
@public
@api.validate(json=PasswordChange, security=PUBLIC,
              resp=responses({204: None}, [400, 401, 413, 422, 429, 503], public_route=True))
def change_password(json: PasswordChange):
    """Change a password, proven by the current one

    Also the way out of a forced change after a reset (the one-time password is the current one;
    it works once, and not after ONE_TIME_PASSWORD_HOURS). Throttled like a sign-in. The new
    password has at least 12 characters and is not a common password, one character or a short
    unit repeated, a run of the keyboard or the alphabet, or mostly the login or name (422 says
    which). Every session of the clinician ends: sign in again."""
    if json.new_password == json.current_password:
        raise ApiError(422, "the new password must differ from the current one",
                       field="new_password")
    try:
        with platform().db.transaction() as cur:
            changed = sessions.change_password(cur, login=json.login,
                                               current_password=json.current_password,
                                               new_password=json.new_password,
                                               address=source_address())
    except sessions.TooManyAttempts as exc:
        return _throttled(exc, json.login)
    if changed == "expired":
        raise ApiError(401, sessions.EXPIRED_ONE_TIME, one_time_password_expired=True)
    if changed != "changed":
        raise ApiError(401, sessions.BAD_CREDENTIALS)
    return "", 204


@blueprint.post("/logout")
@clinician_only
@api.validate(resp=responses({204: None}, [403]))
def logout():
    """Sign out: revoke this session (for the web UI: in every tab of the browser, which share it)"""
    clinician = current_clinician()
    with platform().db.transaction() as cur:
        sessions.sign_out(cur, session_id=clinician.session_id)
    response = make_response("", 204)
    clear_session_cookie(response, secure=_secure_cookie())
    return response


@blueprint.get("/me")
@clinician_only
@api.validate(resp=responses({200: Me}, [403]))
def me():
    """The signed-in clinician, their session, and the hospital's time zone (every time shown in it)

    A new tab of the web UI asks here whether the browser is signed in (the cookie is sent by
    itself) and reads the session's CSRF token."""
    clinician = current_clinician()
    with platform().db.transaction() as cur:
        employee = roster.get_employee(cur, employee_id=clinician.employee_id, at=clock.now())
        session = sessions.session_times(cur, session_id=clinician.session_id)
    cookie = session_cookie_token() if bearer_token() is None else None
    return {"employee": employee,
            "session": {**session, "csrf_token": csrf_token(cookie) if cookie else None},
            "timezone": settings().HOSPITAL_TZ.key}
