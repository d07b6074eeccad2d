"""What clinicians do to an incident: acknowledge, start work, resolve, claim, reassign, add a
note. Each function runs in the caller's transaction, acts as the clinician given (whose session
authenticated the request, never an id from the body), locks the incident row first so that
concurrent changes queue and each sees the status the previous one left, and writes the history
row and the notification event together with the change."""
from dataclasses import dataclass

from healthguard import clock
from healthguard.auth import Clinician
from healthguard.errors import ApiError

from . import history
from .events import announce
from .incidents import ACTIONS, allowed_actions, lock_incident

MAX_TEXT = 4000


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


def text_field(body: dict, name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"{name} is required (a non-empty string)", field=name)
    if len(value) > MAX_TEXT:
        raise ApiError(400, f"{name} must be at most {MAX_TEXT} characters", field=name)
    return value.strip()


def acknowledge_incident(cur, *, incident_id: int, clinician: Clinician, note: str | None = None) -> Change:
    before = _locked(cur, incident_id=incident_id, action="acknowledge", clinician=clinician)
    cur.execute("""
        UPDATE incidents
        SET status = 'ACKNOWLEDGED',
            acknowledged_at = coalesce(acknowledged_at, now()),
            response_seconds = coalesce(response_seconds, extract(epoch FROM now() - created_at)),
            updated_at = now()
        WHERE incident_id = %s
        RETURNING *
    """, (incident_id,))
    incident = cur.fetchone()
    entry = history.record(cur, incident=incident, actor_id=clinician.employee_id, action="ACKNOWLEDGED",
                           previous_status=before["status"], note=note)
    event = announce(cur, incident, type="INCIDENT_ACKNOWLEDGED", history=entry, recipients=[],
                     message=f"{clinician.name} acknowledged {incident['title']}.")
    first = before["response_seconds"] is None
    return Change(incident, event, response_seconds=incident["response_seconds"] if first else None)


def start_work(cur, *, incident_id: int, clinician: Clinician, note: str | None = None) -> Change:
    before = _locked(cur, incident_id=incident_id, action="start", clinician=clinician)
    # Starting work on a reassigned incident that nobody acknowledged acknowledges it too.
    cur.execute("""
        UPDATE incidents
        SET status = 'IN_PROGRESS', started_at = now(),
            acknowledged_at = coalesce(acknowledged_at, now()),
            response_seconds = coalesce(response_seconds, extract(epoch FROM now() - created_at)),
            updated_at = now()
        WHERE incident_id = %s
        RETURNING *
    """, (incident_id,))
    incident = cur.fetchone()
    entry = history.record(cur, incident=incident, actor_id=clinician.employee_id, action="STARTED",
                           previous_status=before["status"], note=note)
    event = announce(cur, incident, type="INCIDENT_STARTED", history=entry, recipients=[],
                     message=f"{clinician.name} started work on {incident['title']}.")
    first = before["response_seconds"] is None
    return Change(incident, event, response_seconds=incident["response_seconds"] if first else None)


def resolve_incident(cur, *, incident_id: int, clinician: Clinician, resolution_notes: str) -> Change:
    before = _locked(cur, incident_id=incident_id, action="resolve", clinician=clinician)
    cur.execute("""
        UPDATE incidents
        SET status = 'RESOLVED', resolved_at = now(), resolution_notes = %s,
            resolution_seconds = extract(epoch FROM now() - created_at),
            updated_at = now()
        WHERE incident_id = %s
        RETURNING *
    """, (resolution_notes, incident_id))
    incident = cur.fetchone()
    end_assignment(cur, incident_id=incident_id)
    entry = history.record(cur, incident=incident, actor_id=clinician.employee_id, action="RESOLVED",
                           previous_status=before["status"], note=resolution_notes)
    event = announce(cur, incident, type="INCIDENT_RESOLVED", history=entry, recipients=[],
                     message=f"{clinician.name} resolved {incident['title']}: {resolution_notes[:200]}")
    return Change(incident, event, resolution_seconds=incident["resolution_seconds"])


def hand_over(cur, *, before: dict, to: dict, actor: Clinician | None, reason: str, action: str,
               note: str | None, message: str, event_type: str | None = None,
               also_notify=()) -> Change:
    """Give the incident to `to` (an employees row): ASSIGNED when nobody had it, else REASSIGNED.
    `actor` None is the system (escalation)."""
    actor_id = actor.employee_id if actor else None
    new_status = "ASSIGNED" if before["status"] == "OPEN" else "REASSIGNED"
    cur.execute("""
        UPDATE incidents
        SET status = %s, assigned_to = %s, assigned_at = %s, updated_at = now()
        WHERE incident_id = %s
        RETURNING *
    """, (new_status, to["employee_id"], clock.now(), before["incident_id"]))
    incident = cur.fetchone()
    end_assignment(cur, incident_id=before["incident_id"])
    cur.execute("""
        INSERT INTO incident_assignments (incident_id, employee_id, assigned_by, reason, assigned_at)
        VALUES (%s, %s, %s, %s, %s)
    """, (before["incident_id"], to["employee_id"], actor_id, reason, incident["assigned_at"]))
    entry = history.record(cur, incident=incident, actor_id=actor_id, action=action,
                           previous_status=before["status"], note=note)
    # The new assignee must act; the previous one must learn the incident is no longer theirs.
    event = announce(cur, incident, type=event_type or f"INCIDENT_{new_status}", history=entry,
                     recipients=[to["employee_id"], before["assigned_to"], *also_notify], message=message)
    return Change(incident, event)


def end_assignment(cur, *, incident_id: int) -> None:
    cur.execute("""
        UPDATE incident_assignments SET ended_at = now()
        WHERE incident_id = %s AND ended_at IS NULL
    """, (incident_id,))


def _employee(cur, employee_id: str) -> dict | None:
    cur.execute("SELECT employee_id, name, role FROM employees WHERE employee_id = %s", (employee_id,))
    return cur.fetchone()


def claim_incident(cur, *, incident_id: int, clinician: Clinician, note: str | None = None) -> Change:
    """Another clinician takes the incident over (or takes an unassigned one)."""
    before = _locked(cur, incident_id=incident_id, action="claim", clinician=clinician, assignee_only=False)
    if before["assigned_to"] == clinician.employee_id:
        raise ApiError(409, f"incident {incident_id} is already assigned to you",
                       incident_status=before["status"], allowed_actions=allowed_actions(before["status"]))
    previous = f" from {before['assigned_to']}" if before["assigned_to"] else ""
    return hand_over(cur, before=before, to=_employee(cur, clinician.employee_id), actor=clinician,
                      reason="CLAIM", action="CLAIMED", note=note,
                      message=f"{clinician.name} took over {before['title']}{previous}.")


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
                      message=f"{clinician.name} reassigned {before['title']} to {target['name']}.")


def add_note(cur, *, incident_id: int, clinician: Clinician, body: str) -> tuple[dict, Change]:
    incident = _locked(cur, incident_id=incident_id, action="note", clinician=clinician)
    cur.execute("""
        INSERT INTO incident_notes (incident_id, author_id, body) VALUES (%s, %s, %s)
        RETURNING note_id, author_id, body, created_at
    """, (incident_id, clinician.employee_id, body))
    note = cur.fetchone()
    cur.execute("UPDATE incidents SET updated_at = now() WHERE incident_id = %s RETURNING *", (incident_id,))
    incident = cur.fetchone()
    entry = history.record(cur, incident=incident, actor_id=clinician.employee_id, action="NOTE_ADDED",
                           previous_status=incident["status"], note=body)
    event = announce(cur, incident, type="INCIDENT_NOTE_ADDED", history=entry, recipients=[],
                     message=f"{clinician.name} added a note to {incident['title']}: {body[:200]}")
    return note, Change(incident, event)
