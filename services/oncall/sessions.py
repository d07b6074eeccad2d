"""Signing in and out: salted password hashes, server-side sessions, a limit on guessing,
one-time passwords that expire, and the rules a new password must meet."""
import datetime as dt
import ipaddress
import math

from healthguard import clock
from healthguard.auth import new_session_token, token_hash
from healthguard.errors import ApiError
from healthguard.passwords import (
    UNUSABLE,
    dummy_hash,
    hash_password,
    needs_rehash,
    verify_password,
    weakness,
)

from .metrics import SIGN_IN_THROTTLED

# Throttle. Failures are counted per (login, source address) and per source address, never per
# login alone: one address guessing a clinician's password must not lock that clinician out of
# every workstation (logins are predictable, and a locked-out clinician gets no incidents).
FAILURE_WINDOW = dt.timedelta(minutes=15)
# Free failures of one login from one address; each further one doubles the wait before the
# next attempt from there (30 s, 1 min, 2 min, ...), capped at the window.
FREE_FAILURES = 5
FIRST_DELAY = dt.timedelta(seconds=30)
# Failures one address may make within the window across all logins (a sweep of D01, D02, ...).
ADDRESS_MAX_FAILURES = 30
# One message for an unknown login and a wrong password: a caller cannot tell which it was.
BAD_CREDENTIALS = "wrong login or password"


class TooManyAttempts(ApiError):
    def __init__(self, retry_after: int, reason: str):
        super().__init__(429, "too many failed sign-in attempts from this address; try again later",
                         retry_after_seconds=retry_after)
        self.retry_after, self.reason = retry_after, reason


# Said only once the one-time password was right (like password_change_required).
EXPIRED_ONE_TIME = ("this one-time password has expired: ask an account administrator "
                             "for a new one")


class PasswordChangeRequired(ApiError):
    def __init__(self):
        super().__init__(403, "password_change_required: this password was a one-time password; "
                              "set a new one with POST /api/v1/auth/password",
                         password_change_required=True)


def throttle_source(address: str | None) -> str | None:
    """What the throttle counts an address as: an IPv4 address itself, an IPv6 address by its /64
    (one customer's allocation: otherwise a single attacker has 2^64 fresh addresses)."""
    if address is None:
        return None
    parsed = ipaddress.ip_address(address)
    if parsed.version == 6:
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _seconds_until(moment: dt.datetime, now: dt.datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def _throttled_for(cur, *, login: str, address: str | None, now: dt.datetime) -> tuple[int, str]:
    """(seconds to wait, reason) before this address may try this login again; (0, "") if free."""
    since = now - FAILURE_WINDOW
    cur.execute("""
        SELECT attempted_at FROM login_attempts
        WHERE source_address IS NOT DISTINCT FROM %(address)s AND NOT succeeded
          AND attempted_at > %(since)s
        ORDER BY attempted_at DESC
        LIMIT %(n)s
    """, {"address": address, "since": since, "n": ADDRESS_MAX_FAILURES})
    sweep = [row["attempted_at"] for row in cur.fetchall()]
    if len(sweep) >= ADDRESS_MAX_FAILURES:
        return _seconds_until(sweep[-1] + FAILURE_WINDOW, now), "address"
    # This pair's failures since its last success from the same address.
    cur.execute("""
        SELECT count(*) AS failures, max(attempted_at) AS last_failure FROM login_attempts
        WHERE login = %(login)s AND source_address IS NOT DISTINCT FROM %(address)s
          AND NOT succeeded AND attempted_at > %(since)s
          AND attempted_at > coalesce((
              SELECT max(attempted_at) FROM login_attempts
              WHERE login = %(login)s AND source_address IS NOT DISTINCT FROM %(address)s
                AND succeeded), '-infinity')
    """, {"login": login, "address": address, "since": since})
    row = cur.fetchone()
    extra = row["failures"] - FREE_FAILURES
    if extra < 0:
        return 0, ""
    delay = min(FIRST_DELAY * 2 ** min(extra, 16), FAILURE_WINDOW)
    if row["last_failure"] + delay <= now:
        return 0, ""
    return _seconds_until(row["last_failure"] + delay, now), "login_address"


def _check_password(cur, *, login: str, password: str, address: str | None,
                    now: dt.datetime) -> dict | None:
    """The employee if this password is theirs, else None; the attempt is recorded for the
    throttle. TooManyAttempts (without looking at the password) while this address waits."""
    # Serialise attempts on one login, so parallel guesses cannot slip past the limit.
    cur.execute("SELECT pg_advisory_xact_lock(hashtext('login:' || %s))", (login,))
    address = throttle_source(address)
    retry_after, reason = _throttled_for(cur, login=login, address=address, now=now)
    if retry_after:
        SIGN_IN_THROTTLED.labels(reason=reason).inc()
        raise TooManyAttempts(retry_after, reason)
    cur.execute("""
        SELECT employee_id, login, name, role, tier, is_supervisor, is_account_admin, is_privacy_officer,
               password_hash, must_change_password,
               coalesce(must_change_password AND password_expires_at <= %s, false)
                   AS one_time_password_expired
        FROM employees WHERE login = %s
    """, (now, login))
    employee = cur.fetchone()
    # Unknown logins, and accounts without a usable password, are checked against a dummy hash:
    # every failure takes the time of a real verification, so none tells which it was.
    usable = employee is not None and not employee["password_hash"].startswith(UNUSABLE)
    valid = verify_password(password, employee["password_hash"] if usable else dummy_hash()) and usable
    # An expired one-time password counts as a failure for the throttle, though it was right.
    expired = valid and bool(employee["one_time_password_expired"])
    cur.execute("""
        INSERT INTO login_attempts (login, succeeded, attempted_at, source_address)
        VALUES (%s, %s, %s, %s)""", (login, valid and not expired, now, address))
    if not valid:
        return None
    if expired:
        return employee
    if needs_rehash(employee["password_hash"]):  # an older scheme or cost, upgraded while we can
        cur.execute("UPDATE employees SET password_hash = %s WHERE employee_id = %s",
                    (hash_password(password), employee["employee_id"]))
    return employee


PUBLIC_FIELDS = ("employee_id", "login", "name", "role", "tier", "is_supervisor", "is_account_admin",
                 "is_privacy_officer")


def sign_in(cur, *, login: str, password: str, ttl_hours: float, address: str | None,
            idle_timeout: dt.timedelta | None = None) -> dict:
    """Verify the password and open a session: {token, expires_at, employee}. The clear token
    exists only in this answer; the database keeps its hash. `address`: the client's, for the
    throttle (healthguard.addresses). The session lasts `ttl_hours` (a shift), or ends sooner
    once nothing used it for `idle_timeout` (None: no idle limit).
    {} for wrong credentials; {"one_time_password_expired": True} for a one-time password past
    its time; PasswordChangeRequired when the password was an account administrator's one-time
    reset (both said only once the password is right)."""
    now = clock.now()
    employee = _check_password(cur, login=login, password=password, address=address, now=now)
    if employee is None:
        return {}
    if employee["one_time_password_expired"]:
        return {"one_time_password_expired": True}
    if employee["must_change_password"]:
        raise PasswordChangeRequired()
    token = new_session_token()
    cur.execute("""
        INSERT INTO sessions (employee_id, token_hash, created_at, expires_at, idle_timeout)
        VALUES (%s, %s, %s, %s, %s)
        RETURNING expires_at
    """, (employee["employee_id"], token_hash(token), now, now + dt.timedelta(hours=ttl_hours),
          idle_timeout))
    expires_at = cur.fetchone()["expires_at"]
    cur.execute("UPDATE employees SET last_login = %s WHERE employee_id = %s",
                (now, employee["employee_id"]))
    return {"token": token, "expires_at": expires_at.isoformat(),
            "employee": {key: employee[key] for key in PUBLIC_FIELDS}}


class WeakPassword(ApiError):
    def __init__(self, reason: str):
        super().__init__(422, reason, field="new_password")


def change_password(cur, *, login: str, current_password: str, new_password: str,
                    address: str | None) -> str:
    """Replace a password, proven by the current one (also the way out of a forced change: the
    one-time password is the current one, once only, and not after it expired). Throttled and
    recorded like a sign-in. "changed", or "wrong" if the current password is wrong, or
    "expired" for a one-time password past its time; WeakPassword for a new password the rules
    refuse. Every open session of the clinician is revoked."""
    employee = _check_password(cur, login=login, password=current_password, address=address,
                               now=clock.now())
    if employee is None:
        return "wrong"
    if employee["one_time_password_expired"]:
        return "expired"
    reason = weakness(new_password, login=employee["login"], name=employee["name"])
    if reason:
        raise WeakPassword(reason)
    set_password(cur, employee_id=employee["employee_id"], password=new_password, must_change=False)
    return "changed"


def set_password(cur, *, employee_id: str, password: str, must_change: bool,
                 expires_at: dt.datetime | None = None) -> None:
    """Store a new password hash and sign the clinician out everywhere (a reset or a change means
    the old password may be known to someone else). `expires_at`: when a one-time password
    (must_change) stops working."""
    now = clock.now()
    cur.execute("""
        UPDATE employees SET password_hash = %s, must_change_password = %s, password_changed_at = %s,
                             password_expires_at = %s
        WHERE employee_id = %s""", (hash_password(password), must_change, now,
                                    expires_at if must_change else None, employee_id))
    cur.execute("UPDATE sessions SET revoked_at = %s WHERE employee_id = %s AND revoked_at IS NULL",
                (now, employee_id))


def sign_out(cur, *, session_id: int) -> None:
    """Revoke this session. The clinician stays signed in (and gets incidents) while another live
    session remains, e.g. on a second workstation: see signed_in_clinicians()."""
    cur.execute("UPDATE sessions SET revoked_at = %s WHERE session_id = %s AND revoked_at IS NULL",
                (clock.now(), session_id))


def session_times(cur, *, session_id: int) -> dict:
    """When the session ends at the latest, and after how many minutes unused it ends sooner."""
    cur.execute("""
        SELECT expires_at, extract(epoch FROM idle_timeout) / 60 AS idle_minutes
        FROM sessions WHERE session_id = %s""", (session_id,))
    row = cur.fetchone() or {"expires_at": None, "idle_minutes": None}
    return {"expires_at": row["expires_at"].isoformat() if row["expires_at"] else None,
            "idle_minutes": float(row["idle_minutes"]) if row["idle_minutes"] is not None else None}
