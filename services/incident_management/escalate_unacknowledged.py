"""Escalates incidents nobody acknowledged in time, and re-pages owners who acknowledged but did not
start: an alarm must never sit with a clinician who did not see it.

Each incident carries its next deadline in the database (incidents.ack_deadline, written through
next_deadline() from its severity's escalation policy, 0006_escalation_deadlines.sql):
- ASSIGNED/REASSIGNED past it: escalated (level + 1, at most the policy's max_level times) to the
  next candidate of its routing order (routing.py: the alert type's roles, then the policy's;
  within a role the ward's staff first where the patient's ward has a care team), with someone
  available who has never held the incident (so never back to a clinician who let it lapse).
  They, and the supervisors on duty and signed in, are told; the clinician it was taken from
  gets one short notice that it was escalated away from them. Nobody else available: it stays, and
  the assignee and supervisors are told again. Past the deadline of the last level, every clinician
  of the last-resort role on duty (routing.LAST_RESORT_ROLE) is paged as an assignee is, and again
  at each acknowledgement timeout of the policy until one of them takes it; meanwhile the incident
  is unowned (incidents.unowned_since, shown by the API).
- ACKNOWLEDGED past it (the policy's start_timeout_seconds): the owner is paged again, recorded in
  the history, and the next such deadline set.

Runs in the worker process of every incident-management instance, every ESCALATION_CHECK_SECONDS:
due incidents are claimed with FOR UPDATE SKIP LOCKED and re-checked against their deadline under
the lock, and every change moves the deadline, so several scanners never act on one deadline
twice; a restarted scanner finds every deadline where it was left.
"""
import logging

from healthguard import clock
from healthguard.domain import DEADLINE_STATUSES
from healthguard.incident_events import (
    escalated_away_message,
    escalated_message,
    last_level_message,
    not_started_message,
    person,
    role_in_words,
    still_unacknowledged_message,
    unowned_repage_message,
)
from healthguard.oncall_client import OnCallClient

from . import care_teams, history, routing
from .assignment import OnCallTask
from .events import announce
from .lifecycle import hand_over
from .metrics import ASSIGNMENTS, ESCALATIONS

log = logging.getLogger(__name__)

BATCH = 50

# Incidents whose deadline has passed. %(now)s is clock.now(), never SQL's now(): tests move the
# clock instead of waiting a timeout out. The statuses are domain.DEADLINE_STATUSES, constants.
DUE_CONDITION = f"""
    i.ack_deadline <= %(now)s AND i.status IN ({", ".join(f"'{status}'" for status in DEADLINE_STATUSES)})
"""


def due_incidents(cur, *, limit: int = BATCH) -> list[dict]:
    """The due incidents, earliest deadline first, with what choosing the next candidate needs."""
    cur.execute(f"""
        SELECT i.incident_id, i.status, i.severity, i.patient_id, i.assigned_to, i.escalation_level,
               p.max_level,
               {routing.ROUTE_COLUMNS},
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


def _move_deadline(cur, *, incident_id: int, level: int | None = None, last_resort=None) -> dict:
    """The next deadline of the incident's current status from now. With `last_resort` (ids),
    the last step: unowned from now (if it was not already), those paged until someone takes it."""
    now = clock.now()
    cur.execute("""
        UPDATE incidents
        SET escalation_level = coalesce(%(level)s, escalation_level),
            escalated_at = CASE WHEN %(level)s::int IS NULL THEN escalated_at ELSE %(now)s END,
            unowned_since = CASE WHEN %(paged)s::text[] IS NULL THEN unowned_since
                                 ELSE coalesce(unowned_since, %(now)s) END,
            last_resort_paged = coalesce(%(paged)s::text[], last_resort_paged),
            ack_deadline = next_deadline(severity, status, %(now)s), updated_at = %(now)s
        WHERE incident_id = %(incident_id)s RETURNING *
    """, {"level": level, "now": now, "paged": last_resort, "incident_id": incident_id})
    return cur.fetchone()


def _assignee(row: dict) -> dict | None:
    if row["assigned_to"] is None:
        return None
    return {"employee_id": row["assigned_to"], "name": row["assignee_name"], "role": row["assignee_role"]}


def escalate_incident(cur, *, incident_id: int, candidates: routing.CandidateGroup | None,
                      supervisors: list[str] | None, last_resort: list[str]) -> str | None:
    """Act on one due, unacknowledged incident (if it still is due), escalating it to the least
    busy of `candidates` (routing.first_candidates, escalating). Returns what was done
    ("escalated", "nobody-else", "last-level", "repaged-unowned"), or None when another scanner
    has it or it was acknowledged meanwhile."""
    before = _lock_if_due(cur, incident_id=incident_id, status="ASSIGNED") or \
        _lock_if_due(cur, incident_id=incident_id, status="REASSIGNED")
    if before is None:
        return None
    lapsed = _assignee(before)
    told = [s for s in routing.supervisors_to_tell(cur, on_duty=supervisors, at=clock.now())
            if s != before["assigned_to"]]
    if before["escalation_level"] >= before["max_level"]:
        return _last_step(cur, before=before, lapsed=lapsed, told=told, last_resort=last_resort)
    level = before["escalation_level"] + 1
    chosen = routing.least_busy(cur, list(candidates.candidates)) if candidates else None
    if chosen is not None:
        hand_over(cur, before=before, to=chosen, actor=None, reason="ESCALATION", action="ESCALATED",
                  note=f"not acknowledged in time by {person(lapsed)}; escalation level {level}",
                  message=escalated_message(before, level=level, lapsed=lapsed, to=chosen),
                  previous_message=escalated_away_message(before, to=chosen),
                  event_type="INCIDENT_ESCALATED", also_notify=told, said="ESCALATED", routed=candidates)
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
                               note=f"not acknowledged in time by {person(lapsed)}; nobody else available; "
                                    f"level {level}")
        announce(cur, incident, type="INCIDENT_ESCALATED", history=entry,
                 recipients=[before["assigned_to"], *told],
                 message=still_unacknowledged_message(incident, assignee=lapsed),
                 reason="NOT_ACKNOWLEDGED", paged=[before["assigned_to"]])
        outcome = "nobody-else"
    ESCALATIONS.labels(severity=before["severity"]).inc()
    return outcome


def _last_step(cur, *, before: dict, lapsed: dict | None, told: list[str], last_resort: list[str]) -> str:
    """Out of escalation levels: every last-resort clinician on duty is paged as its assignee is,
    and again at each acknowledgement timeout of the policy until one of them takes it (the
    first to acknowledge or claim owns it: lifecycle.hand_over stops the others' alarms)."""
    again = before["unowned_since"] is not None
    paged = list(dict.fromkeys([before["assigned_to"], *last_resort]))
    incident = _move_deadline(cur, incident_id=before["incident_id"], last_resort=paged)
    if again:
        minutes = int((clock.now() - incident["unowned_since"]).total_seconds() // 60)
        entry = history.record(cur, incident=incident, actor_id=None, action="REPAGED",
                               previous_status=before["status"],
                               note=f"nobody has taken it for {minutes} min; every "
                                    f"{role_in_words(routing.LAST_RESORT_ROLE)} on duty paged again")
        announce(cur, incident, type="INCIDENT_REPAGED", history=entry, recipients=paged,
                 message=unowned_repage_message(incident, minutes=minutes, role=routing.LAST_RESORT_ROLE),
                 reason="UNOWNED_REPAGE", paged=paged)
        return "repaged-unowned"
    entry = history.record(cur, incident=incident, actor_id=None, action="ESCALATED",
                           previous_status=before["status"],
                           note=f"not acknowledged after the last escalation level ({before['max_level']}); "
                                f"every {role_in_words(routing.LAST_RESORT_ROLE)} on duty paged")
    announce(cur, incident, type="INCIDENT_ESCALATED", history=entry, recipients=[*paged, *told],
             message=last_level_message(incident, assignee=lapsed, role=routing.LAST_RESORT_ROLE),
             reason="LAST_RESORT", paged=paged)
    ESCALATIONS.labels(severity=incident["severity"]).inc()
    return "last-level"


def repage_not_started(cur, *, incident_id: int) -> bool:
    """Page the owner of a due ACKNOWLEDGED incident again (if it still is due)."""
    before = _lock_if_due(cur, incident_id=incident_id, status="ACKNOWLEDGED")
    if before is None:
        return False
    incident = _move_deadline(cur, incident_id=incident_id)
    entry = history.record(cur, incident=incident, actor_id=None, action="REPAGED",
                           previous_status=before["status"],
                           note=f"acknowledged but not started in time; {person(_assignee(before))} "
                                "paged again")
    announce(cur, incident, type="INCIDENT_REPAGED", history=entry, recipients=[before["assigned_to"]],
             message=not_started_message(incident), paged=[before["assigned_to"]])
    return True


def escalate_unacknowledged(*, db, oncall: OnCallClient) -> int:
    """One pass over the due incidents; returns how many it acted on. The on-call service is
    asked once per pass; when it does not answer, unacknowledged incidents stay due and are
    tried at the next pass (nobody can be chosen, nor the last resort told, unseen)."""
    with db.transaction() as cur:
        due = due_incidents(cur)
        clinical = routing.clinical_roles(cur) if due else frozenset()
        unacknowledged = [row for row in due if row["status"] != "ACKNOWLEDGED"]
        # The care teams of the pass's patients, one query: a ward's staff before strangers.
        care = care_teams.care_teams_of(cur, patient_ids=[row["patient_id"] for row in unacknowledged],
                                        at=clock.now()) if unacknowledged else {}
    acted = 0
    everyone = routing.everyone_available(oncall) if unacknowledged else []
    supervisors = routing.supervisors_on_duty(oncall) if unacknowledged else None
    last_resort = None
    for row in due:
        if row["status"] == "ACKNOWLEDGED":
            with db.transaction() as cur:
                acted += repage_not_started(cur, incident_id=row["incident_id"])
            continue
        if everyone is None:
            continue
        candidates = None
        if row["escalation_level"] < row["max_level"]:
            route = routing.route(alert_name=row["alert_name"], severity=row["severity"],
                                  routes_to=row["routes_to"], escalate_to_roles=row["escalate_to_roles"],
                                  clinical_roles=clinical)
            candidates = routing.first_candidates(everyone, route, care=care.get(row["patient_id"]),
                                                  exclude={row["assigned_to"], *row["past_holders"]},
                                                  fallback=False, escalating=True)
        elif last_resort is None:
            last_resort = routing.last_resort(oncall)
            if last_resort is None:
                continue
        with db.transaction() as cur:
            if escalate_incident(cur, incident_id=row["incident_id"], candidates=candidates,
                                 supervisors=supervisors,
                                 last_resort=[c["employee_id"] for c in last_resort or ()]):
                acted += 1
    return acted


class UnacknowledgedEscalator(OnCallTask):
    name = "escalate-unacknowledged"

    def run_once(self) -> int:
        acted = escalate_unacknowledged(db=self.db, oncall=self.oncall)
        if acted:
            log.warning("escalated or re-paged incidents past their deadline", extra={"incidents": acted})
        return acted
