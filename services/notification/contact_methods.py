"""A clinician's contact methods: email (verified by a code sent to it), Web Push subscriptions
(one per browser or phone, verified by the browser handing it over), and phone and badge, which
issue 23 verifies and uses. Secrets (the push keys) are read only by the sending task; the API
never answers them, and answers a supervisor every address masked."""
# ruff: noqa: S608 -- the f-strings below only format in this module's constant column lists;
# every value is a query parameter.
import base64
import binascii
import datetime
import hashlib
import hmac
import re
import secrets
from urllib.parse import urlsplit

from healthguard.errors import ApiError

KINDS = ("email", "push", "phone", "badge")
# What a rule step may name: a method kind, or how to use a phone (issue 23: sms or voice; a
# step of kind phone, or naming a phone method, texts it). STEP_CHANNEL: the ledger channel.
STEP_KINDS = (*KINDS, "sms", "voice")
METHOD_KIND = {"sms": "phone", "voice": "phone"}
STEP_CHANNEL = {"phone": "sms"}
OFF_TAB_KINDS = KINDS  # every kind reaches a person away from the open tab
CODE_SECONDS = 900
MAX_CODE_TRIES = 5
MAX_METHODS = 20
EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")
PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")          # E.164
BADGE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")         # a WCTP recipient id
COLUMNS = """contact_method_id, employee_id, kind, label, address, verified_at, disabled_at,
             disabled_reason, created_at"""


def mask(kind: str, address: str) -> str:
    """What a supervisor (and the ledger) may see of an address."""
    if kind == "email":
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    if kind == "push":
        return urlsplit(address).hostname or "push service"
    return f"***{address[-2:]}" if len(address) > 4 else "***"


def as_json(row: dict, *, owner: bool) -> dict:
    """A method as its owner sees it (their email, phone or badge in full; a push endpoint only
    by its service, being a capability URL) or as a supervisor does (masked)."""
    shown = row["address"] if owner and row["kind"] != "push" else mask(row["kind"], row["address"])
    return {"contact_method_id": row["contact_method_id"], "employee_id": row["employee_id"],
            "kind": row["kind"], "label": row["label"], "address": shown,
            "verified": row["verified_at"] is not None and row["disabled_at"] is None,
            "verified_at": _iso(row["verified_at"]), "disabled_at": _iso(row["disabled_at"]),
            "disabled_reason": row["disabled_reason"], "created_at": _iso(row["created_at"])}


def _iso(value):
    return value.isoformat() if value else None


def list_for(cur, *, employee_id: str) -> list[dict]:
    cur.execute(f"SELECT {COLUMNS} FROM contact_methods WHERE employee_id = %s ORDER BY contact_method_id",
                (employee_id,))
    return cur.fetchall()


def get_own(cur, *, employee_id: str, contact_method_id: int, lock: bool = False) -> dict:
    """One of the person's methods; 404 for another person's (whether it exists is not revealed)."""
    cur.execute(f"""SELECT {COLUMNS}, verification_code_hash, verification_expires_at, verification_tries
                    FROM contact_methods WHERE contact_method_id = %s AND employee_id = %s
                    {'FOR UPDATE' if lock else ''}""", (contact_method_id, employee_id))
    row = cur.fetchone()
    if row is None:
        raise ApiError(404, f"you have no contact method {contact_method_id}")
    return row


def _room_for_one_more(cur, employee_id: str) -> None:
    cur.execute("SELECT count(*) AS n FROM contact_methods WHERE employee_id = %s", (employee_id,))
    if cur.fetchone()["n"] >= MAX_METHODS:
        raise ApiError(409, f"at most {MAX_METHODS} contact methods per person: delete one first")


def _code_hash(contact_method_id: int, code: str) -> str:
    return hashlib.sha256(f"{contact_method_id}:{code}".encode()).hexdigest()


def add_email(cur, *, employee_id: str, address: str, label: str, now: datetime.datetime) -> tuple[dict, str]:
    """Add (or re-add) an email address, unverified, with a fresh verification code: (row, code).
    The caller sends the code to the address after the commit."""
    address = address.strip()
    if not EMAIL.match(address):
        raise ApiError(422, "address must be an email address", field="address")
    _room_for_one_more(cur, employee_id)
    cur.execute(f"""
        INSERT INTO contact_methods (employee_id, kind, label, address, created_at)
        VALUES (%s, 'email', %s, %s, %s)
        ON CONFLICT (employee_id, kind, address) DO UPDATE SET label = EXCLUDED.label
        RETURNING {COLUMNS}""", (employee_id, label, address, now))
    row = cur.fetchone()
    if row["verified_at"] is not None:
        return row, ""
    return row, new_code(cur, contact_method_id=row["contact_method_id"], now=now)


def new_code(cur, *, contact_method_id: int, now: datetime.datetime) -> str:
    code = f"{secrets.randbelow(10**6):06d}"
    cur.execute("""UPDATE contact_methods
                      SET verification_code_hash = %s, verification_expires_at = %s, verification_tries = 0
                    WHERE contact_method_id = %s""",
                (_code_hash(contact_method_id, code), now + datetime.timedelta(seconds=CODE_SECONDS),
                 contact_method_id))
    return code


def verify(cur, *, employee_id: str, contact_method_id: int, code: str, now: datetime.datetime) -> dict:
    """Check the code sent to the address; the method is usable from then on."""
    row = get_own(cur, employee_id=employee_id, contact_method_id=contact_method_id, lock=True)
    if row["verified_at"] is not None:
        return row
    if (row["verification_code_hash"] is None or row["verification_expires_at"] <= now
            or row["verification_tries"] >= MAX_CODE_TRIES):
        raise ApiError(410, "the code expired or was tried too often: ask for a new one "
                            f"(POST /api/v1/contact-methods/{contact_method_id}/test)")
    if not hmac.compare_digest(row["verification_code_hash"], _code_hash(contact_method_id, code.strip())):
        cur.execute("UPDATE contact_methods SET verification_tries = verification_tries + 1 "
                    "WHERE contact_method_id = %s", (contact_method_id,))
        cur.connection.commit()  # the failed try counts even though the request fails
        raise ApiError(422, "the code is not the one sent", field="code")
    cur.execute(f"""UPDATE contact_methods
                       SET verified_at = %s, verification_code_hash = NULL, verification_expires_at = NULL
                     WHERE contact_method_id = %s RETURNING {COLUMNS}""", (now, contact_method_id))
    return cur.fetchone()


def _b64url(value: str, length: int, field: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != length or (length == 65 and raw[0] != 4):
        raise ApiError(422, f"subscription.keys.{field} is not a Web Push key",
                       field=f"subscription.keys.{field}")
    return value


def add_push(cur, *, employee_id: str, endpoint: str, p256dh: str, auth: str, label: str,
             now: datetime.datetime, allow_local_http: bool = False) -> dict:
    """Add the browser's push subscription (PushSubscription.toJSON()), verified at once: the
    browser proved it. The same subscription registered by someone else before (a shared
    workstation or phone) is theirs no more: alarms for one person must not reach another's
    screen."""
    parts = urlsplit(endpoint)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    local_http = allow_local_http and local and parts.scheme == "http"
    if not (parts.scheme == "https" and parts.hostname) and not local_http:
        raise ApiError(422, "subscription.endpoint must be an https:// push service URL",
                       field="subscription.endpoint")
    if local and not allow_local_http:
        raise ApiError(422, "subscription.endpoint must be a push service, not this host",
                       field="subscription.endpoint")
    secret = {"p256dh": _b64url(p256dh, 65, "p256dh"), "auth": _b64url(auth, 16, "auth")}
    cur.execute("DELETE FROM contact_methods WHERE kind = 'push' AND address = %s AND employee_id <> %s",
                (endpoint, employee_id))
    _room_for_one_more(cur, employee_id)
    cur.execute(f"""
        INSERT INTO contact_methods (employee_id, kind, label, address, secret, verified_at, created_at)
        VALUES (%s, 'push', %s, %s, %s, %s, %s)
        ON CONFLICT (employee_id, kind, address) DO UPDATE
        SET secret = EXCLUDED.secret, label = EXCLUDED.label, verified_at = EXCLUDED.verified_at,
            disabled_at = NULL, disabled_reason = NULL
        RETURNING {COLUMNS}""", (employee_id, label, endpoint, _json(secret), now, now))
    return cur.fetchone()


def _json(value):
    import psycopg2.extras
    return psycopg2.extras.Json(value)


def add_placeholder(cur, *, employee_id: str, kind: str, address: str, label: str,
                    now: datetime.datetime) -> dict:
    """A phone number (E.164) or badge id, kept unverified until issue 23's channels verify it."""
    address = address.strip()
    if not (PHONE if kind == "phone" else BADGE).match(address):
        raise ApiError(422, "address must be an E.164 number (+441632960123)" if kind == "phone"
                       else "address must be a badge id (letters, digits, . _ : -)", field="address")
    _room_for_one_more(cur, employee_id)
    cur.execute(f"""
        INSERT INTO contact_methods (employee_id, kind, label, address, created_at)
        VALUES (%s, %s, %s, %s, %s)
        ON CONFLICT (employee_id, kind, address) DO UPDATE SET label = EXCLUDED.label
        RETURNING {COLUMNS}""", (employee_id, kind, label, address, now))
    return cur.fetchone()


def delete(cur, *, employee_id: str, contact_method_id: int) -> None:
    cur.execute("DELETE FROM contact_methods WHERE contact_method_id = %s AND employee_id = %s",
                (contact_method_id, employee_id))
    if cur.rowcount == 0:
        raise ApiError(404, f"you have no contact method {contact_method_id}")


def forget_gone(cur, *, contact_method_id: int) -> None:
    """The provider says this address no longer exists (push 404/410): delete it. The ledger
    keeps its rows (contact_method_id set to NULL, the masked address kept)."""
    cur.execute("DELETE FROM contact_methods WHERE contact_method_id = %s", (contact_method_id,))


