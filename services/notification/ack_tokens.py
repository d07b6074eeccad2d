"""The acknowledge token a push payload or an email link carries: short-lived, single-use, bound
to one ledger attempt (and through it to one person and one incident), never a session. Only its
SHA-256 is stored (delivery_attempts.ack_token_hash): a database read gives nobody a usable
token. POST /api/v1/channel-ack redeems it."""
import datetime
import hashlib
import secrets

DEFAULT_SECONDS = 900


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(cur, *, attempt_id: int, at: datetime.datetime, seconds: int = DEFAULT_SECONDS) -> str:
    """A fresh token for the attempt (replacing one issued for an earlier try of it, which never
    left us), valid for `seconds` from `at`."""
    token = secrets.token_urlsafe(24)
    cur.execute("""UPDATE delivery_attempts
                      SET ack_token_hash = %s, ack_token_expires_at = %s, ack_token_used_at = NULL
                    WHERE attempt_id = %s""",
                (token_hash(token), at + datetime.timedelta(seconds=seconds), attempt_id))
    return token


def redeem(cur, *, token: str, at: datetime.datetime) -> dict | None:
    """Use the token up: the attempt it was issued for (attempt_id, incident_id, employee_id,
    channel), or None when it is unknown, used or expired. The row stays locked until the
    caller's transaction ends, so two presses of one button redeem it once."""
    cur.execute("""UPDATE delivery_attempts
                      SET ack_token_used_at = %(at)s
                    WHERE ack_token_hash = %(hash)s AND ack_token_used_at IS NULL
                      AND ack_token_expires_at > %(at)s
                RETURNING attempt_id, incident_id, employee_id, channel""",
                {"hash": token_hash(token), "at": at})
    return cur.fetchone()


def was_issued(cur, *, token: str) -> bool:
    """Whether the token was ever issued (used or expired since): 410 rather than 404."""
    cur.execute("SELECT 1 FROM delivery_attempts WHERE ack_token_hash = %s", (token_hash(token),))
    return cur.fetchone() is not None


def peek(cur, *, token: str, at: datetime.datetime) -> dict | None:
    """The attempt of a token still usable, without using it up (the person opened it)."""
    cur.execute("""SELECT attempt_id, incident_id, employee_id, channel FROM delivery_attempts
                    WHERE ack_token_hash = %(hash)s AND ack_token_used_at IS NULL
                      AND ack_token_expires_at > %(at)s""", {"hash": token_hash(token), "at": at})
    return cur.fetchone()
