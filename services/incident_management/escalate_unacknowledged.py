"""Escalates incidents nobody acknowledged in time: an alarm must never sit with a clinician who
did not see it.

The escalation policy of the incident's severity says how long an assignee has to acknowledge
(ack_timeout_seconds), which roles to escalate to, and how many times (max_level). Past the
timeout, the incident goes to the least busy available clinician of those roles other than the
current assignee (REASSIGNED, reason ESCALATION) and both they and the signed-in supervisors are
told (INCIDENT_ESCALATED). When nobody else is available it stays where it is, and the assignee
and the supervisors are told again. Either way the next escalation waits a full timeout.

Runs in the worker process of every incident-management instance: each incident is locked with SKIP
LOCKED and re-checked, so copies never escalate one incident twice.
"""
import logging

from healthguard import clock

from . import history
from .assignment import OnCallClient, OnCallTask, least_busy, signed_in_supervisors
from .events import announce
from .lifecycle import hand_over
from .metrics import ASSIGNMENTS, ESCALATIONS

log = logging.getLogger(__name__)

BATCH = 50

# Incidents whose assignee has not acknowledged within the policy's timeout (counted from the
# assignment, or from the last escalation), and that may still be escalated. %(now)s is
# clock.now(), never SQL's now(): tests move the clock instead of waiting a timeout out.
OVERDUE_CONDITION = """
    i.status IN ('ASSIGNED', 'REASSIGNED')
    AND i.escalation_level < p.max_level
    AND greatest(i.assigned_at, i.escalated_at) < %(now)s - make_interval(secs => p.ack_timeout_seconds)
"""


def escalate_incident(cur, *, incident_id: int, candidates: list[dict]) -> dict | None:
    """Escalate one overdue incident (if it still is). Returns the incident, or None when another
    process has it or it was acknowledged meanwhile."""
    cur.execute(f"""
        SELECT i.* FROM incidents i JOIN escalation_policies p ON p.severity = i.severity
        WHERE i.incident_id = %(incident_id)s AND {OVERDUE_CONDITION}
        FOR UPDATE OF i SKIP LOCKED
    """, {"incident_id": incident_id, "now": clock.now()})  # noqa: S608 (a constant condition, no input)
    before = cur.fetchone()
    if before is None:
        return None
    supervisors = signed_in_supervisors(cur, at=clock.now())
    others = [c for c in candidates if c["employee_id"] != before["assigned_to"]]
    chosen = least_busy(cur, others) if others else None
    level = before["escalation_level"] + 1
    if chosen is not None:
        change = hand_over(
            cur, before=before, to=chosen, actor=None, reason="ESCALATION", action="ESCALATED",
            note=f"not acknowledged in time by {before['assigned_to']}; escalation level {level}",
            message=f"{before['title']} was not acknowledged in time and is escalated to "
                    f"{chosen['name']} ({chosen['role']}).",
            event_type="INCIDENT_ESCALATED", also_notify=supervisors)
        incident = change.incident
        ASSIGNMENTS.labels(reason="ESCALATION").inc()
    else:
        incident = before
    cur.execute("""
        UPDATE incidents SET escalation_level = %s, escalated_at = %s, updated_at = now()
        WHERE incident_id = %s RETURNING *
    """, (level, clock.now(), incident_id))
    incident = cur.fetchone()
    if chosen is None:
        entry = history.record(cur, incident=incident, actor_id=None, action="ESCALATED",
                               previous_status=before["status"],
                               note=f"not acknowledged in time; nobody else available; level {level}")
        announce(cur, incident, type="INCIDENT_ESCALATED", history=entry,
                 recipients=[before["assigned_to"], *supervisors],
                 message=f"{before['title']} is still not acknowledged and nobody else is available.")
    ESCALATIONS.labels(severity=incident["severity"]).inc()
    return incident


def escalate_unacknowledged(*, db, oncall: OnCallClient) -> int:
    """One pass over the overdue incidents; returns how many it escalated."""
    with db.transaction() as cur:
        cur.execute(f"""
            SELECT i.incident_id, i.assigned_to, p.escalate_to_roles
            FROM incidents i JOIN escalation_policies p ON p.severity = i.severity
            WHERE {OVERDUE_CONDITION}
            ORDER BY i.assigned_at
            LIMIT %(batch)s
        """, {"batch": BATCH, "now": clock.now()})  # noqa: S608 (a constant condition, no input)
        overdue = cur.fetchall()
    escalated = 0
    for row in overdue:
        candidates = oncall.candidates(row["escalate_to_roles"], exclude=(row["assigned_to"],))
        with db.transaction() as cur:
            if escalate_incident(cur, incident_id=row["incident_id"], candidates=candidates):
                escalated += 1
    return escalated


class UnacknowledgedEscalator(OnCallTask):
    name = "escalate-unacknowledged"

    def run_once(self) -> int:
        escalated = escalate_unacknowledged(db=self.db, oncall=self.oncall)
        if escalated:
            log.warning("escalated unacknowledged incidents", extra={"escalated": escalated})
        return escalated
