"""Periodic task of the notification worker: send the ledger attempts that are due.

Each attempt goes through three steps, each its own transaction or none:
1. claim: the due 'queued' rows are locked FOR UPDATE SKIP LOCKED (two workers never take the
   same row), checked against the incident (does the alarm still page this person? if not the
   row is cancelled), given a fresh single-use ack token and marked 'sending' with sending_at,
   and committed;
2. send: the channel sends it, the attempt id as its idempotency key, outside any transaction
   (no row lock held across a network call);
3. record: sent / delivered; a transient failure goes back to 'queued' with an exponential
   back-off (SEND_RETRY_SECONDS, doubling) until SEND_MAX_TRIES, then 'dead_letter'; a permanent
   one is 'failed'. Both of those bring the person's next step forward at once (fall_through).

A worker killed between 1 and 3 leaves its row 'sending'. Nobody knows whether the request left
it: the provider may have it. After SEND_LEASE_SECONDS (longer than any send may take) another
worker takes the row over: a channel whose provider deduplicates on the attempt id
(`resend_safe`, e.g. WCTP's MessageID) sends it again with the same id; push and email do not
(a push service delivers a second message with the same Topic once the first was delivered; a
mail relay delivers a second copy with the same Message-ID), so for them the row goes to
'dead_letter' ("outcome unknown") and the person's next step is brought forward. Trading a
possible early second channel for a certain duplicate on the same one: a clinician gets the
alarm by email a minute early rather than the same push twice, and is never left unreached.
"""
import datetime
import logging
from concurrent.futures import ThreadPoolExecutor

from healthguard import clock
from healthguard.incident_events import paged_now
from healthguard.tasks import PeriodicTask

from . import ack_tokens, channels, contact_methods, ledger, metrics
from .channels.base import Attempt, SendResult
from .message_text import alarm_for
from .schedule_rule_steps import DUE_CHANNEL

log = logging.getLogger(__name__)

class SendDueAttempts(PeriodicTask):
    name = "send-due-attempts"

    def __init__(self, *, db, settings):
        """`settings`: the notification service's (SEND_*, ACK_TOKEN_SECONDS, NOTIFY_IDENTIFYING_DATA)."""
        self.lease = settings.SEND_LEASE_SECONDS
        super().__init__(interval=settings.SEND_INTERVAL_SECONDS,
                         wake_on=(settings.DATABASE_URL, DUE_CHANNEL))
        self.db = db
        self.max_tries = settings.SEND_MAX_TRIES
        self.retry_seconds = settings.SEND_RETRY_SECONDS
        self.concurrency = settings.SEND_CONCURRENCY
        self.token_seconds = settings.ACK_TOKEN_SECONDS
        self.identifying = settings.identifying_data
        self._pool = None

    def _before_start(self) -> None:
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="send-attempt")

    def _after_stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run_once(self) -> int:
        self.take_over_abandoned()
        if not self._anything_due():
            return 0  # one connection a tick while idle, not one per sender
        # SEND_CONCURRENCY senders, each claiming one due attempt at a time until none is left:
        # a slow provider holds up one sender, not a batch.
        return sum(self._pool.map(lambda _: self._send_while_due(), range(self.concurrency)))

    def _anything_due(self) -> bool:
        with self.db.transaction() as cur:
            cur.execute("""SELECT 1 FROM delivery_attempts
                           WHERE status = 'queued' AND next_try_at <= %s LIMIT 1""", (clock.now(),))
            return cur.fetchone() is not None

    def _send_while_due(self) -> int:
        sent = 0
        while not self._stopping.is_set():
            claimed = self.claim_due(limit=1)
            if not claimed:
                return sent
            sent += sum(self.send_and_record(one) for one in claimed)
        return sent

    # --- 1. claim --------------------------------------------------------------------------
    def claim_due(self, *, limit: int) -> list[tuple[Attempt, dict]]:
        now = clock.now()
        claimed = []
        with self.db.transaction() as cur:
            cur.execute("""
                SELECT a.attempt_id, a.incident_id, a.employee_id, a.channel, a.rule_step, a.due_at,
                       a.attempts, a.contact_method_id, m.address, m.secret,
                       i.status AS incident_status, i.assigned_to, i.unowned_since, i.last_resort_paged
                FROM delivery_attempts a
                JOIN incidents i USING (incident_id)
                LEFT JOIN contact_methods m USING (contact_method_id)
                WHERE a.status = 'queued' AND a.next_try_at <= %s
                ORDER BY a.next_try_at, a.attempt_id
                LIMIT %s
                FOR UPDATE OF a SKIP LOCKED""", (now, limit))
            for row in cur.fetchall():
                incident = {"status": row["incident_status"], "assigned_to": row["assigned_to"],
                            "unowned_since": row["unowned_since"],
                            "last_resort_paged": row["last_resort_paged"]}
                if row["employee_id"] not in paged_now(incident):
                    # The acknowledgement (or hand-over) is committed but its event not stored yet.
                    ledger.cancel_pending(cur, incident_id=row["incident_id"], employee_id=row["employee_id"],
                                          at=now, reason="no longer paged")
                    continue
                if row["address"] is None:  # the method was deleted after the step was queued
                    ledger.record(cur, attempt_id=row["attempt_id"], status="failed", at=now,
                                  reason="contact method deleted")
                    self._count(row["channel"], "failed")
                    ledger.fall_through(cur, attempt_id=row["attempt_id"], at=now)
                    continue
                token = ack_tokens.issue(cur, attempt_id=row["attempt_id"], at=now,
                                         seconds=self.token_seconds)
                cur.execute("""UPDATE delivery_attempts
                                  SET status = 'sending', sending_at = %s, attempts = attempts + 1
                                WHERE attempt_id = %s""", (now, row["attempt_id"]))
                attempt = Attempt(id=row["attempt_id"], incident_id=row["incident_id"],
                                  employee_id=row["employee_id"], channel=row["channel"],
                                  address=row["address"],
                                  secret=row["secret"], rule_step=row["rule_step"], ack_token=token,
                                  contact_method_id=row["contact_method_id"])
                alarm = alarm_for(cur, incident_id=row["incident_id"], identifying=self.identifying)
                claimed.append((attempt, {"due_at": row["due_at"], "attempts": row["attempts"] + 1,
                                          "alarm": alarm}))
        return claimed

    # --- 2. send, 3. record -----------------------------------------------------------------
    def send_and_record(self, claimed: tuple[Attempt, dict]) -> int:
        attempt, meta = claimed
        alarm = meta["alarm"]
        try:
            if alarm is None:
                result = SendResult("failed", reason="incident gone")
            else:
                try:
                    channel = channels.for_kind(attempt.channel)
                except LookupError:
                    result = SendResult("failed", reason=f"no {attempt.channel} channel configured")
                else:
                    latency = (clock.now() - meta["due_at"]).total_seconds()
                    metrics.DELIVERY_SEND_LATENCY.labels(attempt.channel).observe(max(latency, 0.0))
                    try:
                        result = channel.send(attempt, alarm)
                    except Exception as exc:  # a channel's bug or an unexpected answer: transient
                        log.exception("channel raised", extra={"channel": attempt.channel})
                        result = SendResult("failed", reason=f"{type(exc).__name__}"[:200], retry=True)
            self.record(attempt, result, tries=meta["attempts"])
            return int(result.status != "failed")
        except Exception:
            # The record did not commit: the row stays 'sending' and the lease decides.
            log.exception("could not record a send", extra={"attempt_id": attempt.id})
            return 0

    def record(self, attempt: Attempt, result: SendResult, *, tries: int) -> None:
        now = clock.now()
        with self.db.transaction() as cur:
            if result.status != "failed":
                ledger.record(cur, attempt_id=attempt.id, status=result.status, at=now,
                              provider_ref=result.provider_ref)
                self._count(attempt.channel, result.status)
                return
            metrics.DELIVERY_FAILURES.labels(attempt.channel).inc()
            if result.retry and tries < self.max_tries:
                back_off = self.retry_seconds * 2 ** (tries - 1)
                ledger.retry_later(cur, attempt_id=attempt.id, at=now, reason=result.reason,
                                   next_try_at=now + datetime.timedelta(seconds=back_off))
                self._count(attempt.channel, "retry")
                return
            status = "dead_letter" if result.retry else "failed"
            reason = f"{result.reason} (after {tries} tries)" if result.retry else result.reason
            ledger.record(cur, attempt_id=attempt.id, status=status, at=now, reason=reason)
            self._count(attempt.channel, status)
            if result.gone and attempt.contact_method_id is not None:
                contact_methods.forget_gone(cur, contact_method_id=attempt.contact_method_id)
            self._fall_through(cur, attempt, now)
            cur.execute(f"NOTIFY {DUE_CHANNEL}")

    def _fall_through(self, cur, attempt: Attempt, now) -> None:
        brought = ledger.fall_through(cur, attempt_id=attempt.id, at=now)
        if not brought:
            log.warning("an off-tab attempt failed and the person has no further step",
                        extra={"attempt_id": attempt.id, "employee_id": attempt.employee_id,
                               "incident_id": attempt.incident_id})

    # --- abandoned sends --------------------------------------------------------------------
    def take_over_abandoned(self) -> int:
        """'sending' rows older than the lease: their worker died mid-send (see the module's
        docstring for why push and email are not sent again)."""
        now = clock.now()
        with self.db.transaction() as cur:
            cur.execute("""SELECT attempt_id, channel, employee_id, incident_id FROM delivery_attempts
                           WHERE status = 'sending' AND sending_at < %s
                           FOR UPDATE SKIP LOCKED""", (now - datetime.timedelta(seconds=self.lease),))
            rows = cur.fetchall()
            for row in rows:
                try:
                    resend = getattr(channels.for_kind(row["channel"]), "resend_safe", False)
                except LookupError:
                    resend = False
                if resend:
                    cur.execute("UPDATE delivery_attempts SET status = 'queued', next_try_at = %s, "
                                "reason = 'sender stopped mid-send: sent again with the same id' "
                                "WHERE attempt_id = %s", (now, row["attempt_id"]))
                    continue
                ledger.record(cur, attempt_id=row["attempt_id"], status="dead_letter", at=now,
                              reason="outcome unknown: the sender stopped mid-send; not sent again "
                                     "(the provider does not deduplicate)")
                self._count(row["channel"], "dead_letter")
                ledger.fall_through(cur, attempt_id=row["attempt_id"], at=now)
        return len(rows)

    def _count(self, channel: str, result: str) -> None:
        metrics.DELIVERY_ATTEMPTS.labels(channel, result).inc()
