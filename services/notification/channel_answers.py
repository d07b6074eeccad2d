"""What the badge system and the telephony provider tell us, mapped onto the delivery ledger and
the incident: delivery and read reports, failures (falling through to the person's next step),
and the person's answer (Accept / 1: acknowledge; Reject / 2: decline, so the alarm moves on to
the next person of the routing order at once).

Ledger changes happen in the caller's transaction (`cur`). An answer that acknowledges or
declines is returned as an Action and carried out after the commit, over HTTP to incident
management (channel_ack.py), so no row lock is held across the call.

Callbacks are idempotent: the ledger never moves backwards (ledger.record), a second
acknowledgement is a no-op at incident management, and a signed request seen before (a replay)
is refused before anything changes (`first_sighting`).
"""
import dataclasses
import datetime
import hashlib
import logging

from . import ledger

log = logging.getLogger(__name__)

# Where an answer may come from, per ledger channel: the attempt's own channel only.
OPEN = ("sent", "delivered", "read")
RECEIPTS_KEPT = datetime.timedelta(days=7)


@dataclasses.dataclass(frozen=True)
class Action:
    """Acknowledge or decline the incident of a ledger attempt from `channel`, after the commit."""
    verb: str            # "acknowledge" | "reject"
    attempt_id: int
    channel: str


def first_sighting(cur, *, source: str, url: str, params, at: datetime.datetime) -> bool:
    """Record a signed request; False when this exact request (URL and parameters) was received
    before: a replay, refused with 403 and changing nothing. Twilio sends each callback once and
    only retries one we failed to take (whose transaction, and this row, rolled back)."""
    pairs = sorted(params.items(multi=True) if hasattr(params, "getlist") else params.items())
    digest = hashlib.sha256((url + "\0" + "\0".join(f"{k}={v}" for k, v in pairs)).encode()).hexdigest()
    cur.execute("""INSERT INTO webhook_receipts (source, digest, received_at) VALUES (%s, %s, %s)
                   ON CONFLICT DO NOTHING""", (source, digest, at))
    first = cur.rowcount == 1
    # A week on, no provider retries or replays matter: the attempt they name is long final.
    cur.execute("DELETE FROM webhook_receipts WHERE received_at < %s", (at - RECEIPTS_KEPT,))
    return first


def _attempt(cur, attempt_id: int) -> dict | None:
    cur.execute("""SELECT a.attempt_id, a.incident_id, a.employee_id, a.channel, a.status, a.provider_ref,
                          m.address
                   FROM delivery_attempts a LEFT JOIN contact_methods m USING (contact_method_id)
                   WHERE a.attempt_id = %s FOR UPDATE OF a""", (attempt_id,))
    return cur.fetchone()


def _fail(cur, *, attempt_id: int, reason: str, at: datetime.datetime) -> dict | None:
    """A failure reported after the send: record it, and bring the person's next step forward
    unless the attempt had already reached a final status (acknowledged from it, say)."""
    cur.execute("SELECT status FROM delivery_attempts WHERE attempt_id = %s", (attempt_id,))
    before = cur.fetchone()
    row = ledger.record(cur, attempt_id=attempt_id, status="failed", at=at, reason=reason)
    if row is not None and before["status"] not in ledger.FINAL and row["status"] == "failed":
        if not ledger.fall_through(cur, attempt_id=attempt_id, at=at):
            log.warning("an off-tab attempt failed and the person has no further step",
                        extra={"attempt_id": attempt_id, "incident_id": row["incident_id"]})
        cur.execute("NOTIFY delivery_attempts_due")
    return row


# --------------------------------------------------------------------------- badges (WCTP)
def badge_answer(cur, *, answer, at: datetime.datetime) -> Action | None:
    """One wctp-StatusInfo or wctp-MessageReply (channels/wctp.py Answer). Unknown message ids
    and replies from another device than the attempt's are logged and ignored."""
    if answer.message_id is None:
        log.warning("WCTP answer without a message id of ours", extra={"wctp_kind": answer.kind})
        return None
    attempt = _attempt(cur, answer.message_id)
    if attempt is None or attempt["channel"] != "badge":
        log.warning("WCTP answer for an unknown message", extra={"attempt_id": answer.message_id})
        return None
    if answer.kind == "status":
        if answer.status == "failed":
            _fail(cur, attempt_id=attempt["attempt_id"], at=at,
                  reason=f"WCTP {answer.code}: {answer.text}"[:200])
        elif answer.status in ("delivered", "read"):
            ledger.record(cur, attempt_id=attempt["attempt_id"], status=answer.status, at=at)
        return None  # QUEUED: nothing to record beyond 'sent'
    if answer.device_id and attempt["address"] and answer.device_id != attempt["address"]:
        log.warning("WCTP reply from another device than the message's recipient",
                    extra={"attempt_id": attempt["attempt_id"]})
        return None
    verb = {"Accept": "acknowledge", "Reject": "reject"}.get(answer.choice)
    if verb is None:
        log.info("WCTP reply that is neither Accept nor Reject", extra={"attempt_id": attempt["attempt_id"]})
        return None
    # A reply proves the message reached and was read by the person.
    ledger.record(cur, attempt_id=attempt["attempt_id"], status="read", at=at)
    return Action(verb, attempt["attempt_id"], "badge")


# --------------------------------------------------------------------------- SMS and voice
def sms_reply(cur, *, from_number: str, body: str, at: datetime.datetime) -> tuple[Action | None, str | None]:
    """An SMS from a phone: `1` acknowledges, `2` declines; a code (the attempt id from our SMS)
    may follow to pick one of several open alarms, otherwise the newest open one is meant.
    Returns the action and the text to answer with (None: say nothing). Numbers that are no
    verified phone of anyone's are ignored and logged (the number is not logged in full)."""
    cur.execute("""SELECT 1 FROM contact_methods WHERE kind = 'phone' AND address = %s
                   AND verified_at IS NOT NULL LIMIT 1""", (from_number,))
    if cur.fetchone() is None:
        log.warning("SMS from an unknown number ignored", extra={"from_hint": "***" + from_number[-2:]})
        return None, None
    words = body.strip().split()
    key = words[0] if words else ""
    if key not in ("1", "2"):
        return None, "Reply 1 to acknowledge or 2 to decline, with the code from the alarm."
    code = words[1] if len(words) > 1 else None
    if code is not None and not (code.isascii() and code.isdigit() and len(code) <= 18):
        code = None
    cur.execute("""
        SELECT a.attempt_id, a.incident_id FROM delivery_attempts a
        JOIN contact_methods m USING (contact_method_id)
        WHERE m.kind = 'phone' AND m.address = %(number)s AND a.channel = 'sms'
          AND a.status = ANY(%(open)s) AND (%(code)s::bigint IS NULL OR a.attempt_id = %(code)s::bigint)
        ORDER BY a.sent_at DESC NULLS LAST, a.attempt_id DESC LIMIT 1
        FOR UPDATE OF a""", {"number": from_number, "open": list(OPEN), "code": code})
    row = cur.fetchone()
    if row is None:
        return None, "No open alarm of yours matches that reply."
    ledger.record(cur, attempt_id=row["attempt_id"], status="read", at=at)
    verb = "acknowledge" if key == "1" else "reject"
    return Action(verb, row["attempt_id"], "sms"), None


def voice_key(cur, *, attempt_id: int, digits: str, at: datetime.datetime) -> Action | None:
    """The key pressed during our call (the Gather's action): 1 acknowledges, 2 declines."""
    attempt = _attempt(cur, attempt_id)
    if attempt is None or attempt["channel"] != "voice":
        return None
    if digits not in ("1", "2"):
        return None
    ledger.record(cur, attempt_id=attempt_id, status="read", at=at)
    return Action("acknowledge" if digits == "1" else "reject", attempt_id, "voice")


# Twilio's message statuses and call statuses, as the ledger sees them.
MESSAGE_STATUS = {"delivered": "delivered", "read": "read", "undelivered": "failed", "failed": "failed"}
CALL_FAILED = {"busy": "the line was busy", "no-answer": "the call was not answered",
               "failed": "the call could not be placed", "canceled": "the call was cancelled"}


def provider_status(cur, *, attempt_id: int, params, at: datetime.datetime) -> None:
    """A status callback of one of our messages or calls (its attempt id is in the signed URL)."""
    attempt = _attempt(cur, attempt_id)
    if attempt is None or attempt["channel"] not in ("sms", "voice"):
        log.warning("status callback for an unknown attempt", extra={"attempt_id": attempt_id})
        return
    if attempt["channel"] == "sms":
        status = MESSAGE_STATUS.get(params.get("MessageStatus", ""))
        if status == "failed":
            _fail(cur, attempt_id=attempt_id, at=at,
                  reason=f"SMS {params.get('MessageStatus')} (error {params.get('ErrorCode') or '-'})")
        elif status:
            ledger.record(cur, attempt_id=attempt_id, status=status, at=at)
        return
    call_status = params.get("CallStatus", "")
    answered_by = params.get("AnsweredBy", "")
    if answered_by.startswith("machine") or answered_by == "fax":
        # Voicemail is not the person: fail at once and move on (the call is ended by Twilio's
        # own flow; the later 'completed' changes nothing, the attempt being final).
        _fail(cur, attempt_id=attempt_id, reason="voicemail answered the call", at=at)
    elif call_status in CALL_FAILED:
        _fail(cur, attempt_id=attempt_id, reason=CALL_FAILED[call_status], at=at)
    elif call_status == "in-progress":
        ledger.record(cur, attempt_id=attempt_id, status="delivered", at=at)
    elif call_status == "completed" and attempt["status"] in ("sending", "sent", "delivered"):
        # The call ended and no key was pressed (a pressed key recorded 'read' first: Twilio
        # posts the Gather's action before the call's completion).
        _fail(cur, attempt_id=attempt_id, reason="the call ended without a key pressed", at=at)
