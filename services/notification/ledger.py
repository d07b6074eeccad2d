"""The delivery ledger: one delivery_attempts row per attempt to reach one person about one
incident by one contact method (migration 0018). Every function takes the open cursor of the
caller's transaction and the instant (`at`, from healthguard.clock.now()) as keyword arguments:
the sending task, the event consumer and the channel webhooks (issue 23) write the ledger only
through these, so the meaning of each status lives here once.

Statuses: queued -> sending -> sent | delivered -> read -> acknowledged. failed: for good (the
person's next step was brought forward). dead_letter: retries exhausted or the outcome unknown
(a sender died mid-send on a channel without provider deduplication), also fallen through.
cancelled: acknowledged, resolved or no longer theirs before it went out. rejected: declined
from it (issue 23).
"""
# ruff: noqa: S608 -- the f-strings below only format in this module's constant column lists;
# every value is a query parameter.
from datetime import datetime

STATUSES = ("queued", "sending", "sent", "delivered", "read", "failed", "dead_letter",
            "cancelled", "acknowledged", "rejected")
# The column each status stamps (queued_at is stamped at scheduling, sending_at when claimed).
STATUS_TIMES = {"sent": "sent_at", "delivered": "delivered_at", "read": "read_at",
                "failed": "failed_at", "dead_letter": "failed_at", "cancelled": "cancelled_at",
                "acknowledged": "acknowledged_at", "rejected": "acknowledged_at"}
# Statuses a later report may still move forward, and the order they move in: a late "sent"
# never overwrites "delivered", a provider's "read" never overwrites "acknowledged".
PROGRESS = ("sending", "sent", "delivered", "read", "acknowledged")
FINAL = ("failed", "dead_letter", "cancelled", "acknowledged", "rejected")
# Not yet out: what acknowledging (or the alarm moving away) cancels at once.
PENDING = ("queued",)

ATTEMPT_COLUMNS = """attempt_id, incident_id, employee_id, contact_method_id, channel, address_hint,
    assignment_key, assigned_at, rule_step, due_at, status, reason, provider_ref, queued_at,
    sending_at, sent_at, delivered_at, read_at, failed_at, cancelled_at, acknowledged_at,
    attempts, next_try_at"""


def record(cur, *, attempt_id: int, status: str, at: datetime, reason: str | None = None,
           provider_ref: str | None = None) -> dict | None:
    """Record what became of an attempt: a send's result, a provider's delivery or read report,
    a failure. Stamps the status's time column. A report never moves an attempt backwards
    (PROGRESS order) nor out of a final status, except that a provider's report may still stamp
    its own time on an acknowledged row. Returns the row, or None when there is no such attempt.
    Does NOT fall through: after a failure the caller calls fall_through()."""
    if status not in STATUS_TIMES:
        raise ValueError(f"cannot record status {status!r} (one of {sorted(STATUS_TIMES)})")
    column = STATUS_TIMES[status]
    cur.execute("SELECT status FROM delivery_attempts WHERE attempt_id = %s FOR UPDATE", (attempt_id,))
    row = cur.fetchone()
    if row is None:
        return None
    current = row["status"]
    moves = _moves_forward(current, status)
    cur.execute(
        f"""UPDATE delivery_attempts
               SET status = CASE WHEN %(moves)s THEN %(status)s ELSE status END,
                   {column} = COALESCE({column}, %(at)s),
                   reason = COALESCE(%(reason)s, reason),
                   provider_ref = COALESCE(%(provider_ref)s, provider_ref)
             WHERE attempt_id = %(attempt_id)s
         RETURNING {ATTEMPT_COLUMNS}""",
        {"moves": moves, "status": status, "at": at, "reason": reason, "provider_ref": provider_ref,
         "attempt_id": attempt_id})
    return cur.fetchone()


def _moves_forward(current: str, new: str) -> bool:
    if current in FINAL:
        return False
    if new in PROGRESS and current in PROGRESS:
        return PROGRESS.index(new) > PROGRESS.index(current)
    return True


def fall_through(cur, *, attempt_id: int, at: datetime) -> list[dict]:
    """The attempt failed for good: bring the person's next step for the same assignment
    forward to `at` (its queued rows with the lowest rule_step above this one), so a failed
    channel is followed by the next one at once, never silently. A step that failed before it
    was due (no usable method, recorded when scheduled) brings the next one forward to its own
    due time, not earlier: the steps before it still go first. Returns the rows brought
    forward; none when this was their last step (the caller logs and counts that: the alarm
    still sounds on the open tab and escalation runs on its own timer)."""
    cur.execute(
        """WITH failed AS (
               SELECT incident_id, employee_id, assignment_key, rule_step,
                      GREATEST(due_at, %(at)s) AS now_due
                 FROM delivery_attempts WHERE attempt_id = %(attempt_id)s),
           next_step AS (
               SELECT min(a.rule_step) AS rule_step
                 FROM delivery_attempts a JOIN failed f USING (incident_id, employee_id, assignment_key)
                WHERE a.status = 'queued' AND a.rule_step > f.rule_step)
           UPDATE delivery_attempts a
              SET due_at = LEAST(a.due_at, f.now_due), next_try_at = LEAST(a.next_try_at, f.now_due)
             FROM failed f, next_step n
            WHERE a.incident_id = f.incident_id AND a.employee_id = f.employee_id
              AND a.assignment_key = f.assignment_key AND a.rule_step = n.rule_step
              AND a.status = 'queued'
        RETURNING """ + ", ".join(f"a.{c.strip()}" for c in ATTEMPT_COLUMNS.split(",")),
        {"attempt_id": attempt_id, "at": at})
    return cur.fetchall()


def cancel_pending(cur, *, incident_id: int, at: datetime, reason: str,
                   employee_id: str | None = None, except_employees=()) -> int:
    """Cancel the attempts of an incident not yet out (queued): all of them, those of one
    person, or all but those of `except_employees` (who the alarm still pages). Returns how many.
    An attempt already 'sending' is left to finish: it is on its way."""
    cur.execute(
        """UPDATE delivery_attempts
              SET status = 'cancelled', cancelled_at = %(at)s, reason = %(reason)s
            WHERE incident_id = %(incident_id)s AND status = 'queued'
              AND (%(employee_id)s::text IS NULL OR employee_id = %(employee_id)s)
              AND NOT (employee_id = ANY(%(keep)s::text[]))""",
        {"incident_id": incident_id, "at": at, "reason": reason, "employee_id": employee_id,
         "keep": list(except_employees)})
    return cur.rowcount


def acknowledged_from(cur, *, attempt_id: int, channel: str, at: datetime) -> dict | None:
    """The person acknowledged the incident from this attempt (its push action, email link,
    badge key, SMS reply or voice key): mark it acknowledged and cancel their remaining steps
    for the incident at once. Returns the attempt row, or None when there is no such attempt."""
    row = record(cur, attempt_id=attempt_id, status="acknowledged", at=at,
                 reason=f"acknowledged from {channel}")
    if row is not None:
        cancel_pending(cur, incident_id=row["incident_id"], employee_id=row["employee_id"], at=at,
                       reason=f"acknowledged from {channel}")
    return row


def rejected_from(cur, *, attempt_id: int, channel: str, at: datetime) -> dict | None:
    """The person declined the incident from this attempt: mark it rejected and cancel their
    remaining steps (incident management moves the alarm on; its event schedules the next
    person's steps)."""
    row = record(cur, attempt_id=attempt_id, status="rejected", at=at, reason=f"declined from {channel}")
    if row is not None:
        cancel_pending(cur, incident_id=row["incident_id"], employee_id=row["employee_id"], at=at,
                       reason=f"declined from {channel}")
    return row


def for_incident(cur, *, incident_id: int) -> list[dict]:
    """The ledger of an incident, oldest first, with every status time (GET /api/v1/deliveries)."""
    cur.execute(f"""SELECT {ATTEMPT_COLUMNS} FROM delivery_attempts
                     WHERE incident_id = %s ORDER BY queued_at, rule_step, attempt_id""", (incident_id,))
    return cur.fetchall()


def retry_later(cur, *, attempt_id: int, at: datetime, next_try_at: datetime, reason: str) -> dict | None:
    """A transient failure (provider down, timeout): back to queued, tried again at
    `next_try_at` with the same attempt id. Only from 'sending' (an acknowledgement meanwhile
    wins)."""
    cur.execute(f"""UPDATE delivery_attempts
                       SET status = 'queued', next_try_at = %(next)s, reason = %(reason)s
                     WHERE attempt_id = %(attempt_id)s AND status = 'sending'
                 RETURNING {ATTEMPT_COLUMNS}""",
                {"next": next_try_at, "reason": reason, "attempt_id": attempt_id})
    return cur.fetchone()
