"""What clinicians do to an incident: acknowledge, start work, resolve, claim, reassign, add a
note. Each function runs in the caller's transaction, acts as the clinician given (whose session
authenticated the request, never an id from the body), locks the incident row first so that
concurrent changes queue and each sees the status the previous one left, and writes the history
row and the notification event together with the change."""
from collections.abc import Callable
from dataclasses import dataclass

from healthguard import clock
from healthguard.auth import Clinician
from healthguard.domain import ACTIONS, TAKEN_ON_STATUSES
from healthguard.errors import ApiError
from healthguard.incident_events import (
    IncidentEvent,
    claimed_message,
    declined_message,
    last_resort_taken_message,
    paged_now,
    person,
    reassigned_message,
    role_in_words,
)

from . import care_teams, history, routing
from .events import announce
from .incidents import actions_in_status, lock_incident


@dataclass(frozen=True)
class Change:
    """A committed-to-be change; the caller observes the timings once the transaction commits."""
    incident: dict
    event: IncidentEvent
    response_seconds: float | None = None     # set on the first acknowledgement: an MTTA sample
    resolution_seconds: float | None = None   # set on resolution: an MTTR sample


# --- Who may do what: each step refuses by these, and CallerActions offers what they allow ----

def step_refusal(incident: dict, *, action: str, clinician: Clinician,
                 assignee_only: bool = True) -> ApiError | None:
    """Why `clinician` may not take `action` on the incident as it is, by its status and (for the
    assignee's own steps) who holds it; None when they may."""
    incident_id = incident["incident_id"]
    if assignee_only and incident["assigned_to"] != clinician.employee_id:
        whom = f"to {incident['assigned_to']}" if incident["assigned_to"] else "to nobody"
        return ApiError(403, f"incident {incident_id} is assigned {whom}; only its assignee may "
                        f"{action} it (claim it first)", assigned_to=incident["assigned_to"])
    if incident["status"] not in ACTIONS[action]:
        return ApiError(409, f"cannot {action} incident {incident_id}: it is {incident['status']}",
                        incident_status=incident["status"],
                        allowed_actions=actions_in_status(incident["status"]))
    return None


def takes_it_at_last_step(incident: dict, clinician: Clinician) -> bool:
    """At the last escalation step, when every last-resort clinician is paged and nobody owns it,
    any of them may acknowledge it: the first to do so takes it."""
    return bool(incident["assigned_to"] != clinician.employee_id and incident["unowned_since"]
                and clinician.employee_id in paged_now(incident))


def claim_refusal(incident: dict, *, clinician: Clinician, route: routing.Route, on_duty: dict[str, dict],
                  previous: dict | None, assignee_signed_in: Callable[[], bool],
                  override_reason: str | None = None) -> ApiError | None:
    """Why `clinician` may not claim the incident, by routing.owner_refusal's rules (on duty,
    signed in, of a routed role; a supervisor may override with a reason, never a CRITICAL alarm
    for a non-clinical role); an alarm its assignee has taken on (`previous`, an employees row)
    only from an assignee who is gone (`assignee_signed_in()` false), or by a supervisor."""
    refused = step_refusal(incident, action="claim", clinician=clinician, assignee_only=False)
    if refused:
        return refused
    incident_id = incident["incident_id"]
    if incident["assigned_to"] == clinician.employee_id:
        return ApiError(409, f"incident {incident_id} is already assigned to you",
                        incident_status=incident["status"],
                        allowed_actions=actions_in_status(incident["status"]))
    claimer = {"employee_id": clinician.employee_id, "name": clinician.name, "role": clinician.role}
    refusal = routing.owner_refusal(route, person=claimer, on_duty=on_duty,
                                    by_supervisor=clinician.is_supervisor, override_reason=override_reason)
    if (refusal is None and is_taken_on(incident) and not clinician.is_supervisor
            and assignee_signed_in()):
        refusal = routing.Refusal(
            "taken_on", f"{person(previous)} has {incident['status'].lower().replace('_', ' ')} it and is "
                        f"signed in; only a supervisor may take it away from them (reassign)", "employee_id")
    if refusal:
        return ApiError(403, f"cannot claim incident {incident_id}: {refusal.message}", rule=refusal.rule,
                        assigned_to=incident["assigned_to"], allowed_roles=route.allowed_roles)
    return None


def reassign_refusal(incident: dict, *, clinician: Clinician) -> ApiError | None:
    """Why `clinician` may not reassign the incident (to anyone): only a supervisor reassigns
    (the route is also marked supervisor_only), and only while it is active."""
    if not clinician.is_supervisor:
        return ApiError(403, "only a supervising clinician may do this")
    return step_refusal(incident, action="reassign", clinician=clinician, assignee_only=False)


def is_taken_on(incident: dict) -> bool:
    return incident["status"] in TAKEN_ON_STATUSES and incident["assigned_to"] is not None


class CallerActions:
    """The actions one caller may take now on incidents (an API answer's allowed_actions), by
    the refusals above: an action is offered exactly when its step would not refuse it (decline
    may still find nobody else available). Reads what the rules need (routes, who is signed in)
    once per request, in the caller's transaction. `on_duty`: routing.on_duty_now(), asked
    before the transaction; None when it could not answer, and then claim and reassign, which
    would answer 503, are not offered. A service (clinician None) may take none."""

    def __init__(self, cur, *, clinician: Clinician | None, on_duty: dict[str, dict] | None,
                 incidents=()):
        self.cur, self.clinician, self.on_duty = cur, clinician, on_duty
        # The routes of the incidents it will be asked about, read at once (routing.routes_of).
        self._routes: dict[tuple, routing.Route] = (
            routing.routes_of(cur, incidents) if clinician is not None and on_duty is not None else {})
        self._signed_in: frozenset[str] | None = None

    def _route(self, incident: dict) -> routing.Route:
        key = (incident["alert_type"], incident["severity"])
        if key not in self._routes:
            self._routes[key] = routing.route_of(self.cur, incident)
        return self._routes[key]

    def _is_signed_in(self, employee_id: str) -> bool:
        if self._signed_in is None:
            self.cur.execute("SELECT employee_id FROM signed_in_clinicians(%s)", (clock.now(),))
            self._signed_in = frozenset(row["employee_id"] for row in self.cur.fetchall())
        return employee_id in self._signed_in

    def _allows(self, incident: dict, action: str) -> bool:
        clinician = self.clinician
        if action == "acknowledge" and takes_it_at_last_step(incident, clinician):
            return True
        if action == "claim":
            if self.on_duty is None or step_refusal(incident, action="claim", clinician=clinician,
                                                    assignee_only=False):
                return False  # refused by status: no need to read its route
            previous = {"employee_id": incident["assigned_to"], "name": incident.get("assignee_name"),
                        "role": incident.get("assignee_role")} if incident["assigned_to"] else None
            return claim_refusal(
                incident, clinician=clinician, route=self._route(incident), on_duty=self.on_duty,
                previous=previous,
                assignee_signed_in=lambda: self._is_signed_in(incident["assigned_to"])) is None
        if action == "reassign":
            return self.on_duty is not None and reassign_refusal(incident, clinician=clinician) is None
        return step_refusal(incident, action=action, clinician=clinician) is None

    def __call__(self, incident: dict) -> list[str]:
        if self.clinician is None:
            return []
        return [action for action in ACTIONS if self._allows(incident, action)]


# --- The steps --------------------------------------------------------------------------------

def _locked(cur, *, incident_id: int, action: str, clinician: Clinician, assignee_only: bool = True):
    incident = lock_incident(cur, incident_id=incident_id)
    if incident is None:
        raise ApiError(404, f"no incident {incident_id}")
    refused = step_refusal(incident, action=action, clinician=clinician, assignee_only=assignee_only)
    if refused:
        raise refused
    return incident


def _assignee_step(cur, *, incident_id: int, clinician: Clinician, action: str, changes: tuple[str, ...],
                   params: dict | None = None, recorded_as: str, event_type: str, note: str | None,
                   message: Callable[[dict], str], channel: str | None = None) -> tuple[dict, dict, dict]:
    """The skeleton of the assignee's own steps (acknowledge, start, resolve, note): lock and
    check the incident, apply `changes` (SQL assignments to its columns, taking `params`), record
    the history row and announce the event, whose `message` is made from the changed incident.
    Returns (the incident before, the incident after, the event). `changes` name the step's
    instant (clock.now(), one for the whole step) %(now)s and their other values %(name)s."""
    before = _locked(cur, incident_id=incident_id, action=action, clinician=clinician)
    # Only the constant assignments of the steps below are formatted in; values are parameters.
    assignments = ", ".join((*changes, "updated_at = %(now)s"))
    cur.execute(f"UPDATE incidents SET {assignments} WHERE incident_id = %(incident_id)s RETURNING *",  # noqa: S608
                {**(params or {}), "now": clock.now(), "incident_id": incident_id})
    incident = cur.fetchone()
    entry = history.record(cur, incident=incident, actor_id=clinician.employee_id, action=recorded_as,
                           previous_status=before["status"], note=note, channel=channel)
    said = {"reason": recorded_as, "actor_id": clinician.employee_id}
    event = announce(cur, incident, type=event_type, history=entry, recipients=[], message=message(incident),
                     **said)
    # Taken on at the last step (acknowledged or started): the others paged need respond no more.
    others = [p for p in before["last_resort_paged"] if p != clinician.employee_id]
    if before["unowned_since"] and incident["unowned_since"] is None and others:
        announce(cur, incident, type="INCIDENT_REASSIGNED", history=entry, recipients=others,
                 message=last_resort_taken_message(before, by=clinician), **{**said, "reason": "TAKEN"})
    return before, incident, event


# The first acknowledgement (or a start of work nobody acknowledged) stores the response time;
# someone owns the alarm from then on, so nobody else is paged for it.
FIRST_RESPONSE = ("acknowledged_at = coalesce(acknowledged_at, %(now)s)",
                  "response_seconds = coalesce(response_seconds, extract(epoch FROM %(now)s - created_at))",
                  "unowned_since = NULL", "last_resort_paged = '{}'")


def _responded(before: dict, incident: dict, event: dict) -> Change:
    first = before["response_seconds"] is None
    return Change(incident, event, response_seconds=incident["response_seconds"] if first else None)


def acknowledge_incident(cur, *, incident_id: int, clinician: Clinician, note: str | None = None,
                         channel: str = "app") -> Change:
    """The assignee acknowledges. At the last step, when every last-resort clinician is paged,
    the first of them to acknowledge takes it (claimed, then acknowledged, in one transaction).
    `channel`: where they acknowledged (the audit trail keeps it). From an off-tab channel (the
    notification service on their behalf) a second acknowledgement of their own alarm, already
    acknowledged from another channel or the app, changes nothing (no event): the person pressed
    Acknowledge on a push and on an email, and meant the same thing twice."""
    incident = lock_incident(cur, incident_id=incident_id)
    if (channel != "app" and incident and incident["assigned_to"] == clinician.employee_id
            and incident["status"] not in ACTIONS["acknowledge"] and incident["acknowledged_at"]):
        return Change(incident, None)
    if incident and takes_it_at_last_step(incident, clinician):
        previous = _employee(cur, incident["assigned_to"]) if incident["assigned_to"] else None
        hand_over(cur, before=incident, to=_employee(cur, clinician.employee_id), actor=clinician,
                  reason="CLAIM", action="CLAIMED", note="taken at the last escalation step",
                  message=claimed_message(incident, by=clinician, previous=previous), said="TAKEN", paged=[])
    return _responded(*_assignee_step(
        cur, incident_id=incident_id, clinician=clinician, action="acknowledge",
        changes=("status = 'ACKNOWLEDGED'", *FIRST_RESPONSE,
                 "ack_deadline = next_deadline(severity, 'ACKNOWLEDGED', %(now)s)"),
        recorded_as="ACKNOWLEDGED", channel=channel,
        event_type="INCIDENT_ACKNOWLEDGED", note=note,
        message=lambda incident: f"{clinician.name} acknowledged {incident['title']}."))


def start_work(cur, *, incident_id: int, clinician: Clinician, note: str | None = None) -> Change:
    # Starting work on a reassigned incident that nobody acknowledged acknowledges it too.
    return _responded(*_assignee_step(
        cur, incident_id=incident_id, clinician=clinician, action="start",
        changes=("status = 'IN_PROGRESS'", "started_at = %(now)s", *FIRST_RESPONSE, "ack_deadline = NULL"),
        recorded_as="STARTED",
        event_type="INCIDENT_STARTED", note=note,
        message=lambda incident: f"{clinician.name} started work on {incident['title']}."))


def resolve_incident(cur, *, incident_id: int, clinician: Clinician, resolution_notes: str) -> Change:
    _, incident, event = _assignee_step(
        cur, incident_id=incident_id, clinician=clinician, action="resolve",
        changes=("status = 'RESOLVED'", "resolved_at = %(now)s", "resolution_notes = %(notes)s",
                 "resolution_seconds = extract(epoch FROM %(now)s - created_at)", "ack_deadline = NULL"),
        params={"notes": resolution_notes}, recorded_as="RESOLVED", event_type="INCIDENT_RESOLVED",
        note=resolution_notes,
        message=lambda incident: f"{clinician.name} resolved {incident['title']}: {resolution_notes[:200]}")
    end_assignment(cur, incident_id=incident_id)
    return Change(incident, event, resolution_seconds=incident["resolution_seconds"])


def resolve_heard_device(cur, *, incident_id: int, heard_at, silent_seconds: float | None) -> Change | None:
    """A device's own silence (DEVICE_SILENT of no patient, 0022) ends when the device is heard
    again: its incident is resolved by the system, whatever its status, and its holder told. A
    patient's is not (resolve_incident): someone must see the patient. None when it is gone or
    already resolved."""
    before = lock_incident(cur, incident_id=incident_id)
    if before is None or before["status"] == "RESOLVED" or before["patient_id"] is not None:
        return None
    silent = f" after {round(silent_seconds)} s silent" if silent_seconds is not None else ""
    notes = f"the device was heard again at {heard_at.isoformat()}{silent}: resolved by itself"
    cur.execute("""
        UPDATE incidents
        SET status = 'RESOLVED', resolved_at = %(now)s, resolution_notes = %(notes)s,
            resolution_seconds = extract(epoch FROM %(now)s - created_at), ack_deadline = NULL,
            unowned_since = NULL, last_resort_paged = '{}', updated_at = %(now)s
        WHERE incident_id = %(incident_id)s
        RETURNING *
    """, {"now": clock.now(), "notes": notes, "incident_id": incident_id})
    incident = cur.fetchone()
    entry = history.record(cur, incident=incident, actor_id=None, action="RESOLVED",
                           previous_status=before["status"], note=notes)
    told = [before["assigned_to"], *(before["last_resort_paged"] or ())]
    event = announce(cur, incident, type="INCIDENT_RESOLVED", history=entry, recipients=told,
                     message=f"{incident['title']}: {notes}.", reason="RESOLVED", actor_id=None)
    end_assignment(cur, incident_id=incident_id)
    return Change(incident, event, resolution_seconds=incident["resolution_seconds"])


def hand_over(cur, *, before: dict, to: dict, actor: Clinician | None, reason: str, action: str,
              note: str | None, message: str, event_type: str | None = None, also_notify=(),
              previous_message: str | None = None, said: str | None = None, paged=None,
              override_reason: str | None = None, channel: str | None = None,
              routed: routing.CandidateGroup | None = None) -> Change:
    """Give the incident to `to` (an employees row): ASSIGNED when nobody had it, else REASSIGNED,
    with a fresh acknowledgement deadline; whoever was paged for it at the last step is paged no
    more (the new owner has it). `actor` None is the system (escalation). `reason` is the
    assignment's (AUTO, CLAIM, ...), `said` the event's (healthguard.incident_events.REASONS),
    `paged` whom the event alarms (by default the new assignee). With `previous_message`, the
    previous assignee gets that (short) notice of their own instead of `message`; one who handed
    it over themselves (decline) is not told what they did. `routed`: the routing order's group
    `to` was chosen from (decline, escalation), kept on the assignment as why this person."""
    actor_id = actor.employee_id if actor else None
    new_status = "ASSIGNED" if before["status"] == "OPEN" else "REASSIGNED"
    cur.execute("""
        UPDATE incidents
        SET status = %(status)s, assigned_to = %(to)s, assigned_at = %(now)s, assignment_reason = %(reason)s,
            ack_deadline = next_deadline(severity, %(status)s, %(now)s), unowned_since = NULL,
            last_resort_paged = '{}', updated_at = %(now)s
        WHERE incident_id = %(incident_id)s
        RETURNING *
    """, {"status": new_status, "to": to["employee_id"], "now": clock.now(), "reason": reason,
          "incident_id": before["incident_id"]})
    incident = cur.fetchone()
    end_assignment(cur, incident_id=before["incident_id"])
    cur.execute("""
        INSERT INTO incident_assignments (incident_id, employee_id, assigned_by, reason, assigned_at,
                                          override_reason, routed_as, why)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
    """, (before["incident_id"], to["employee_id"], actor_id, reason, incident["assigned_at"],
          override_reason, routed.routed_as if routed else None, routed.why if routed else None))
    entry = history.record(cur, incident=incident, actor_id=actor_id, action=action,
                           previous_status=before["status"], note=note, channel=channel)
    said = {"reason": said or action, "actor_id": actor_id, "previous_assignee": before["assigned_to"]}
    # The new assignee must act; the previous one must learn the incident is no longer theirs.
    previous = before["assigned_to"] if before["assigned_to"] != actor_id else None
    if previous_message and previous and previous != to["employee_id"]:
        announce(cur, incident, type="INCIDENT_REASSIGNED", history=entry, recipients=[previous],
                 message=previous_message, **said)
        recipients = [to["employee_id"], *(r for r in also_notify if r != previous)]
    else:
        recipients = [to["employee_id"], previous, *also_notify]
    event = announce(cur, incident, type=event_type or f"INCIDENT_{new_status}", history=entry,
                     recipients=recipients, message=message,
                     paged=[to["employee_id"]] if paged is None else paged, **said)
    # Those paged at the last step who did not take it: their alarm stops.
    others = [p for p in before.get("last_resort_paged") or ()
              if before.get("unowned_since") and p not in (to["employee_id"], previous)]
    if others:
        announce(cur, incident, type="INCIDENT_REASSIGNED", history=entry, recipients=others,
                 message=last_resort_taken_message(before, by=to), **{**said, "reason": "TAKEN"})
    return Change(incident, event)


def end_assignment(cur, *, incident_id: int) -> None:
    cur.execute("""
        UPDATE incident_assignments SET ended_at = %s
        WHERE incident_id = %s AND ended_at IS NULL
    """, (clock.now(), incident_id))


def clinician_by_id(cur, employee_id: str) -> Clinician | None:
    """The person a service acts for (an off-tab acknowledgement): no session (session_id 0)."""
    cur.execute("""SELECT employee_id, login, name, role, tier, is_supervisor, is_account_admin
                   FROM employees WHERE employee_id = %s""", (employee_id,))
    row = cur.fetchone()
    return Clinician(**row, session_id=0) if row else None


def _employee(cur, employee_id: str) -> dict | None:
    cur.execute("SELECT employee_id, name, role FROM employees WHERE employee_id = %s", (employee_id,))
    return cur.fetchone()


def _assignee_signed_in(cur, incident: dict) -> bool:
    cur.execute("SELECT %s::text IN (SELECT s.employee_id FROM signed_in_clinicians(%s) s) AS live",
                (incident["assigned_to"], clock.now()))
    return cur.fetchone()["live"]


def _override_note(route: routing.Route, person: dict, override_reason: str | None) -> str | None:
    """The audit trail's words for an assignment outside the routed roles, or None."""
    if route.routes_to(person["role"]) or not override_reason:
        return None
    return (f"override: a {role_in_words(person['role'])} is not among the routed roles; "
            f"reason: {override_reason}")


def _joined(*notes) -> str | None:
    return "; ".join(n for n in notes if n) or None


def claim_incident(cur, *, incident_id: int, clinician: Clinician, on_duty: dict[str, dict],
                   note: str | None = None, override_reason: str | None = None) -> Change:
    """The caller takes the incident over (or takes an unassigned one), by routing.owner_refusal's
    rules: on duty, signed in, of a routed role (a supervisor may override with a reason, never
    a CRITICAL alarm for a non-clinical role); an alarm its assignee has taken on only from an
    assignee who is gone, or by a supervisor. The audit trail names who held it before."""
    before = lock_incident(cur, incident_id=incident_id)
    if before is None:
        raise ApiError(404, f"no incident {incident_id}")
    route = routing.route_of(cur, before)
    previous = _employee(cur, before["assigned_to"]) if before["assigned_to"] else None
    refused = claim_refusal(before, clinician=clinician, route=route, on_duty=on_duty, previous=previous,
                            assignee_signed_in=lambda: _assignee_signed_in(cur, before),
                            override_reason=override_reason)
    if refused:
        raise refused
    claimer = _employee(cur, clinician.employee_id)
    taken_on = is_taken_on(before)
    held = (f"taken over from {person(previous)} ({before['status'].lower().replace('_', ' ')})" if previous
            else "taken while nobody held it")
    by_supervisor = taken_on and clinician.is_supervisor
    said = ("TAKEN" if before.get("unowned_since") and before["status"] != "OPEN"
            else "TAKEN_BY_SUPERVISOR" if by_supervisor else "CLAIMED")
    return hand_over(cur, before=before, to=claimer, actor=clinician, reason="CLAIM", action="CLAIMED",
                     note=_joined(held, note, _override_note(route, claimer, override_reason)),
                     message=claimed_message(before, by=clinician, previous=previous,
                                             supervisor=by_supervisor),
                     said=said, paged=[], override_reason=override_reason if _override_note(
                         route, claimer, override_reason) else None)


def reassign_incident(cur, *, incident_id: int, clinician: Clinician, employee_id: str,
                      on_duty: dict[str, dict], note: str | None = None,
                      override_reason: str | None = None) -> Change:
    """A supervising clinician (authorized by the route) gives the incident to someone else, by
    routing.owner_refusal's rules; a refusal is a 422 naming the rule and the field at fault."""
    before = lock_incident(cur, incident_id=incident_id)
    if before is None:
        raise ApiError(404, f"no incident {incident_id}")
    refused = reassign_refusal(before, clinician=clinician)
    if refused:
        raise refused
    target = _employee(cur, employee_id)
    if target is None:
        raise ApiError(422, f"unknown employee_id {employee_id!r}", field="employee_id",
                       rule="unknown_employee")
    if before["assigned_to"] == employee_id:
        raise ApiError(409, f"incident {incident_id} is already assigned to {employee_id}",
                       incident_status=before["status"], allowed_actions=actions_in_status(before["status"]))
    route = routing.route_of(cur, before)
    refusal = routing.owner_refusal(route, person=target, on_duty=on_duty, by_supervisor=True,
                                    override_reason=override_reason)
    if refusal:
        raise ApiError(422, f"cannot reassign incident {incident_id}: {refusal.message}", field=refusal.field,
                       rule=refusal.rule, allowed_roles=route.allowed_roles)
    override = _override_note(route, target, override_reason)
    return hand_over(cur, before=before, to=target, actor=clinician, reason="REASSIGN",
                     action="REASSIGNED", note=_joined(note, override),
                     message=reassigned_message(before, by=clinician, to=target),
                     said="REASSIGNED", override_reason=override_reason if override else None)


def decline_incident(cur, *, incident_id: int, clinician: Clinician, everyone: list[dict] | None,
                     reason: str | None = None, channel: str = "app") -> Change:
    """The assignee cannot take the alarm: it moves at once to the next candidate of the routing
    order who never held it (routing.first_candidates with the patient's care team: her nurse,
    the charge nurse, the ward's pool, then the hospital's; least busy first), and why is kept.
    Refused (409) when there is nobody: the last available person must acknowledge or hand it
    over. `everyone`: who is available (routing.everyone_available, asked before the
    transaction; None: unknown)."""
    before = _locked(cur, incident_id=incident_id, action="decline", clinician=clinician)
    if everyone is None:
        raise ApiError(503, "cannot tell who else is available (the on-call service does not answer); "
                       "acknowledge it or try again", retry_after_seconds=5)
    cur.execute("SELECT employee_id FROM incident_assignments WHERE incident_id = %s", (incident_id,))
    past = {row["employee_id"] for row in cur.fetchall()} | {clinician.employee_id}
    route = routing.route_of(cur, before)
    care = care_teams.care_teams_of(cur, patient_ids=[before["patient_id"]], at=clock.now())
    group = routing.first_candidates(everyone, route, care=care.get(before["patient_id"]), exclude=past,
                                     fallback=False)
    chosen = routing.least_busy(cur, list(group.candidates)) if group else None
    if chosen is None:
        raise ApiError(409, "Nobody else is available to take it: acknowledge it, or ask a supervisor to "
                       "hand it over.", rule="last_available", incident_status=before["status"],
                       allowed_actions=actions_in_status(before["status"]))
    return hand_over(cur, before=before, to=chosen, actor=clinician, reason="DECLINE", action="DECLINED",
                     note=_joined("declined", reason), channel=channel,
                     message=declined_message(before, by=clinician, reason=reason), said="DECLINED",
                     routed=group)


def add_note(cur, *, incident_id: int, clinician: Clinician, body: str) -> tuple[dict, Change]:
    _, incident, event = _assignee_step(
        cur, incident_id=incident_id, clinician=clinician, action="note", changes=(),
        recorded_as="NOTE_ADDED", event_type="INCIDENT_NOTE_ADDED", note=body,
        message=lambda incident: f"{clinician.name} added a note to {incident['title']}: {body[:200]}")
    cur.execute("""
        INSERT INTO incident_notes (incident_id, author_id, body, created_at) VALUES (%s, %s, %s, %s)
        RETURNING note_id, author_id, body, created_at
    """, (incident_id, clinician.employee_id, body, incident["updated_at"]))
    return cur.fetchone(), Change(incident, event)
