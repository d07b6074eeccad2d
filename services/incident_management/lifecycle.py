"""What clinicians do to an incident: acknowledge, start work, resolve, claim, reassign, add a
note. Each function runs in the caller's transaction, acts as the clinician given (whose session
authenticated the request, never an id from the body), locks the incident row first so that
concurrent changes queue and each sees the status the previous one left, and writes the history
row and the notification event together with the change."""
from collections.abc import Callable
from dataclasses import dataclass

from healthguard import clock
from healthguard.auth import Clinician
from healthguard.errors import ApiError
from healthguard.incident_events import claimed_message, reassigned_message, role_in_words

from . import history
from .events import announce
from .incidents import ACTIONS, allowed_actions, lock_incident


@dataclass(frozen=True)
class Change:
    """A committed-to-be change; the caller observes the timings once the transaction commits."""
    incident: dict
    event: dict
    response_seconds: float | None = None     # set on the first acknowledgement: an MTTA sample
    resolution_seconds: float | None = None   # set on resolution: an MTTR sample


def _locked(cur, *, incident_id: int, action: str, clinician: Clinician, assignee_only: bool = True):
    incident = lock_incident(cur, incident_id=incident_id)
    if incident is None:
        raise ApiError(404, f"no incident {incident_id}")
    if assignee_only and incident["assigned_to"] != clinician.employee_id:
        whom = f"to {incident['assigned_to']}" if incident["assigned_to"] else "to nobody"
        raise ApiError(403, f"incident {incident_id} is assigned {whom}; only its assignee may "
                       f"{action} it (claim it first)", assigned_to=incident["assigned_to"])
    if incident["status"] not in ACTIONS[action]:
        raise ApiError(409, f"cannot {action} incident {incident_id}: it is {incident['status']}",
                       incident_status=incident["status"],
                       allowed_actions=allowed_actions(incident["status"]))
    return incident


def _assignee_step(cur, *, incident_id: int, clinician: Clinician, action: str, changes: tuple[str, ...],
                   params: tuple = (), recorded_as: str, event_type: str, note: str | None,
                   message: Callable[[dict], str]) -> tuple[dict, dict, dict]:
    """The skeleton of the assignee's own steps (acknowledge, start, resolve, note): lock and
    check the incident, apply `changes` (SQL assignments to its columns, taking `params`), record
    the history row and announce the event, whose `message` is made from the changed incident.
    Returns (the incident before, the incident after, the event)."""
    before = _locked(cur, incident_id=incident_id, action=action, clinician=clinician)
    # Only the constant assignments of the steps below are formatted in; values are parameters.
    assignments = ", ".join((*changes, "updated_at = now()"))
    cur.execute(f"UPDATE incidents SET {assignments} WHERE incident_id = %s RETURNING *",  # noqa: S608
                (*params, incident_id))
    incident = cur.fetchone()
    entry = history.record(cur, incident=incident, actor_id=clinician.employee_id, action=recorded_as,
                           previous_status=before["status"], note=note)
    event = announce(cur, incident, type=event_type, history=entry, recipients=[], message=message(incident))
    return before, incident, event


# The first acknowledgement (or a start of work nobody acknowledged) stores the response time.
FIRST_RESPONSE = ("acknowledged_at = coalesce(acknowledged_at, now())",
                  "response_seconds = coalesce(response_seconds, extract(epoch FROM now() - created_at))")


def _responded(before: dict, incident: dict, event: dict) -> Change:
    first = before["response_seconds"] is None
    return Change(incident, event, response_seconds=incident["response_seconds"] if first else None)


def acknowledge_incident(cur, *, incident_id: int, clinician: Clinician, note: str | None = None) -> Change:
    return _responded(*_assignee_step(
        cur, incident_id=incident_id, clinician=clinician, action="acknowledge",
        changes=("status = 'ACKNOWLEDGED'", *FIRST_RESPONSE,
                 "ack_deadline = next_deadline(severity, 'ACKNOWLEDGED', %s)"),
        params=(clock.now(),), recorded_as="ACKNOWLEDGED",
        event_type="INCIDENT_ACKNOWLEDGED", note=note,
        message=lambda incident: f"{clinician.name} acknowledged {incident['title']}."))


def start_work(cur, *, incident_id: int, clinician: Clinician, note: str | None = None) -> Change:
    # Starting work on a reassigned incident that nobody acknowledged acknowledges it too.
    return _responded(*_assignee_step(
        cur, incident_id=incident_id, clinician=clinician, action="start",
        changes=("status = 'IN_PROGRESS'", "started_at = now()", *FIRST_RESPONSE, "ack_deadline = NULL"),
        recorded_as="STARTED",
        event_type="INCIDENT_STARTED", note=note,
        message=lambda incident: f"{clinician.name} started work on {incident['title']}."))


def resolve_incident(cur, *, incident_id: int, clinician: Clinician, resolution_notes: str) -> Change:
    _, incident, event = _assignee_step(
        cur, incident_id=incident_id, clinician=clinician, action="resolve",
        changes=("status = 'RESOLVED'", "resolved_at = now()", "resolution_notes = %s",
                 "resolution_seconds = extract(epoch FROM now() - created_at)", "ack_deadline = NULL"),
        params=(resolution_notes,), recorded_as="RESOLVED", event_type="INCIDENT_RESOLVED",
        note=resolution_notes,
        message=lambda incident: f"{clinician.name} resolved {incident['title']}: {resolution_notes[:200]}")
    end_assignment(cur, incident_id=incident_id)
    return Change(incident, event, resolution_seconds=incident["resolution_seconds"])


def hand_over(cur, *, before: dict, to: dict, actor: Clinician | None, reason: str, action: str,
              note: str | None, message: str, event_type: str | None = None,
              also_notify=(), previous_message: str | None = None) -> Change:
    """Give the incident to `to` (an employees row): ASSIGNED when nobody had it, else REASSIGNED,
    with a fresh acknowledgement deadline. `actor` None is the system (escalation). With
    `previous_message`, the previous assignee gets that (short) notice of their own instead of
    `message`."""
    actor_id = actor.employee_id if actor else None
    new_status = "ASSIGNED" if before["status"] == "OPEN" else "REASSIGNED"
    cur.execute("""
        UPDATE incidents
        SET status = %(status)s, assigned_to = %(to)s, assigned_at = %(now)s,
            ack_deadline = next_deadline(severity, %(status)s, %(now)s), updated_at = now()
        WHERE incident_id = %(incident_id)s
        RETURNING *
    """, {"status": new_status, "to": to["employee_id"], "now": clock.now(),
          "incident_id": before["incident_id"]})
    incident = cur.fetchone()
    end_assignment(cur, incident_id=before["incident_id"])
    cur.execute("""
        INSERT INTO incident_assignments (incident_id, employee_id, assigned_by, reason, assigned_at)
        VALUES (%s, %s, %s, %s, %s)
    """, (before["incident_id"], to["employee_id"], actor_id, reason, incident["assigned_at"]))
    entry = history.record(cur, incident=incident, actor_id=actor_id, action=action,
                           previous_status=before["status"], note=note)
    # The new assignee must act; the previous one must learn the incident is no longer theirs.
    previous = before["assigned_to"]
    if previous_message and previous and previous != to["employee_id"]:
        announce(cur, incident, type="INCIDENT_REASSIGNED", history=entry, recipients=[previous],
                 message=previous_message)
        recipients = [to["employee_id"], *(r for r in also_notify if r != previous)]
    else:
        recipients = [to["employee_id"], previous, *also_notify]
    event = announce(cur, incident, type=event_type or f"INCIDENT_{new_status}", history=entry,
                     recipients=recipients, message=message)
    return Change(incident, event)


def end_assignment(cur, *, incident_id: int) -> None:
    cur.execute("""
        UPDATE incident_assignments SET ended_at = now()
        WHERE incident_id = %s AND ended_at IS NULL
    """, (incident_id,))


def _employee(cur, employee_id: str) -> dict | None:
    cur.execute("SELECT employee_id, name, role FROM employees WHERE employee_id = %s", (employee_id,))
    return cur.fetchone()


# Statuses in which the assignee has taken the alarm on: only a supervisor takes it away from them
# (reassign) while they are signed in.
TAKEN_ON_STATUSES = ("ACKNOWLEDGED", "IN_PROGRESS")


def _claim_refusal(cur, *, incident: dict, clinician: Clinician) -> tuple[str, list[str]] | None:
    """Why `clinician` may not claim `incident`, with the roles that may; None when they may."""
    cur.execute("""
        SELECT t.name AS alert_name, t.routes_to, coalesce(p.escalate_to_roles, '{}') AS escalate_to_roles,
               %(assignee)s::text IN (SELECT s.employee_id FROM signed_in_clinicians(%(now)s) s)
                   AS assignee_live
        FROM alert_types t LEFT JOIN escalation_policies p ON p.severity = %(severity)s
        WHERE t.alert_type = %(alert_type)s
    """, {"assignee": incident["assigned_to"], "now": clock.now(), "severity": incident["severity"],
          "alert_type": incident["alert_type"]})
    rules = cur.fetchone()
    roles = list(dict.fromkeys([*rules["routes_to"], *rules["escalate_to_roles"]]))
    if clinician.role not in roles:
        return (f"a {role_in_words(clinician.role)} may not take this {rules['alert_name']} alarm; "
                f"it is for: {', '.join(role_in_words(role) for role in roles)}"), roles
    if incident["status"] in TAKEN_ON_STATUSES and rules["assignee_live"] and not clinician.is_supervisor:
        return (f"{incident['assigned_to']} has {incident['status'].lower().replace('_', ' ')} it and is "
                f"signed in; only a supervisor may take it away from them (reassign)"), roles
    return None


def claim_incident(cur, *, incident_id: int, clinician: Clinician, note: str | None = None) -> Change:
    """Another clinician takes the incident over (or takes an unassigned one): only one whose role
    the alert type is routed or escalated to, and an alarm its assignee has taken on only from an
    assignee who is gone (else a supervisor reassigns). The audit trail names who held it before."""
    before = _locked(cur, incident_id=incident_id, action="claim", clinician=clinician, assignee_only=False)
    if before["assigned_to"] == clinician.employee_id:
        raise ApiError(409, f"incident {incident_id} is already assigned to you",
                       incident_status=before["status"], allowed_actions=allowed_actions(before["status"]))
    refusal = _claim_refusal(cur, incident=before, clinician=clinician)
    if refusal:
        reason, roles = refusal
        raise ApiError(403, f"cannot claim incident {incident_id}: {reason}",
                       assigned_to=before["assigned_to"], allowed_roles=roles)
    previous = _employee(cur, before["assigned_to"]) if before["assigned_to"] else None
    held = (f"taken over from {before['assigned_to']} ({before['status']})" if previous
            else "taken while nobody held it")
    return hand_over(cur, before=before, to=_employee(cur, clinician.employee_id), actor=clinician,
                     reason="CLAIM", action="CLAIMED", note=f"{held}: {note}" if note else held,
                     message=claimed_message(before, by=clinician, previous=previous))


def reassign_incident(cur, *, incident_id: int, clinician: Clinician, employee_id: str,
                      note: str | None = None) -> Change:
    """A supervising clinician gives the incident to someone else (authorized by the route)."""
    before = _locked(cur, incident_id=incident_id, action="reassign", clinician=clinician,
                     assignee_only=False)
    target = _employee(cur, employee_id)
    if target is None:
        raise ApiError(422, f"unknown employee_id {employee_id!r}", field="employee_id")
    if before["assigned_to"] == employee_id:
        raise ApiError(409, f"incident {incident_id} is already assigned to {employee_id}",
                       incident_status=before["status"], allowed_actions=allowed_actions(before["status"]))
    return hand_over(cur, before=before, to=target, actor=clinician, reason="REASSIGN",
                     action="REASSIGNED", note=note,
                     message=reassigned_message(before, by=clinician, to=target))


def add_note(cur, *, incident_id: int, clinician: Clinician, body: str) -> tuple[dict, Change]:
    _, incident, event = _assignee_step(
        cur, incident_id=incident_id, clinician=clinician, action="note", changes=(),
        recorded_as="NOTE_ADDED", event_type="INCIDENT_NOTE_ADDED", note=body,
        message=lambda incident: f"{clinician.name} added a note to {incident['title']}: {body[:200]}")
    cur.execute("""
        INSERT INTO incident_notes (incident_id, author_id, body) VALUES (%s, %s, %s)
        RETURNING note_id, author_id, body, created_at
    """, (incident_id, clinician.employee_id, body))
    return cur.fetchone(), Change(incident, event)
