"""HTTP routes of the incident management service. Each is validated and documented by its
models (schemas.py), calls one function of lifecycle.py / incidents.py / performance.py inside one
transaction, observes metrics once that transaction committed, and answers JSON."""
from flask import Blueprint, current_app

from healthguard import phi_access
from healthguard.api import responses
from healthguard.auth import caller, clinician_only, current_clinician, supervisor_only
from healthguard.context import settings
from healthguard.errors import ApiError
from healthguard.oncall_client import OnCallClient
from healthguard.web import platform

from . import incidents, lifecycle, performance, policies, routing
from .metrics import ASSIGNMENTS, MTTA, MTTR
from .schemas import (
    MAX_HOURLY_HOURS,
    Acknowledgement,
    ActionNote,
    Claim,
    Decline,
    EscalationPolicies,
    EscalationPolicy,
    Figures,
    FiguresWindow,
    Incident,
    IncidentDetail,
    IncidentFilter,
    IncidentNote,
    IncidentPage,
    NewNote,
    PolicyChange,
    PolicyReplacement,
    PossibleOwners,
    Reassignment,
    Resolution,
    Trends,
    TrendsWindow,
    api,
)

blueprint = Blueprint("incidents", __name__, url_prefix="/api/v1")

# What a change of an incident may answer besides the common 400/401/503: the caller is not the
# assignee (or a service), no such incident, the status does not allow it, the body is too large.
CHANGE_ERRORS = (403, 404, 409, 413)
CHANGED = responses({200: Incident}, CHANGE_ERRORS)


def _on_duty_for_actions() -> dict[str, dict] | None:
    """Who is on duty, for the caller's allowed_actions (claim and reassign need it), asked
    before the transaction; None for a service (which may take no action) or when the on-call
    service cannot answer (claim and reassign are then not offered: they would answer 503)."""
    if caller().is_service:
        return None
    try:
        return routing.on_duty_now(_oncall())
    except ApiError:
        return None


def _changed(step, incident_id: int, *, clinician=None, **arguments):
    """Run one lifecycle step as the signed-in clinician (or `clinician`, whom a service acts
    for), observe its timings once it committed, and answer the incident as it is now, with what
    that clinician may do next."""
    on_duty = arguments["on_duty"] if "on_duty" in arguments else _on_duty_for_actions()
    with platform().db.transaction() as cur:
        change = step(cur, incident_id=incident_id, clinician=clinician or current_clinician(), **arguments)
    severity = change.incident["severity"]
    if change.response_seconds is not None:
        MTTA.labels(severity=severity).observe(change.response_seconds)
    if change.resolution_seconds is not None:
        MTTR.labels(severity=severity).observe(change.resolution_seconds)
    with platform().db.transaction() as cur:
        incident = incidents.get_incident(cur, incident_id=incident_id)
        actions = lifecycle.CallerActions(cur, clinician=clinician or current_clinician(), on_duty=on_duty)
        return incidents.incident_json(incident, allowed_actions=actions(incident))


@blueprint.patch("/incidents/<int:incident_id>/acknowledge")
@api.validate(json=Acknowledgement, body_optional=True, resp=CHANGED)
def acknowledge(incident_id: int, json: Acknowledgement):
    """The assignee acknowledges (ASSIGNED or REASSIGNED to ACKNOWLEDGED); stores the response time

    A clinician acknowledges for themselves (channel app). The notification service, with the
    service token, acknowledges on behalf of `employee_id` from the off-tab `channel` they
    answered on; the audit trail records the channel, and a second acknowledgement from another
    channel is a no-op answering the incident. 403: the service named no person, or channel app.
    A clinician's body employee_id and channel are ignored: they act as themselves, from the app."""
    if caller().is_service:
        if json.employee_id is None or json.channel == "app":
            raise ApiError(403, "this action must be taken by a signed-in clinician, or by the "
                                "notification service on behalf of employee_id from an off-tab channel")
        with platform().db.transaction() as cur:
            clinician = lifecycle.clinician_by_id(cur, json.employee_id)
        if clinician is None:
            raise ApiError(404, f"no employee {json.employee_id}", field="employee_id")
        return _changed(lifecycle.acknowledge_incident, incident_id, clinician=clinician, note=json.note,
                        channel=json.channel)
    # A clinician acknowledges as themselves, from the app: ids and channels in the body are ignored.
    return _changed(lifecycle.acknowledge_incident, incident_id, note=json.note)


@blueprint.patch("/incidents/<int:incident_id>/start")
@clinician_only
@api.validate(json=ActionNote, body_optional=True, resp=CHANGED)
def start(incident_id: int, json: ActionNote):
    """The assignee starts work (to IN_PROGRESS)"""
    return _changed(lifecycle.start_work, incident_id, note=json.note)


@blueprint.patch("/incidents/<int:incident_id>/resolve")
@clinician_only
@api.validate(json=Resolution, resp=CHANGED)
def resolve(incident_id: int, json: Resolution):
    """The assignee resolves (IN_PROGRESS to RESOLVED); stores the resolution time"""
    return _changed(lifecycle.resolve_incident, incident_id, resolution_notes=json.resolution_notes)


def _oncall() -> OnCallClient:
    """This thread's client of the on-call service (a requests.Session is not shared), asked
    before the transaction: a slow answer must not hold the incident's row lock."""
    local = current_app.extensions["incidents.oncall"]
    if getattr(local, "client", None) is None:
        local.client = OnCallClient(settings().ONCALL_URL, settings().SERVICE_TOKEN)
    return local.client


@blueprint.patch("/incidents/<int:incident_id>/claim")
@clinician_only
@api.validate(json=Claim, body_optional=True, resp=responses({200: Incident}, (*CHANGE_ERRORS, 503)))
def claim(incident_id: int, json: Claim):
    """The caller takes the incident over (REASSIGNED; ASSIGNED when nobody had it)

    403 with the reason and its `rule` when the caller may not own it: not on duty, of a role the
    alarm is not routed to (a supervisor may override with override_reason, never a CRITICAL alarm
    for a non-clinical role), or the assignee has acknowledged or started it and is signed in
    (then only a supervisor takes it). 503 when the on-call service cannot say who is on duty."""
    on_duty = routing.on_duty_now(_oncall())
    answer = _changed(lifecycle.claim_incident, incident_id, on_duty=on_duty, note=json.note,
                      override_reason=json.override_reason)
    ASSIGNMENTS.labels(reason="CLAIM").inc()
    return answer


@blueprint.patch("/incidents/<int:incident_id>/reassign")
@supervisor_only
@api.validate(json=Reassignment, resp=responses({200: Incident}, (*CHANGE_ERRORS, 422, 503)))
def reassign(incident_id: int, json: Reassignment):
    """A supervising clinician gives the incident to someone else

    422 with the `field` and `rule` at fault when employee_id names nobody, or someone not on
    duty or not signed in, or of a role the alarm is not routed to without override_reason, or
    a non-clinical role for a CRITICAL alarm (never, override or not). 503 when the on-call
    service cannot say who is on duty."""
    on_duty = routing.on_duty_now(_oncall())
    answer = _changed(lifecycle.reassign_incident, incident_id, employee_id=json.employee_id, on_duty=on_duty,
                      note=json.note, override_reason=json.override_reason)
    ASSIGNMENTS.labels(reason="REASSIGN").inc()
    return answer


def _on_behalf(json) -> dict:
    """Who acts: the signed-in clinician from the app, or, with the service token, the person the
    notification service names, from the off-tab channel they answered on (issue 23)."""
    if caller().is_service:
        if json.employee_id is None or json.channel == "app":
            raise ApiError(422, "the service acts on behalf of employee_id from an off-tab channel "
                                "(push, email, sms, voice, badge)", field="employee_id")
        with platform().db.transaction() as cur:
            clinician = lifecycle.clinician_by_id(cur, json.employee_id)
        if clinician is None:
            raise ApiError(404, f"no employee {json.employee_id}", field="employee_id")
        return {"clinician": clinician, "channel": json.channel}
    if json.channel != "app" or json.employee_id not in (None, current_clinician().employee_id):
        raise ApiError(422, "a clinician acts for themselves, from the app", field="channel")
    return {}


@blueprint.patch("/incidents/<int:incident_id>/decline")
@api.validate(json=Decline, body_optional=True,
              resp=responses({200: Incident}, (*CHANGE_ERRORS, 422, 503)))
def decline(incident_id: int, json: Decline):
    """The assignee cannot take it: it moves at once to the next candidate of the routing order

    Only while unacknowledged (ASSIGNED, REASSIGNED). 409 with `rule` last_available when nobody
    else can take it (acknowledge it, or ask a supervisor to hand it over). 503 when the on-call
    service cannot say who is available. The notification service, with the service token,
    declines on behalf of `employee_id` from the off-tab `channel` they pressed Reject (or 2) on;
    the audit trail records it. 422 as for acknowledge."""
    acting = _on_behalf(json)
    everyone = routing.everyone_available(_oncall())
    answer = _changed(lifecycle.decline_incident, incident_id, everyone=everyone, reason=json.reason,
                      **acting)
    ASSIGNMENTS.labels(reason="DECLINE").inc()
    return answer


@blueprint.get("/incidents/<int:incident_id>/owners")
@api.validate(resp=responses({200: PossibleOwners}, (404, 503)))
def possible_owners(incident_id: int):
    """Who is on duty now, and whether each may own this incident (the reassign list)

    may_own: yes as things stand; needs_override: only by a supervisor's override with a reason;
    otherwise `refusal` says why not (not signed in, a non-clinical role for a CRITICAL alarm).
    The current assignee is left out. 503 when the on-call service cannot say who is on duty."""
    on_duty = routing.on_duty_now(_oncall())
    with platform().db.transaction() as cur:
        incident = incidents.get_incident(cur, incident_id=incident_id)
        if incident is None:
            raise ApiError(404, f"no incident {incident_id}")
        route = routing.route_of(cur, incident)
    return {"incident_id": incident_id, "allowed_roles": route.allowed_roles,
            "owners": routing.owners_to_choose(route, on_duty=on_duty, exclude={incident["assigned_to"]})}


@blueprint.post("/incidents/<int:incident_id>/notes")
@clinician_only
@api.validate(json=NewNote, resp=responses({201: IncidentNote}, (403, 404, 413)))
def add_note(incident_id: int, json: NewNote):
    """The assignee adds a note"""
    with platform().db.transaction() as cur:
        note, _ = lifecycle.add_note(cur, incident_id=incident_id, clinician=current_clinician(),
                                     body=json.note)
    return ({**note, "created_at": note["created_at"].isoformat()}, 201,
            {"Location": f"/api/v1/incidents/{incident_id}"})


@blueprint.get("/incidents")
@api.validate(query=IncidentFilter, resp=responses({200: IncidentPage}, (422,)))
def list_incidents(query: IncidentFilter):
    """Incidents, most severe and oldest unacknowledged first (or newest first), a page at a time

    422 for mine=true with the service token, which is nobody's."""
    if query.mine and caller().is_service:
        raise ApiError(422, "mine=true needs a signed-in clinician", field="mine")
    try:
        after = incidents.parse_cursor(query.cursor, query.order)
    except (ValueError, ArithmeticError) as exc:
        raise ApiError(400, f"cursor is not a `next` value of order={query.order}", field="cursor") from exc
    on_duty = _on_duty_for_actions()
    with platform().db.transaction() as cur:
        rows = incidents.list_incidents(
            cur, limit=query.limit, order=query.order, after=after, statuses=query.status,
            severities=query.severity, assigned_to=current_clinician().employee_id if query.mine else None,
            patient_id=query.patient_id, since=query.since, ward=query.ward, search=query.q)
        actions = lifecycle.CallerActions(cur, clinician=current_clinician(), on_duty=on_duty,
                                          incidents=rows[:query.limit])
        # Every patient of the page, in one insert, in this transaction.
        phi_access.record(cur, (row["patient_id"] for row in rows[:query.limit]))
        page = [incidents.incident_json(row, allowed_actions=actions(row)) for row in rows[:query.limit]]
    return {"incidents": page, "next": incidents.list_cursor(rows, query.limit, query.order),
            "limit": query.limit}


@blueprint.get("/incidents/<int:incident_id>")
@api.validate(resp=responses({200: IncidentDetail}, (404,)))
def get_incident(incident_id: int):
    """One incident with its alert, assignee, notes, assignments and history

    allowed_actions: what the caller may do to it now."""
    on_duty = _on_duty_for_actions()
    with platform().db.transaction() as cur:
        # One snapshot for all its reads: under READ COMMITTED a change committed between them
        # showed its history row beside the columns from before it. Not READ ONLY: the answer's
        # access is logged in the same transaction.
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        incident = incidents.get_incident(cur, incident_id=incident_id)
        if incident is None:
            raise ApiError(404, f"no incident {incident_id}")
        phi_access.check_single_patient_access(cur, incident["patient_id"])
        actions = lifecycle.CallerActions(cur, clinician=current_clinician(), on_duty=on_duty)
        detail = incidents.incident_detail(cur, incident, allowed_actions=actions(incident))
        phi_access.record(cur, [incident["patient_id"]])
        return detail


@blueprint.get("/incidents/metrics")
@api.validate(query=FiguresWindow, resp=responses({200: Figures}))
def incident_metrics(query: FiguresWindow):
    """Counts by status and severity, MTTA and MTTR (avg, p50, p90), per clinician"""
    with platform().db.transaction() as cur:
        return performance.incident_figures(cur, hours=query.hours)


@blueprint.get("/incidents/trends")
@api.validate(query=TrendsWindow, resp=responses({200: Trends}, (422,)))
def incident_trends(query: TrendsWindow):
    """MTTA, MTTR and incidents raised, and alarms received by severity, per hour or day

    Hours and days are the hospital's (HOSPITAL_TZ). 422 for more than a week per hour."""
    if query.bucket == "hour" and query.hours > MAX_HOURLY_HOURS:
        raise ApiError(422, f"at most {MAX_HOURLY_HOURS} hours per hour; ask per day", field="hours")
    with platform().db.transaction() as cur:
        return performance.incident_trends(cur, hours=query.hours, bucket=query.bucket,
                                           tz=settings().HOSPITAL_TZ)


@blueprint.get("/escalation-policies")
@api.validate(resp=responses({200: EscalationPolicies}))
def list_escalation_policies():
    """The escalation policy of each severity, most severe first"""
    with platform().db.transaction() as cur:
        return {"policies": policies.list_policies(cur)}


POLICY_CHANGED = responses({200: EscalationPolicy}, (403, 404, 413, 422))


def _changed_policy(severity: str, changes: dict):
    with platform().db.transaction() as cur:
        return policies.change_policy(cur, severity=severity, changes=changes, clinician=current_clinician())


@blueprint.put("/escalation-policies/<severity>")
@supervisor_only
@api.validate(json=PolicyReplacement, resp=POLICY_CHANGED)
def replace_escalation_policy(severity: str, json: PolicyReplacement):
    """Replace a severity's escalation policy (supervisors; recorded with the policy before)

    404 for an unknown severity, 422 for a role nobody has."""
    return _changed_policy(severity, json.model_dump())


@blueprint.patch("/escalation-policies/<severity>")
@supervisor_only
@api.validate(json=PolicyChange, resp=POLICY_CHANGED)
def change_escalation_policy(severity: str, json: PolicyChange):
    """Change some fields of a severity's escalation policy (supervisors; recorded)

    404 for an unknown severity, 422 for a role nobody has. start_timeout_seconds null: never."""
    changes = {key: value for key, value in json.model_dump(exclude_unset=True).items()
               if value is not None or key == "start_timeout_seconds"}
    return _changed_policy(severity, changes)
