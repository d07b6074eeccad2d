"""Who is calling: every request but the public ones is authenticated here, on the server.

A clinician's session token is opaque and random, and the database holds only its SHA-256, so a
leaked table cannot be replayed. It comes one of two ways:
- the web UI's: an HttpOnly, SameSite=Strict cookie (SESSION_COOKIE), set at sign-in, shared by
  every tab of the browser and unreadable by the page's scripts. A request that changes anything
  (any method but GET, HEAD, OPTIONS) must also carry the session's CSRF token in X-CSRF-Token,
  which a page of another site cannot read or send (README, "Sessions in the browser");
- API clients' and scripts': `Authorization: Bearer <session token>`, which a browser never adds
  by itself, so it needs no CSRF token.
Services calling each other present the SERVICE_TOKEN from the environment (as a bearer token
only). Because every service checks sessions in the shared database (live_sessions: not
expired, not revoked, not idle too long), a session that ended is refused everywhere at once.
"""
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from flask import g, request

from . import clock
from .context import platform, settings
from .db import Prepared
from .errors import ApiError


@dataclass(frozen=True)
class Clinician:
    employee_id: str
    login: str
    name: str
    role: str
    tier: int
    is_supervisor: bool
    session_id: int
    # May reset passwords and grant this (an account administrator, migration 0015).
    is_account_admin: bool = False
    # May read the PHI access log (a privacy officer, migration 0020), and only they may.
    is_privacy_officer: bool = False


@dataclass(frozen=True)
class Caller:
    """A signed-in clinician, or another HealthGuard service (clinician is None)."""
    clinician: Clinician | None

    @property
    def is_service(self) -> bool:
        return self.clinician is None


@dataclass(frozen=True)
class Device:
    """A bedside device or gateway presenting its key. device_id is None for a bootstrap key
    from DEVICE_API_KEYS (the demo profile): unscoped, not in the registry."""
    device_id: int | None
    name: str
    ward: str | None = None
    patient_id: str | None = None




# Run for every alarm a registered device posts: planned once per connection (db.Prepared).
DEVICE_FOR_KEY = Prepared("device_for_key", """
    WITH found AS (
        SELECT device_id, name, ward, patient_id FROM devices
        WHERE key_hash = %(hash)s::text AND revoked_at IS NULL
    ), seen AS (
        -- Every request with its key is a beat (migration 0020); device_heard writes at most
        -- once a minute (a quarter of the device's heartbeat interval when shorter).
        SELECT device_heard(device_id, %(now)s::timestamptz) FROM found
    )
    SELECT device_id, name, ward, patient_id FROM found, (SELECT count(*) FROM seen) AS heard
""")


def device_for_key(cur, key: str) -> Device | None:
    """The registered, unrevoked device whose key this is (its last_seen_at kept current), or None."""
    DEVICE_FOR_KEY.execute(cur, {"hash": token_hash(key), "now": clock.now()})
    row = cur.fetchone()
    return Device(**row) if row else None


def bootstrap_device(presented: str) -> Device | None:
    if any(hmac.compare_digest(presented.encode(), k.encode()) for k in settings().device_api_keys):
        return Device(device_id=None, name="bootstrap key (DEVICE_API_KEYS)")
    return None


def current_device() -> Device:
    return g.device


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# The web UI's session cookie, and the header that must carry its CSRF token.
SESSION_COOKIE = "hg_session"
CSRF_HEADER = "X-CSRF-Token"
# Methods that change nothing: a cookie alone may make them (a cross-site page cannot read the
# answer: no CORS grant for it).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A session's last_seen_at (its idle clock) is written at most this often: not a row per request.
SESSION_SEEN_RESOLUTION = "1 minute"


def clinician_for_token(cur, token: str) -> Clinician | None:
    """The clinician whose live session (unexpired, unrevoked, not idle too long) this token is,
    or None. Being asked for counts as activity: the session's idle clock starts again."""
    cur.execute("""
        WITH found AS (
            SELECT e.employee_id, e.login, e.name, e.role, e.tier, e.is_supervisor,
                   e.is_account_admin, e.is_privacy_officer, s.session_id, s.last_seen_at
            FROM live_sessions(%(now)s) s JOIN employees e USING (employee_id)
            WHERE s.token_hash = %(hash)s
        ), seen AS (
            UPDATE sessions s SET last_seen_at = %(now)s FROM found f
            WHERE s.session_id = f.session_id
              AND (f.last_seen_at IS NULL
                   OR f.last_seen_at <= %(now)s::timestamptz - %(resolution)s::interval)
        )
        SELECT employee_id, login, name, role, tier, is_supervisor, is_account_admin, is_privacy_officer,
               session_id
        FROM found
    """, {"now": clock.now(), "hash": token_hash(token), "resolution": SESSION_SEEN_RESOLUTION})
    row = cur.fetchone()
    return Clinician(**row) if row else None


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: derived from the session token (an HMAC keyed by it), so
    every service checks it without storing anything, and knowing it reveals nothing of the
    session token."""
    return hmac.new(session_token.encode(), b"healthguard csrf", hashlib.sha256).hexdigest()


def session_cookie_token() -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


def set_session_cookie(response, token: str, *, expires_at, secure: bool) -> None:
    """Hand the browser its session: HttpOnly (no script reads it), SameSite=Strict (no other
    site's page makes the browser send it), for the API paths only, until the shift ends.
    Secure whenever the web UI is served over HTTPS (WEB_ORIGIN)."""
    response.set_cookie(SESSION_COOKIE, token, expires=expires_at, path="/api/v1", secure=secure,
                        httponly=True, samesite="Strict")


def clear_session_cookie(response, *, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/api/v1", secure=secure, httponly=True,
                           samesite="Strict")


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message)


def authenticate_request() -> Caller:
    token = bearer_token()
    from_cookie = token is None
    if from_cookie:
        token = session_cookie_token()
    if not token:
        raise _unauthorized("sign in first: send Authorization: Bearer <session token>")
    service_token = settings().SERVICE_TOKEN
    if (not from_cookie and service_token
            and hmac.compare_digest(token.encode(), service_token.encode())):
        return Caller(clinician=None)
    with platform().db.transaction() as cur:
        clinician = clinician_for_token(cur, token)
    if clinician is None:
        raise _unauthorized("the session is invalid, expired or signed out; sign in again")
    if from_cookie and request.method not in SAFE_METHODS:
        # The browser sends the cookie with any request to this site; only a page of this site
        # can have read the CSRF token (from the sign-in or /auth/me answer) to send it back.
        presented = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(presented.encode(), csrf_token(token).encode()):
            raise ApiError(403, f"this request needs the session's CSRF token in the {CSRF_HEADER} "
                                "header (from the sign-in or GET /api/v1/auth/me answer)")
    return Caller(clinician=clinician)


def caller() -> Caller:
    return g.caller


def current_clinician() -> Clinician:
    return g.caller.clinician


# Route markers. Every route needs a session or the service token unless marked otherwise.

def public(view):
    """No authentication: /health, /metrics, login, API documents."""
    view.hg_public = True
    return view


def device_api_key(view):
    """Bedside devices are not people and have no session: they present X-API-Key, a key of the
    device registry (or a bootstrap key from DEVICE_API_KEYS). The view finds the device, with
    its scope, as current_device()."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        presented = request.headers.get("X-API-Key", "").strip()
        device = None
        if presented:
            device = bootstrap_device(presented)
            if device is None:
                with platform().db.autocommit() as cur:  # one statement: one round trip
                    device = device_for_key(cur, presented)
        if device is None:
            raise _unauthorized("a valid device key is required in the X-API-Key header")
        g.device = device
        return view(*args, **kwargs)
    wrapper.hg_public = True
    return wrapper


def clinician_only(view):
    """A route that acts as a person: the service token is not enough."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if g.caller.is_service:
            raise ApiError(403, "this action must be taken by a signed-in clinician")
        return view(*args, **kwargs)
    return wrapper


def supervisor_only(view):
    """Reassigning incidents and editing schedules belong to supervising clinicians."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        clinician = g.caller.clinician
        if clinician is None or not clinician.is_supervisor:
            raise ApiError(403, "only a supervising clinician may do this")
        return view(*args, **kwargs)
    return wrapper


def account_admin_only(view):
    """Resetting passwords and granting this capability belong to account administrators, not
    to every supervisor: a charge nurse who may reassign alarms may not take over a doctor's
    account."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        clinician = g.caller.clinician
        if clinician is None or not clinician.is_account_admin:
            raise ApiError(403, "only an account administrator may do this")
        return view(*args, **kwargs)
    return wrapper


def privacy_officer_only(view):
    """The PHI access log is read by the privacy office alone: not by supervisors, not by the
    account administrators, not by the services' token."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        clinician = g.caller.clinician
        if clinician is None or not clinician.is_privacy_officer:
            raise ApiError(403, "only a privacy officer may read the PHI access log")
        return view(*args, **kwargs)
    return wrapper


def register_authentication(app) -> None:
    @app.before_request
    def authenticate():
        view = app.view_functions.get(request.endpoint) if request.endpoint else None
        # Unknown routes fall through to a 404; CORS preflights carry no credentials.
        if view is None or request.method == "OPTIONS" or getattr(view, "hg_public", False):
            return
        g.caller = authenticate_request()
