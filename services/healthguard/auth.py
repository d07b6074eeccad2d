"""Who is calling: every request but the public ones is authenticated here, on the server.

Clinicians present `Authorization: Bearer <session token>`; the token is opaque and random, and
the database holds only its SHA-256, so a leaked table cannot be replayed. Services calling each
other present the SERVICE_TOKEN from the environment. Because every service checks sessions in
the shared database, a revoked or expired token is refused everywhere at once.
"""
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from flask import current_app, g, request

from . import clock
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


@dataclass(frozen=True)
class Caller:
    """A signed-in clinician, or another HealthGuard service (clinician is None)."""
    clinician: Clinician | None

    @property
    def is_service(self) -> bool:
        return self.clinician is None


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def clinician_for_token(cur, token: str) -> Clinician | None:
    """The clinician whose live (unexpired, unrevoked) session this token is, or None."""
    cur.execute("""
        SELECT e.employee_id, e.login, e.name, e.role, e.tier, e.is_supervisor, s.session_id
        FROM sessions s JOIN employees e USING (employee_id)
        WHERE s.token_hash = %s AND s.revoked_at IS NULL AND s.expires_at > %s
    """, (token_hash(token), clock.now()))
    row = cur.fetchone()
    return Clinician(**row) if row else None


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message)


def authenticate_request() -> Caller:
    token = bearer_token()
    if not token:
        raise _unauthorized("sign in first: send Authorization: Bearer <session token>")
    service_token = current_app.config.get("SERVICE_TOKEN")
    if service_token and hmac.compare_digest(token.encode(), service_token.encode()):
        return Caller(clinician=None)
    from .web import platform  # late import: web imports this module
    with platform().db.transaction() as cur:
        clinician = clinician_for_token(cur, token)
    if clinician is None:
        raise _unauthorized("the session is invalid, expired or signed out; sign in again")
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
    """Bedside devices are not people and have no session: they present X-API-Key."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        presented = request.headers.get("X-API-Key", "")
        keys = [k.strip() for k in current_app.config.get("DEVICE_API_KEYS", "").split(",") if k.strip()]
        if not presented or not any(hmac.compare_digest(presented.encode(), k.encode()) for k in keys):
            raise _unauthorized("a valid device key is required in the X-API-Key header")
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


def register_authentication(app) -> None:
    @app.before_request
    def authenticate():
        view = app.view_functions.get(request.endpoint) if request.endpoint else None
        # Unknown routes fall through to a 404; CORS preflights carry no credentials.
        if view is None or request.method == "OPTIONS" or getattr(view, "hg_public", False):
            return
        g.caller = authenticate_request()
