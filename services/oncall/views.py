"""On duty now, schedules, overrides and employees: validated and documented by the models of
schemas.py, each calls a service function inside one transaction and answers JSON. Authentication
decorators sit above api.validate: 401/403 come before anything is said about the input."""
import datetime as dt
from zoneinfo import ZoneInfo

from flask import Blueprint

from healthguard import clock
from healthguard.api import responses
from healthguard.auth import account_admin_only, clinician_only, current_clinician, supervisor_only
from healthguard.context import settings
from healthguard.errors import ApiError
from healthguard.web import platform

from . import accounts, overrides, roster
from .auth_views import source_address
from .schedule import load_duties
from .schemas import (
    AccountAdminChange,
    AccountAudit,
    AuditFilter,
    AvailabilityChange,
    AvailableClinicians,
    AvailableFilter,
    Employee,
    EmployeeList,
    OnCallNow,
    Override,
    OverrideRequest,
    PasswordReset,
    RoleFilter,
    Schedule,
    SchedulePeriod,
    api,
)

blueprint = Blueprint("oncall", __name__, url_prefix="/api/v1")

MAX_PERIOD = dt.timedelta(days=31)


def hospital_tz() -> ZoneInfo:
    return settings().HOSPITAL_TZ


def now() -> dt.datetime:
    return clock.now()


# The rota is kept for this century; a period outside it is a mistake, not a question.
FIRST_YEAR, LAST_YEAR = 2000, 2099


def instant(value: dt.date | dt.datetime, name: str, *, end_of_day: bool = False) -> dt.datetime:
    """The instant (UTC) a request means: a date is local midnight in the hospital's time zone
    (for an end, the midnight after it, so the day is included); a date-time without an offset
    is hospital local time."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ApiError(422, f"{name} must be in the years {FIRST_YEAR} to {LAST_YEAR}", field=name)
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value + dt.timedelta(days=1) if end_of_day else value, dt.time(0))
    # In UTC: Python subtracts two times of one zone by wall clock, wrong across a clock change.
    return (value if value.tzinfo else value.replace(tzinfo=hospital_tz())).astimezone(dt.UTC)


def duty_json(duty, names: dict, tz: ZoneInfo) -> dict:
    return {"employee_id": duty.employee_id, "name": names.get(duty.employee_id), "role": duty.role,
            "shift_code": duty.shift_code, "starts_at": duty.starts_at.astimezone(tz).isoformat(),
            "ends_at": duty.ends_at.astimezone(tz).isoformat(), "source": duty.source,
            "rotation_id": duty.rotation_id, "override_id": duty.override_id,
            "replaces_id": duty.replaces_id}


@blueprint.get("/oncall/available")
@api.validate(query=AvailableFilter, resp=responses({200: AvailableClinicians}, [422]))
def available(query: AvailableFilter):
    """Who can take an incident now

    On duty, signed in (a live session) and not away; the contract with incident management."""
    with platform().db.transaction() as cur:
        clinicians = roster.available_clinicians(cur, tz=hospital_tz(), at=now(), roles=query.roles or None)
    return {"clinicians": clinicians}


@blueprint.get("/oncall/current")
@api.validate(query=RoleFilter, resp=responses({200: OnCallNow}, [422]))
def current(query: RoleFilter):
    """Who is on duty now, signed in or not, with availability and workload"""
    at = now()
    with platform().db.transaction() as cur:
        clinicians = roster.on_call_now(cur, tz=hospital_tz(), at=at, role=query.role)
    return {"at": at.astimezone(hospital_tz()).isoformat(), "timezone": hospital_tz().key,
            "clinicians": clinicians}


@blueprint.get("/schedules")
@api.validate(query=SchedulePeriod, resp=responses({200: Schedule}, [422]))
def schedules(query: SchedulePeriod):
    """Concrete shifts in a period of at most 31 days

    Dates are hospital-local days (`to` included); date-times without an offset are hospital
    local time. Default: today. Without `to`, `days` hospital-local days from `from` (default 1)."""
    tz = hospital_tz()
    start = instant(query.start or now().astimezone(tz).date(), "from")
    if query.end is not None:
        end = instant(query.end, "to", end_of_day=True)
    else:
        last_day = start.astimezone(tz).date() + dt.timedelta(days=query.days - 1)
        end = instant(last_day, "to", end_of_day=True)
    if end <= start:
        raise ApiError(422, "'to' must be after 'from'", field="to")
    if end - start > MAX_PERIOD:
        raise ApiError(422, "the period may be at most 31 days; ask for several shorter periods",
                       field="to")
    with platform().db.transaction() as cur:
        if query.role:
            roster.check_roles(cur, [query.role])
        duties = load_duties(cur, tz=tz, start=start, end=end)
        cur.execute("SELECT employee_id, name FROM employees")
        names = {row["employee_id"]: row["name"] for row in cur.fetchall()}
    shifts = [duty_json(d, names, tz) for d in duties if not query.role or d.role == query.role]
    return {"from": start.astimezone(tz).isoformat(), "to": end.astimezone(tz).isoformat(),
            "timezone": tz.key, "shifts": shifts}


@blueprint.post("/schedules/overrides")
@supervisor_only
@api.validate(json=OverrideRequest, resp=responses({201: Override}, [403, 413, 422]))
def create_override(json: OverrideRequest):
    """Cover another clinician's shifts, or add someone on duty (supervisors)"""
    with platform().db.transaction() as cur:
        created = overrides.create_override(
            cur, employee_id=json.employee_id, replaces_id=json.replaces_id,
            starts_at=instant(json.starts_at, "starts_at"), ends_at=instant(json.ends_at, "ends_at"),
            reason=json.reason, created_by=current_clinician().employee_id, tz=hospital_tz())
    return created, 201, {"Location": f"/api/v1/schedules/overrides/{created['override_id']}"}


@blueprint.delete("/schedules/overrides/<int(min=1):override_id>")
@supervisor_only
@api.validate(resp=responses({204: None}, [403, 404]))
def delete_override(override_id: int):
    """Remove an override (supervisors)"""
    with platform().db.transaction() as cur:
        overrides.delete_override(cur, override_id=override_id)
    return "", 204


@blueprint.get("/employees")
@api.validate(query=RoleFilter, resp=responses({200: EmployeeList}, [422]))
def employees(query: RoleFilter):
    """Staff, by id"""
    with platform().db.transaction() as cur:
        return {"employees": roster.list_employees(cur, role=query.role, at=now())}


@blueprint.get("/employees/<employee_id>")
@api.validate(resp=responses({200: Employee}, [404]))
def employee(employee_id: str):
    """One employee"""
    if "\x00" in employee_id:  # PostgreSQL text cannot hold NUL, so no id does
        raise ApiError(404, "no such employee")
    with platform().db.transaction() as cur:
        return roster.get_employee(cur, employee_id=employee_id, at=now())


@blueprint.get("/employees/account-audit")
@account_admin_only
@api.validate(query=AuditFilter, resp=responses({200: AccountAudit}, [403, 422]))
def account_audit(query: AuditFilter):
    """What was done to accounts: password resets and account-administrator grants, with who,
    whom, when and from which address, newest first (account administrators)"""
    with platform().db.transaction() as cur:
        entries = accounts.account_audit(cur, employee_id=query.employee_id, before_id=query.before,
                                         limit=query.limit)
    return {"entries": entries}


@blueprint.post("/employees/<employee_id>/password-reset")
@account_admin_only
@api.validate(resp=responses({200: PasswordReset}, [403, 404]))
def reset_password(employee_id: str):
    """Give a clinician a one-time password, to be changed at the next sign-in within
    ONE_TIME_PASSWORD_HOURS (account administrators, not every supervisor).

    Every session of theirs ends, the reset is audited (GET /api/v1/employees/account-audit), and
    they are told in their notifications."""
    if "\x00" in employee_id:  # PostgreSQL text cannot hold NUL, so no id does
        raise ApiError(404, "no such employee")
    clinician = current_clinician()
    actor = {"employee_id": clinician.employee_id, "name": clinician.name, "role": clinician.role}
    with platform().db.transaction() as cur:
        reset = accounts.reset_password(
            cur, employee_id=employee_id, actor=actor, address=source_address(),
            lifetime=settings().one_time_password_lifetime)
    if reset is None:
        raise ApiError(404, "no such employee")
    return {"employee_id": employee_id, "temporary_password": reset["temporary_password"],
            "expires_at": reset["expires_at"].isoformat()}


@blueprint.put("/employees/<employee_id>/account-admin")
@account_admin_only
@api.validate(json=AccountAdminChange, resp=responses({200: Employee}, [403, 404, 409, 413]))
def set_account_admin(employee_id: str, json: AccountAdminChange):
    """Grant or withdraw the account-administrator capability (account administrators; audited).
    Nobody withdraws their own (409): another administrator must."""
    if "\x00" in employee_id:
        raise ApiError(404, "no such employee")
    with platform().db.transaction() as cur:
        try:
            changed = accounts.set_account_admin(
                cur, employee_id=employee_id, admin=json.account_admin,
                actor_id=current_clinician().employee_id, address=source_address())
        except accounts.LastOwnAdministration:
            raise ApiError(409, "you may not withdraw your own account administration: another "
                                "account administrator must") from None
        if changed is None:
            raise ApiError(404, "no such employee")
        return roster.get_employee(cur, employee_id=employee_id, at=now())


@blueprint.patch("/employees/me/availability")
@clinician_only
@api.validate(json=AvailabilityChange, resp=responses({200: Employee}, [403, 413]))
def my_availability(json: AvailabilityChange):
    """Mark yourself available or away (away: no new incidents)"""
    with platform().db.transaction() as cur:
        return roster.set_availability(cur, employee_id=current_clinician().employee_id,
                                       availability=json.availability, at=now())
