"""What the incident management routes accept and answer. The same models validate requests and
generate the OpenAPI document at /api/v1/openapi.json (healthguard.api)."""
from datetime import datetime
from typing import Literal

from pydantic import Field

from healthguard.api import QueryList, RequestModel, ResponseModel, Text, Timestamp, service_api
from healthguard.domain import ACTIONS, Severity
from healthguard.domain import IncidentStatus as Status
from healthguard.params import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

from .care_schemas import RoutedAs, Told
from .incidents import LIST_ORDERS

api = service_api(
    "HealthGuard Ops incident management",
    "Turns alerts from the severity queues (most severe first) into incidents, repeats of an alarm "
    "into the incident open for it, assigns the least busy available clinician of the right role, "
    "and tracks the lifecycle. Every change is recorded in the incident's history and announced "
    "on the `notifications` queue.")

Action = Literal[tuple(ACTIONS)]
EmployeeId = Text(32)
MAX_TEXT = 4000
NoteText = Text(MAX_TEXT)
MAX_HOURS = 24 * 90


# Requests

class ActionNote(RequestModel):
    """An optional note kept in the incident's history with the change."""
    note: NoteText | None = Field(None, examples=["On my way, two minutes"])


AckChannel = Literal["app", "push", "email", "sms", "voice", "badge"]


class Acknowledgement(ActionNote):
    """A clinician acknowledges for themselves (channel app, no employee_id). The notification
    service (the SERVICE_TOKEN) acknowledges on behalf of `employee_id` from the off-tab
    `channel` they answered on (a push action, an email link); the audit trail records it."""
    channel: AckChannel = Field("app", description="only with the service token: the off-tab channel "
                                "(a clinician's acknowledgement is always from the app)")
    employee_id: str | None = Field(None, min_length=1, max_length=64,
                                    description="only with the service token: whom it acknowledges for "
                                                "(ignored from a clinician)")


class Resolution(RequestModel):
    resolution_notes: NoteText = Field(examples=["Defibrillated, sinus rhythm restored"])


OverrideReason = Text(500)
OVERRIDE = ("a supervisor's reason to go outside the roles the alarm is routed to (audited); never "
            "allows a CRITICAL alarm for a non-clinical role")


class Claim(ActionNote):
    override_reason: OverrideReason | None = Field(None, description=OVERRIDE)


class Reassignment(RequestModel):
    employee_id: EmployeeId = Field(description="the clinician who takes the incident over: on duty, "
                                                "signed in, of a routed role", examples=["S01"])
    note: NoteText | None = None
    override_reason: OverrideReason | None = Field(None, description=OVERRIDE,
                                                   examples=["the only doctor on the ward"])


class Decline(RequestModel):
    reason: NoteText | None = Field(None, description="why (kept in the audit trail)",
                                    examples=["In theatre, scrubbed in"])
    channel: AckChannel = Field("app", description="app for the caller themselves; the service names "
                                "the off-tab channel the person declined from (sms, voice, badge)")
    employee_id: str | None = Field(None, min_length=1, max_length=64,
                                    description="only with the service token: who declines")


class NewNote(RequestModel):
    note: NoteText = Field(examples=["Amiodarone 300 mg given"])


class IncidentFilter(RequestModel):
    status: QueryList(Status) = []
    severity: QueryList(Severity) = []
    mine: bool = Field(False, description="true: only those assigned to the caller (a clinician)")
    patient_id: Text(32) | None = None
    ward: Text(64) | None = Field(None, description="the patient's ward", examples=["Cardiology"])
    q: Text(64) | None = Field(None, examples=["312"],
                               description="search: a room, a patient's id, or part of a patient's name")
    since: Timestamp | None = Field(None, description="created at or after")
    order: Literal[LIST_ORDERS] = Field(
        "priority", description="priority: active first, most severe first, then those waiting for an "
                                "acknowledgement, oldest first (resolved ones last, newest first); "
                                "newest: newest first")
    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="page size")
    cursor: Text(80, pattern=r"^[0-9]+(\.[0-9]+_[0-9]+|_[0-9]+)?$") | None = Field(
        None, description="the `next` value of the previous page, with the same order and filters")


class FiguresWindow(RequestModel):
    hours: int = Field(24, ge=1, le=MAX_HOURS, description="the window, in whole hours back from now")


MAX_HOURLY_HOURS = 24 * 7


class TrendsWindow(RequestModel):
    hours: int = Field(24, ge=1, le=MAX_HOURS,
                       description=f"whole hours back from now; at most {MAX_HOURLY_HOURS} per hour")
    bucket: Literal["hour", "day"] = Field("hour", description="hospital-local hours or days")


Role = Text(64, pattern=r"^[A-Z][A-Z_]*$")


class PolicyReplacement(RequestModel):
    """A whole escalation policy (PUT)."""
    ack_timeout_seconds: int = Field(ge=1, le=24 * 3600, description="time to acknowledge before escalation",
                                     examples=[60])
    start_timeout_seconds: int | None = Field(
        None, ge=1, le=24 * 3600, description="time from acknowledgement to start of work before the "
                                               "owner is paged again; null: never")
    escalate_to_roles: list[Role] = Field(min_length=1, max_length=20, examples=[["EMERGENCY_DOCTOR"]])
    max_level: int = Field(ge=0, le=10, description="how many times it escalates before every "
                                                    "emergency doctor on duty is paged")


class PolicyChange(RequestModel):
    """Some fields of an escalation policy (PATCH); those left out keep their value."""
    ack_timeout_seconds: int | None = Field(None, ge=1, le=24 * 3600, examples=[45])
    start_timeout_seconds: int | None = Field(None, ge=1, le=24 * 3600)
    escalate_to_roles: list[Role] | None = Field(None, min_length=1, max_length=20)
    max_level: int | None = Field(None, ge=0, le=10)


# Responses

class EscalationPolicy(ResponseModel):
    severity: Severity
    ack_timeout_seconds: int
    start_timeout_seconds: int | None
    escalate_to_roles: list[str]
    max_level: int


class EscalationPolicies(ResponseModel):
    policies: list[EscalationPolicy]


AssignmentReason = Literal["AUTO", "CLAIM", "REASSIGN", "ESCALATION", "DECLINE"]


class Assignee(ResponseModel):
    employee_id: str
    name: str
    role: str
    tier: int


class Incident(ResponseModel):
    incident_id: int
    alert_id: int
    patient_id: str | None = Field(description="null for a device's own alarm (a silent ward monitor or "
                                               "gateway): see device_name")
    patient_name: str | None
    alert_type: str
    alert_name: str
    severity: Severity
    category: str
    room: str | None = Field(description="the patient's room; null for a device's own alarm")
    title: str = Field(examples=["CRITICAL: Cardiac arrest, room 312"])
    ward: str | None = Field(description="the patient's ward, or the device's for its own alarm; null for a "
                                         "device of the whole hospital")
    device_name: str | None = Field(description="the device whose own alarm this is (no patient), "
                                                "e.g. DEVICE_SILENT of a ward monitor")
    patient_age: int | None = Field(description="in whole years; null when the date of birth is unknown")
    unit: str | None = Field(description="the unit of the alert type's reading; null: no measured value")
    normal_min: float | None = Field(description="the normal (adult) range of the reading, in `unit`")
    normal_max: float | None
    is_test: bool = Field(description="raised by a clinician's manual test alert, not by a device")
    status: Status
    assigned_to: str | None
    assignee: Assignee | None
    assignment_reason: AssignmentReason | None = Field(
        description="how the assignee got it: ESCALATION (not acknowledged in time by the one before: "
                    "say Escalated), DECLINE (the one before declined), AUTO, CLAIM, REASSIGN")
    unowned: bool = Field(description="nobody owns the alarm: OPEN, or out of escalation levels with every "
                                      "last-resort clinician paged and nobody has taken it")
    unowned_since: datetime | None = Field(description="since when it is unowned")
    paged: list[str] = Field(description="whom the alarm sounds for now: the assignee until they acknowledge,"
                                         " "
                                         "and at the last step every last-resort clinician paged")
    escalation_level: int = Field(description="how often it was escalated for want of an acknowledgement")
    alert_count: int = Field(description="how often its alarm sounded: repeats within the correlation "
                                         "window join the incident instead of opening another")
    last_alert_at: datetime = Field(description="when its alarm last sounded")
    created_at: datetime
    assigned_at: datetime | None
    acknowledged_at: datetime | None
    started_at: datetime | None
    resolved_at: datetime | None
    escalated_at: datetime | None
    ack_deadline: datetime | None = Field(
        description="the next deadline: by when the assignee must acknowledge (ASSIGNED, REASSIGNED; "
                    "else it is escalated) or start work (ACKNOWLEDGED; else they are paged again)")
    updated_at: datetime
    response_seconds: float | None = Field(description="OPEN to ACKNOWLEDGED (MTTA sample)")
    resolution_seconds: float | None = Field(description="OPEN to RESOLVED (MTTR sample)")
    resolution_notes: str | None
    allowed_actions: list[Action] = Field(
        description="what the caller may do to it now (the same rules refuse the others): by its "
                    "status, the caller's role and supervisor rights, whether they hold it, are on "
                    "duty and were paged; none for a service. claim and reassign are left out "
                    "while the on-call service cannot say who is on duty (they would answer 503). "
                    "decline may still answer 409 when nobody else is available")
    silenced_by: int | None = Field(None, description="the silence holding it (OPEN, paging nobody) until "
                                                      "the silence ends")


class IncidentAlert(ResponseModel):
    """The alert the incident was opened for."""
    alert_id: int
    patient_id: str | None
    alert_type: str
    severity: Severity
    category: str
    room: str | None
    value: float | None
    device_id: str | None
    source_alarm_id: str | None
    source: Literal["DEVICE", "MANUAL", "SIMULATOR"]
    triggered_by: str | None
    occurred_at: datetime
    received_at: datetime


class IncidentNote(ResponseModel):
    note_id: int
    author_id: str
    body: str
    created_at: datetime


class AuthoredNote(IncidentNote):
    author_name: str


class Assignment(ResponseModel):
    assignment_id: int
    employee_id: str
    name: str
    role: str
    assigned_by: str | None = Field(description="null: the system")
    reason: AssignmentReason
    override_reason: str | None = Field(
        description="a supervisor's reason for going outside the routed roles")
    assigned_at: datetime
    ended_at: datetime | None
    routed_as: RoutedAs | None = Field(None, description="the routing step that chose them (automatic "
                                                         "assignment, decline, escalation)")
    why: str | None = Field(None, description="chosen by routing: why this person, in words")


class Why(ResponseModel):
    routed_as: RoutedAs | None = Field(description="the routing step that chose the owner: automatic "
                                                   "assignment, decline or escalation (null: chosen by a "
                                                   "person, taken at the last step, or before care teams)")
    why: str | None = Field(description="in words, e.g. \"the patient's nurse this shift\"")


class HistoryEntry(ResponseModel):
    history_id: int
    action: str
    actor_id: str | None = Field(description="null: the system")
    actor_name: str | None
    previous_status: Status | None
    new_status: Status | None
    note: str | None
    channel: AckChannel | None = Field(None, description="where an acknowledgement came from: app, or "
                                       "the off-tab channel (push, email, sms, voice, badge)")
    created_at: datetime


class IncidentDetail(Incident):
    alert: IncidentAlert | None
    notes: list[AuthoredNote]
    assignments: list[Assignment]
    why: Why | None = Field(description="why the current owner got it (\"why this person\")")
    told: list[Told] = Field(description="told of the alarm without owning it (the patient's nurse of an "
                                         "alarm a nurse may not own)")
    history: list[HistoryEntry] = Field(description="the audit trail, oldest first")


class IncidentPage(ResponseModel):
    incidents: list[Incident]
    next: str | None = Field(description="pass as `cursor` for the next page; null on the last")
    limit: int


class Span(ResponseModel):
    hours: int
    since: datetime
    until: datetime


class Counts(ResponseModel):
    by_status: dict[Status, int]
    by_severity: dict[Severity, int]
    total: int


class Timing(ResponseModel):
    count: int
    avg: float | None
    p50: float | None
    p90: float | None


class ClinicianFigures(ResponseModel):
    employee_id: str
    name: str
    role: str
    active: int
    resolved: int
    mtta_avg_seconds: float | None
    mttr_avg_seconds: float | None


class Figures(ResponseModel):
    window: Span
    counts: Counts
    active_now: int
    unassigned_now: int
    active_by_status: dict[Status, int] = Field(description="incidents active now (any age), by status")
    active_by_severity: dict[Severity, int] = Field(description="incidents active now (any age), by severity")
    mtta_seconds: Timing
    mttr_seconds: Timing
    clinicians: list[ClinicianFigures]


class TrendPoint(ResponseModel):
    start: datetime = Field(description="the hospital-local hour or day, with its offset")
    incidents: int = Field(description="incidents raised in it")
    mtta_avg_seconds: float | None = Field(description="of those incidents; null: none acknowledged")
    mttr_avg_seconds: float | None = Field(description="of those incidents; null: none resolved")
    alarms_by_severity: dict[Severity, int] = Field(description="alerts received in it, repeats included")


class Trends(ResponseModel):
    window: Span
    bucket: Literal["hour", "day"]
    timezone: str = Field(examples=["Europe/London"])
    points: list[TrendPoint] = Field(description="oldest first, one per bucket, empty ones included")


class Refusal(ResponseModel):
    rule: str = Field(examples=["not_signed_in"])
    message: str


class PossibleOwner(ResponseModel):
    employee_id: str
    name: str | None
    role: str
    signed_in: bool
    availability: str | None
    active_incidents: int | None
    may_own: bool = Field(description="may be given the incident as things stand")
    needs_override: bool = Field(description="only by a supervisor's override, with override_reason")
    refusal: Refusal | None = Field(description="why not, when neither")


class PossibleOwners(ResponseModel):
    incident_id: int
    allowed_roles: list[str] = Field(description="the roles it goes to without an override, in routing order")
    owners: list[PossibleOwner] = Field(description="everyone on duty but the assignee: those who may own it "
                                                    "first, then those needing an override, then the others")
