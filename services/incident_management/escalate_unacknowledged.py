"""Escalates incidents nobody acknowledged in time, and re-pages owners who acknowledged but did not
start: an alarm must never sit with a clinician who did not see it.

Each incident carries its next deadline in the database (incidents.ack_deadline, written through
next_deadline() from its severity's escalation policy, 0006_escalation_deadlines.sql):
- ASSIGNED/REASSIGNED past it: escalated (level + 1, at most the policy's max_level times) to the
  next candidate, the first of the alert type's routing roles, then the policy's escalation roles,
  with someone available who has never held the incident (so never back to a clinician who let it
  lapse). They, and the supervisors on duty and signed in, are told; the clinician it was taken from
  gets one short "taken over by" notice. Nobody else available: it stays, and the assignee and
  supervisors are told again. Past the deadline of the last level, every emergency doctor on duty
  is paged, once.
- ACKNOWLEDGED past it (the policy's start_timeout_seconds): the owner is paged again, recorded in
  the history, and the next such deadline set.

Runs in the worker process of every incident-management instance, every ESCALATION_CHECK_SECONDS:
due incidents are claimed with FOR UPDATE SKIP LOCKED and re-checked against their deadline under
the lock, and every change moves the deadline, so several scanners never act on one deadline
twice; a restarted scanner finds every deadline where it was left.
"""
import logging

import requests

from healthguard import clock
from healthguard.incident_events import (
    escalated_message,
    last_level_message,
    not_started_message,
    still_unacknowledged_message,
    taken_over_message,
)

from . import history
from .assignment import OnCallClient, OnCallTask, least_busy, supervisors_to_tell
from .events import announce
from .lifecycle import hand_over
from .metrics import ASSIGNMENTS, ESCALATIONS

log = logging.getLogger(__name__)

BATCH = 50
# Paged once every escalation level has passed without an acknowledgement.
LAST_RESORT_ROLE = "EMERGENCY_DOCTOR"

# Incidents whose deadline has passed. %(now)s is clock.now(), never SQL's now(): tests move the
# clock instead of waiting a timeout out.
DUE_CONDITION = """
    i.ack_deadline <= %(now)s AND i.status IN ('ASSIGNED', 'REASSIGNED', 'ACKNOWLEDGED')
"""


def due_incidents(cur, *, limit: int = BATCH) -> list[dict]:
    """The due incidents, earliest deadline first, with what choosing the next candidate needs."""
    cur.execute(f"""
        SELECT i.incident_id, i.status, i.assigned_to, i.escalation_level, p.max_level,
               t.routes_to || p.escalate_to_roles AS roles,
               array(SELECT a.employee_id FROM incident_assignments a
                     WHERE a.incident_id = i.incident_id) AS past_holders
        FROM incidents i
        JOIN escalation_policies p ON p.severity = i.severity
        JOIN alert_types t ON t.alert_type = i.alert_type
        WHERE {DUE_CONDITION}
        ORDER BY i.ack_deadline
        LIMIT %(limit)s
    """, {"now": clock.now(), "limit": limit})  # noqa: S608 (a constant condition, no input)
    return cur.fetchall()


def next_candidates(oncall: OnCallClient, *, roles, exclude) -> list[dict]:
    """Those available of the first role (in order) that has anyone who is not in `exclude`; never
    anyone of another role (an escalated cardiac arrest must not reach a biomedical engineer)."""
    for role in dict.fromkeys(roles):
        try:
            clinicians = [c for c in oncall.available(role) if c["employee_id"] not in exclude]
        except (requests.RequestException, ValueError, KeyError) as exc:  # still due: tried next pass
            log.warning("on-call service did not answer; escalation tried again next pass",
                        extra={"error": repr(exc)[:300]})
            return []
        if clinicians:
            return clinicians
    return []


def _lock_if_due(cur, *, incident_id: int, status: str) -> dict | None:
    cur.execute(f"""
        SELECT i.*, p.max_level, a.name AS assignee_name, a.role AS assignee_role
        FROM incidents i
        JOIN escalation_policies p ON p.severity = i.severity
        LEFT JOIN employees a ON a.employee_id = i.assigned_to
        WHERE i.incident_id = %(incident_id)s AND i.status = %(status)s AND {DUE_CONDITION}
        FOR UPDATE OF i SKIP LOCKED
    """, {"incident_id": incident_id, "status": status, "now": clock.now()})  # noqa: S608
    return cur.fetchone()


def _move_deadline(cur, *, incident_id: int, level: int | None = None, final: bool = False) -> dict:
    """The next deadline of the incident's current status from now (none after the last level)."""
    cur.execute("""
        UPDATE incidents
        SET escalation_level = coalesce(%(level)s, escalation_level),
            escalated_at = CASE WHEN %(level)s::int IS NULL THEN escalated_at ELSE %(now)s END,
            ack_deadline = CASE WHEN %(final)s THEN NULL ELSE next_deadline(severity, status, %(now)s) END,
            updated_at = now()
        WHERE incident_id = %(incident_id)s RETURNING *
    """, {"level": level, "now": clock.now(), "final": final, "incident_id": incident_id})
    return cur.fetchone()


def _assignee(row: dict) -> dict | None:
    if row["assigned_to"] is None:
        return None
    return {"employee_id": row["assigned_to"], "name": row["assignee_name"], "role": row["assignee_role"]}


def escalate_incident(cur, *, incident_id: int, candidates: list[dict], supervisors: list[str] | None,
                      last_resort: list[str]) -> str | None:
    """Act on one due, unacknowledged incident (if it still is due). Returns what was done
    ("escalated", "nobody-else", "last-level"), or None when another scanner has it or it was
    acknowledged meanwhile."""
    before = _lock_if_due(cur, incident_id=incident_id, status="ASSIGNED") or \
        _lock_if_due(cur, incident_id=incident_id, status="REASSIGNED")
    if before is None:
        return None
    lapsed = _assignee(before)
    told = [s for s in supervisors_to_tell(cur, on_duty=supervisors, at=clock.now())
            if s != before["assigned_to"]]
    if before["escalation_level"] >= before["max_level"]:
        incident = _move_deadline(cur, incident_id=incident_id, final=True)
        entry = history.record(cur, incident=incident, actor_id=None, action="ESCALATED",
                               previous_status=before["status"],
                               note=f"not acknowledged after the last escalation level "
                                    f"({before['max_level']}); every emergency doctor on duty paged")
        announce(cur, incident, type="INCIDENT_ESCALATED", history=entry,
                 recipients=[before["assigned_to"], *last_resort, *told],
                 message=last_level_message(incident, assignee=lapsed))
        ESCALATIONS.labels(severity=incident["severity"]).inc()
        return "last-level"
    level = before["escalation_level"] + 1
    chosen = least_busy(cur, candidates) if candidates else None
    if chosen is not None:
        hand_over(cur, before=before, to=chosen, actor=None, reason="ESCALATION", action="ESCALATED",
                  note=f"not acknowledged in time by {before['assigned_to']}; escalation level {level}",
                  message=escalated_message(before, level=level, lapsed=lapsed, to=chosen),
                  previous_message=taken_over_message(before, by=chosen),
                  event_type="INCIDENT_ESCALATED", also_notify=told)
        # hand_over set the new assignee's deadline; the escalation is the same instant.
        cur.execute("""
            UPDATE incidents SET escalation_level = %s, escalated_at = assigned_at WHERE incident_id = %s
        """, (level, incident_id))
        ASSIGNMENTS.labels(reason="ESCALATION").inc()
        outcome = "escalated"
    else:
        incident = _move_deadline(cur, incident_id=incident_id, level=level)
        entry = history.record(cur, incident=incident, actor_id=None, action="ESCALATED",
                               previous_status=before["status"],
                               note=f"not acknowledged in time; nobody else available; level {level}")
        announce(cur, incident, type="INCIDENT_ESCALATED", history=entry,
                 recipients=[before["assigned_to"], *told],
                 message=still_unacknowledged_message(incident, assignee=lapsed))
        outcome = "nobody-else"
    ESCALATIONS.labels(severity=before["severity"]).inc()
    return outcome


def repage_not_started(cur, *, incident_id: int) -> bool:
    """Page the owner of a due ACKNOWLEDGED incident again (if it still is due)."""
    before = _lock_if_due(cur, incident_id=incident_id, status="ACKNOWLEDGED")
    if before is None:
        return False
    incident = _move_deadline(cur, incident_id=incident_id)
    entry = history.record(cur, incident=incident, actor_id=None, action="REPAGED",
                           previous_status=before["status"],
                           note=f"acknowledged but not started in time; {before['assigned_to']} paged again")
    announce(cur, incident, type="INCIDENT_REPAGED", history=entry, recipients=[before["assigned_to"]],
             message=not_started_message(incident))
    return True


def escalate_unacknowledged(*, db, oncall: OnCallClient) -> int:
    """One pass over the due incidents; returns how many it acted on."""
    with db.transaction() as cur:
        due = due_incidents(cur)
    acted = 0
    supervisors = oncall.supervisors_on_duty() if due else None
    last_resort = None
    for row in due:
        if row["status"] == "ACKNOWLEDGED":
            with db.transaction() as cur:
                acted += repage_not_started(cur, incident_id=row["incident_id"])
            continue
        candidates = []
        if row["escalation_level"] < row["max_level"]:
            candidates = next_candidates(oncall, roles=row["roles"],
                                         exclude={row["assigned_to"], *row["past_holders"]})
        elif last_resort is None:
            last_resort = last_resort_doctors(oncall)
        with db.transaction() as cur:
            if escalate_incident(cur, incident_id=row["incident_id"], candidates=candidates,
                                 supervisors=supervisors, last_resort=last_resort or []):
                acted += 1
    return acted


def last_resort_doctors(oncall: OnCallClient) -> list[str]:
    """Every emergency doctor on duty now, signed in or not (their pager rings either way)."""
    try:
        return [c["employee_id"] for c in oncall.on_duty(LAST_RESORT_ROLE)]
    except (requests.RequestException, ValueError, KeyError) as exc:
        log.warning("on-call service did not answer who the emergency doctors on duty are",
                    extra={"error": repr(exc)[:300]})
        return []


class UnacknowledgedEscalator(OnCallTask):
    name = "escalate-unacknowledged"

    def run_once(self) -> int:
        acted = escalate_unacknowledged(db=self.db, oncall=self.oncall)
        if acted:
            log.warning("escalated or re-paged incidents past their deadline", extra={"incidents": acted})
        return acted
