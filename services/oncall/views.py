"""On duty now, schedules, overrides and employees: parse the request, call a service function
inside one transaction, answer JSON."""
import datetime as dt
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, request

from healthguard import clock
from healthguard.auth import clinician_only, current_clinician, supervisor_only
from healthguard.errors import ApiError
from healthguard.web import json_body, platform

from . import overrides, roster
from .schedule import load_duties

blueprint = Blueprint("oncall", __name__, url_prefix="/api/v1")

MAX_PERIOD = dt.timedelta(days=31)


def hospital_tz() -> ZoneInfo:
    return current_app.extensions["oncall.tz"]


def now() -> dt.datetime:
    return clock.now()


def role_list(text: str | None) -> list[str] | None:
    roles = [part.strip() for part in (text or "").split(",") if part.strip()]
    return roles or None


def parse_instant(text: str, name: str, *, end_of_day: bool = False) -> dt.datetime:
    """An ISO date or date-time. A date is local midnight in the hospital's time zone (for an end,
    the midnight after it, so the day is included); a date-time without offset is local time."""
    text = (text or "").strip()
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            if end_of_day:
                day += dt.timedelta(days=1)
            value = dt.datetime.combine(day, dt.time(0))
        else:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise ApiError(422, f"{name} must be an ISO 8601 date or date-time, got {text!r}") from None
    # In UTC: Python subtracts two times of one zone by wall clock, wrong across a clock change.
    return (value if value.tzinfo else value.replace(tzinfo=hospital_tz())).astimezone(dt.UTC)


def duty_json(duty, names: dict, tz: ZoneInfo) -> dict:
    return {"employee_id": duty.employee_id, "name": names.get(duty.employee_id), "role": duty.role,
            "shift_code": duty.shift_code, "starts_at": duty.starts_at.astimezone(tz).isoformat(),
            "ends_at": duty.ends_at.astimezone(tz).isoformat(), "source": duty.source,
            "rotation_id": duty.rotation_id, "override_id": duty.override_id,
            "replaces_id": duty.replaces_id}


@blueprint.get("/oncall/available")
def available():
    """The contract with the incident service: who can take an incident now, least busy first."""
    roles = role_list(request.args.get("roles"))
    with platform().db.transaction() as cur:
        clinicians = roster.available_clinicians(cur, tz=hospital_tz(), at=now(), roles=roles)
    return {"clinicians": clinicians}


@blueprint.get("/oncall/current")
def current():
    role = request.args.get("role", "").strip() or None
    at = now()
    with platform().db.transaction() as cur:
        clinicians = roster.on_call_now(cur, tz=hospital_tz(), at=at, role=role)
    return {"at": at.astimezone(hospital_tz()).isoformat(), "timezone": hospital_tz().key,
            "clinicians": clinicians}


@blueprint.get("/schedules")
def schedules():
    tz = hospital_tz()
    args = request.args
    start = parse_instant(args["from"] if args.get("from") else now().astimezone(tz).date().isoformat(),
                          "from")
    if args.get("to"):
        end = parse_instant(args["to"], "to", end_of_day=True)
    else:  # `days` hospital-local days from `from` (default 1: that day)
        days = args.get("days", "1")
        if not days.isdigit() or not 1 <= int(days) <= MAX_PERIOD.days:
            raise ApiError(422, f"days must be a whole number from 1 to {MAX_PERIOD.days}", field="days")
        last_day = start.astimezone(tz).date() + dt.timedelta(days=int(days) - 1)
        end = parse_instant(last_day.isoformat(), "to", end_of_day=True)
    if end <= start:
        raise ApiError(422, "'to' must be after 'from'")
    if end - start > MAX_PERIOD:
        raise ApiError(422, "the period may be at most 31 days; ask for several shorter periods")
    role = args.get("role", "").strip() or None
    with platform().db.transaction() as cur:
        if role:
            roster.check_roles(cur, [role])
        duties = load_duties(cur, tz=tz, start=start, end=end)
        cur.execute("SELECT employee_id, name FROM employees")
        names = {row["employee_id"]: row["name"] for row in cur.fetchall()}
    shifts = [duty_json(d, names, tz) for d in duties if not role or d.role == role]
    return {"from": start.astimezone(tz).isoformat(), "to": end.astimezone(tz).isoformat(),
            "timezone": tz.key, "shifts": shifts}


@blueprint.post("/schedules/overrides")
@supervisor_only
def create_override():
    body = json_body()
    for name in ("employee_id", "starts_at", "ends_at"):
        if not isinstance(body.get(name), str) or not body[name].strip():
            raise ApiError(422, f"{name} is required (a string)")
    replaces_id = body.get("replaces_id")
    if replaces_id is not None and not isinstance(replaces_id, str):
        raise ApiError(422, "replaces_id must be an employee id (a string) or null")
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
        raise ApiError(422, "reason must be a string of at most 500 characters")
    with platform().db.transaction() as cur:
        created = overrides.create_override(
            cur, employee_id=body["employee_id"].strip(), replaces_id=replaces_id or None,
            starts_at=parse_instant(body["starts_at"], "starts_at"),
            ends_at=parse_instant(body["ends_at"], "ends_at"),
            reason=reason, created_by=current_clinician().employee_id, tz=hospital_tz())
    return created, 201, {"Location": f"/api/v1/schedules/overrides/{created['override_id']}"}


@blueprint.delete("/schedules/overrides/<int:override_id>")
@supervisor_only
def delete_override(override_id):
    with platform().db.transaction() as cur:
        overrides.delete_override(cur, override_id=override_id)
    return "", 204


@blueprint.get("/employees")
def employees():
    role = request.args.get("role", "").strip() or None
    with platform().db.transaction() as cur:
        return {"employees": roster.list_employees(cur, role=role)}


@blueprint.get("/employees/<employee_id>")
def employee(employee_id):
    with platform().db.transaction() as cur:
        return roster.get_employee(cur, employee_id=employee_id)


@blueprint.patch("/employees/me/availability")
@clinician_only
def my_availability():
    availability = json_body().get("availability")
    if not isinstance(availability, str):
        raise ApiError(422, "availability is required: AVAILABLE or AWAY")
    with platform().db.transaction() as cur:
        return roster.set_availability(cur, employee_id=current_clinician().employee_id,
                                       availability=availability.strip().upper())
