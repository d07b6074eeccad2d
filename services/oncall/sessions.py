"""Signing in and out: salted password hashes, server-side sessions, a limit on guessing."""
import datetime as dt
import math

from healthguard import clock
from healthguard.auth import new_session_token, token_hash
from healthguard.errors import ApiError
from healthguard.passwords import DUMMY_HASH, verify_password

MAX_FAILURES = 5
FAILURE_WINDOW = dt.timedelta(minutes=15)
# One message for an unknown login and a wrong password: a caller cannot tell which it was.
BAD_CREDENTIALS = "wrong login or password"


class TooManyAttempts(ApiError):
    def __init__(self, retry_after: int):
        super().__init__(429, "too many failed sign-in attempts for this login; try again later",
                         retry_after_seconds=retry_after)
        self.retry_after = retry_after


def _locked_for(cur, *, login: str, now: dt.datetime) -> int:
    """Seconds this login stays locked (0: not locked). Locked while the window holds
    MAX_FAILURES failures since the last success; it opens when the oldest of them ages out."""
    cur.execute("""
        SELECT attempted_at FROM login_attempts
        WHERE login = %(login)s AND NOT succeeded AND attempted_at > %(since)s
          AND attempted_at > coalesce((SELECT max(attempted_at) FROM login_attempts
                                       WHERE login = %(login)s AND succeeded), '-infinity')
        ORDER BY attempted_at DESC
        LIMIT %(n)s
    """, {"login": login, "since": now - FAILURE_WINDOW, "n": MAX_FAILURES})
    failures = [row["attempted_at"] for row in cur.fetchall()]
    if len(failures) < MAX_FAILURES:
        return 0
    return max(1, math.ceil((failures[-1] + FAILURE_WINDOW - now).total_seconds()))


def sign_in(cur, *, login: str, password: str, ttl_hours: float) -> dict:
    """Verify the password and open a session: {token, expires_at, employee}. The clear token
    exists only in this answer; the database keeps its hash."""
    # Serialise attempts on one login, so parallel guesses cannot slip past the limit.
    cur.execute("SELECT pg_advisory_xact_lock(hashtext('login:' || %s))", (login,))
    now = clock.now()
    retry_after = _locked_for(cur, login=login, now=now)
    if retry_after:
        raise TooManyAttempts(retry_after)
    cur.execute("""
        SELECT employee_id, login, name, role, tier, is_supervisor, password_hash
        FROM employees WHERE login = %s
    """, (login,))
    employee = cur.fetchone()
    # Unknown logins are checked against a dummy hash, so both failures take the same time.
    valid = verify_password(password, employee["password_hash"] if employee else DUMMY_HASH)
    cur.execute("INSERT INTO login_attempts (login, succeeded, attempted_at) VALUES (%s, %s, %s)",
                (login, bool(employee and valid), now))
    if not (employee and valid):
        return {}
    token = new_session_token()
    cur.execute("""
        INSERT INTO sessions (employee_id, token_hash, created_at, expires_at)
        VALUES (%s, %s, %s, %s)
        RETURNING expires_at
    """, (employee["employee_id"], token_hash(token), now, now + dt.timedelta(hours=ttl_hours)))
    expires_at = cur.fetchone()["expires_at"]
    cur.execute("UPDATE employees SET last_login = %s WHERE employee_id = %s",
                (now, employee["employee_id"]))
    del employee["password_hash"]
    return {"token": token, "expires_at": expires_at.isoformat(), "employee": dict(employee)}


def sign_out(cur, *, session_id: int) -> None:
    """Revoke this session. The clinician stays signed in (and gets incidents) while another live
    session remains, e.g. on a second workstation: see signed_in_clinicians()."""
    cur.execute("UPDATE sessions SET revoked_at = %s WHERE session_id = %s AND revoked_at IS NULL",
                (clock.now(), session_id))


def session_expiry(cur, *, session_id: int) -> dt.datetime | None:
    cur.execute("SELECT expires_at FROM sessions WHERE session_id = %s", (session_id,))
    row = cur.fetchone()
    return row["expires_at"] if row else None
