"""What the on-call routes accept and answer. The same models validate requests and generate the
OpenAPI document at /api/v1/openapi.json (healthguard.api)."""
import datetime as dt
from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PlainValidator,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)

from healthguard.api import NO_NUL, QueryList, RequestModel, ResponseModel, Text, Timestamp, service_api
from healthguard.domain import Availability

api = service_api(
    "HealthGuard Ops on-call service",
    "Identity (sign-in and sessions), shift schedules in the hospital's time zone, who is on duty "
    "now and who can take an incident.")

EmployeeId = Text(32)
Role = Text(32)
# Credentials are compared as sent: a password's blanks are part of it (but never a NUL).
Password = Annotated[str, StringConstraints(min_length=1, max_length=256, strip_whitespace=False,
                                            pattern=NO_NUL, strict=True)]

_DATE = TypeAdapter(dt.date)
_DATE_TIME = TypeAdapter(dt.datetime)


def _day_or_instant(value):
    """A date ('2026-03-29': a hospital-local day) or a date-time (without an offset: hospital
    local time). Which one a view gets decides what it means, so they are told apart here."""
    try:
        if isinstance(value, str) and len(value.strip()) == 10:
            return _DATE.validate_python(value.strip())
        return _DATE_TIME.validate_python(value)
    except ValidationError as exc:
        raise ValueError(exc.errors(include_url=False)[0]["msg"]) from None


DayOrInstant = Annotated[
    dt.date | dt.datetime, PlainValidator(_day_or_instant),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date"},
                              {"type": "string", "format": "date-time"}],
                    "description": "an ISO 8601 date (a day in the hospital's time zone) or "
                                   "date-time (without a UTC offset: hospital local time)"})]


# Requests

class Credentials(RequestModel):
    login: Text(256) = Field(examples=["D01"])
    password: Password = Field(json_schema_extra={"format": "password"})
    session_cookie: bool = Field(False, strict=True, description=(
        "true (the web UI): the session goes into an HttpOnly, SameSite=Strict cookie shared by "
        "the browser's tabs, ends after SESSION_IDLE_MINUTES without use, and the answer carries "
        "its CSRF token instead of the session token; false: the token is in the answer"))


# A new password: long enough that guessing it online is hopeless under the sign-in throttle.
# The rest of the rules (not a common password, not a repeat or a run) are
# healthguard.passwords.weakness's, answered 422.
NewPassword = Annotated[str, StringConstraints(min_length=12, max_length=256, strip_whitespace=False,
                                               strict=True)]


class PasswordChange(RequestModel):
    """Public on purpose: a clinician whose password was reset has no session until it is
    changed; the current (one-time) password is the proof."""
    login: Text(256) = Field(examples=["D01"])
    current_password: Password = Field(json_schema_extra={"format": "password"})
    new_password: NewPassword = Field(json_schema_extra={"format": "password"},
                                      description="12 to 256 characters, not the current one, "
                                                  "not a common password, a repeat or a run")


class PasswordReset(ResponseModel):
    employee_id: str
    temporary_password: str = Field(description="one-time: shown only here; it signs in only to "
                                                 "POST /api/v1/auth/password")
    expires_at: dt.datetime = Field(description="it stops working then (ONE_TIME_PASSWORD_HOURS)")


class AccountAdminChange(RequestModel):
    account_admin: bool = Field(strict=True, description="true: may reset passwords and grant this")


class AuditFilter(RequestModel):
    employee_id: EmployeeId | None = Field(None, description="only this employee's account")
    before: int | None = Field(None, ge=1, strict=False, description="only entries older than this "
                               "audit_id (the next page)")
    limit: int = Field(50, ge=1, le=200)


class AccessLogExportFilter(RequestModel):
    patient_id: Text(64) | None = Field(None, description="only this patient's entries")
    employee_id: EmployeeId | None = Field(None, description="only this user's reads")
    since: Timestamp | None = Field(None, description="from this time (inclusive)")
    until: Timestamp | None = Field(None, description="until this time (exclusive)")


class AccessLogFilter(AccessLogExportFilter):
    before: int | None = Field(None, ge=1, strict=False, description="only entries older than this "
                               "access_id (the `next` of the page before)")
    limit: int = Field(100, ge=1, le=500)


class AccessLogEntry(ResponseModel):
    access_id: int
    accessed_at: dt.datetime
    patient_id: str
    employee_id: str | None = Field(description="the signed-in user; null for a device or a service")
    employee_name: str | None
    device_id: int | None = Field(description="the device of the registry; null for a bootstrap key")
    accessor_kind: Literal["EMPLOYEE", "DEVICE", "SERVICE"]
    route: str = Field(description="method and route, e.g. GET /api/v1/incidents/<int:incident_id>")
    address: str | None = Field(description="the client's address")
    purpose: Literal["treatment", "break-glass"]
    reason: str | None = Field(description="the reason typed for a break-glass access")


class AccessLog(ResponseModel):
    entries: list[AccessLogEntry]
    next: int | None = Field(description="pass as `before` for older entries; null: no more")


class AccountAuditEntry(ResponseModel):
    audit_id: int
    action: Literal["PASSWORD_RESET", "ACCOUNT_ADMIN_GRANTED", "ACCOUNT_ADMIN_REVOKED"]
    employee_id: str = Field(description="whose account")
    employee_name: str
    actor_id: str | None = Field(description="who did it; null: an operator on the server's "
                                             "command line")
    actor_name: str | None
    occurred_at: dt.datetime
    source_address: str | None = Field(description="the actor's client address")


class AccountAudit(ResponseModel):
    entries: list[AccountAuditEntry] = Field(description="newest first")


def _upper(value):
    return value.strip().upper() if isinstance(value, str) else value


class AvailabilityChange(RequestModel):
    availability: Annotated[Availability, BeforeValidator(_upper)] = Field(
        description="AWAY: no new incidents until AVAILABLE again (case does not matter)")


class OverrideRequest(RequestModel):
    """Cover another clinician's shifts between starts_at and ends_at (replaces_id), or add a
    clinician on duty for the whole period (no replaces_id)."""
    employee_id: EmployeeId = Field(description="who is on duty", examples=["D03"])
    replaces_id: EmployeeId | None = Field(None, description="whose shifts they cover",
                                           examples=["D01"])
    starts_at: DayOrInstant
    ends_at: DayOrInstant
    reason: Text(500, min_length=0) | None = Field(None, examples=["sick leave"])


class RoleFilter(RequestModel):
    role: Role | None = Field(None, description="only this role", examples=["NURSE"])


class AvailableFilter(RequestModel):
    roles: QueryList(Role) = Field(default_factory=list, description="any of these roles, in no "
                                   "order (repeated or comma-separated); none: any role")


class SchedulePeriod(RequestModel):
    """A period of at most 31 days. Default: today. Without `to`, `days` hospital-local days
    from `from`."""
    start: DayOrInstant | None = Field(None, alias="from", description="default: today")
    end: DayOrInstant | None = Field(None, alias="to", description="a date is included whole")
    days: int = Field(1, ge=1, le=31, description="with no `to`: how many days")
    role: Role | None = Field(None, description="only this role")


# Responses

class SessionEmployee(ResponseModel):
    employee_id: str
    login: str
    name: str
    role: str
    tier: int
    is_supervisor: bool
    is_account_admin: bool
    is_privacy_officer: bool = Field(description="may read the PHI access log (and only they may)")


class SignedIn(ResponseModel):
    token: str | None = Field(None, description="the session token, shown only here: send it as "
                                                "Authorization: Bearer <token> (absent with "
                                                "session_cookie: the cookie holds it)")
    csrf_token: str | None = Field(None, description="with session_cookie: send it as X-CSRF-Token "
                                                     "on every request but GET, HEAD and OPTIONS")
    expires_at: dt.datetime
    employee: SessionEmployee


class Employee(ResponseModel):
    employee_id: str
    login: str
    name: str
    role: str
    specialty: str | None
    tier: int
    is_supervisor: bool
    is_account_admin: bool = Field(description="may reset passwords and grant this")
    is_privacy_officer: bool = Field(description="may read the PHI access log (and only they may)")
    signed_in: bool = Field(description="has a live session now")
    availability: Availability
    last_login: dt.datetime | None


class EmployeeList(ResponseModel):
    employees: list[Employee]


class SessionInfo(ResponseModel):
    expires_at: dt.datetime | None = Field(description="the end of the shift-long session")
    idle_minutes: float | None = Field(None, description="it ends sooner after this long unused "
                                                         "(null: no idle limit)")
    csrf_token: str | None = Field(None, description="for a cookie session: the X-CSRF-Token "
                                                     "header's value (a new tab reads it here)")


class Me(ResponseModel):
    employee: Employee
    session: SessionInfo
    timezone: str = Field(description="HOSPITAL_TZ: the zone the web UI shows every time in",
                          examples=["Europe/London"])


class AvailableClinician(ResponseModel):
    employee_id: str
    name: str
    role: str
    tier: int
    active_incidents: int = Field(description="assigned and not resolved")
    last_assigned_at: dt.datetime | None = Field(description="null: never assigned")


class AvailableClinicians(ResponseModel):
    clinicians: list[AvailableClinician] = Field(
        description="least busy first, then longest idle (never assigned first), then by id")


class DutyShift(ResponseModel):
    shift_code: str | None = Field(description="null: an added duty (override without replaces_id)")
    starts_at: dt.datetime
    ends_at: dt.datetime
    source: Literal["rotation", "override"]
    override_id: int | None
    replaces_id: str | None


class OnDutyClinician(ResponseModel):
    employee_id: str
    name: str
    role: str
    tier: int
    specialty: str | None
    is_supervisor: bool
    signed_in: bool = Field(description="has a live session")
    availability: Availability
    active_incidents: int
    last_assigned_at: dt.datetime | None
    shift: DutyShift


class OnCallNow(ResponseModel):
    at: dt.datetime
    timezone: str = Field(examples=["Europe/London"])
    clinicians: list[OnDutyClinician]


class ScheduledShift(ResponseModel):
    employee_id: str
    name: str | None
    role: str
    shift_code: str | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    source: Literal["rotation", "override"]
    rotation_id: int | None
    override_id: int | None
    replaces_id: str | None


class Schedule(ResponseModel):
    start: dt.datetime = Field(alias="from")
    end: dt.datetime = Field(alias="to")
    timezone: str
    shifts: list[ScheduledShift] = Field(description="earliest first")


class Override(ResponseModel):
    override_id: int
    employee_id: str
    replaces_id: str | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    reason: str | None
    created_by: str
    created_at: dt.datetime
