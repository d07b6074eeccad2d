"""Clinicians on duty, their sign-in state, availability and workload; employee records.

Service functions: keyword-only arguments, a cursor from Database.transaction(), plain values
back. The routes, the scrape-time metric and the tests all call these.
"""
import datetime as dt
from zoneinfo import ZoneInfo

from healthguard.domain import AVAILABILITIES
from healthguard.errors import ApiError
from healthguard.workload import least_busy_key

from .schedule import on_duty_at


def known_roles(cur) -> list[str]:
    cur.execute("SELECT DISTINCT role FROM employees ORDER BY role")
    return [row["role"] for row in cur.fetchall()]


def check_roles(cur, roles, *, field: str = "role") -> None:
    unknown = sorted(set(roles) - set(known_roles(cur)))
    if unknown:
        raise ApiError(422, "unknown role(s): " + ", ".join(unknown), field=field, unknown_roles=unknown)


# An employee as callers see it (never password_hash); signed_in at the instant %(at)s.
EMPLOYEE_COLUMNS = """
    e.employee_id, e.login, e.name, e.role, e.specialty, e.tier, e.is_supervisor, e.is_account_admin,
    e.is_privacy_officer, e.availability,
    e.last_login, e.employee_id IN (SELECT s.employee_id FROM signed_in_clinicians(%(at)s) s) AS signed_in
"""


def _with_workload(cur, employee_ids, *, at: dt.datetime) -> dict[str, dict]:
    """employee_id -> employee columns plus active_incidents and last_assigned_at."""
    cur.execute(f"""
        SELECT {EMPLOYEE_COLUMNS}, w.active_incidents, w.last_assigned_at
        FROM employees e JOIN clinician_workload w ON w.employee_id = e.employee_id
        WHERE e.employee_id = ANY(%(ids)s)
    """, {"ids": list(employee_ids), "at": at})  # noqa: S608 (a constant column list)
    return {row["employee_id"]: row for row in cur.fetchall()}


def _iso(value):
    return value.isoformat() if value is not None else None


def available_clinicians(cur, *, tz: ZoneInfo, at: dt.datetime, roles=None) -> list[dict]:
    """Clinicians who can take an incident now: on duty, signed in and not away, with a role
    in `roles` (any role when None), least busy first, then idle longest, then by id."""
    if roles:
        check_roles(cur, roles, field="roles")
    on_duty = sorted(on_duty_at(cur, tz=tz, at=at))
    cur.execute("""
        SELECT e.employee_id, e.name, e.role, e.tier, w.active_incidents, w.last_assigned_at
        FROM clinician_workload w JOIN employees e ON e.employee_id = w.employee_id
        WHERE e.employee_id = ANY(%(on_duty)s)
          AND e.employee_id IN (SELECT r.employee_id FROM reachable_clinicians(%(at)s) r)
          AND (%(roles)s::text[] IS NULL OR e.role = ANY(%(roles)s))
        ORDER BY e.employee_id
    """, {"on_duty": on_duty, "at": at, "roles": list(roles) if roles else None})
    rows = sorted(cur.fetchall(),
                  key=lambda row: least_busy_key(row["active_incidents"], row["last_assigned_at"]))
    return [{**row, "last_assigned_at": _iso(row["last_assigned_at"])} for row in rows]


def on_call_now(cur, *, tz: ZoneInfo, at: dt.datetime, role=None) -> list[dict]:
    """Everyone on duty at `at` (of `role` when given), whether signed in or not."""
    if role:
        check_roles(cur, [role])
    on_duty = on_duty_at(cur, tz=tz, at=at)
    rows = _with_workload(cur, on_duty, at=at)
    result = []
    for employee_id, duty in on_duty.items():
        row = rows[employee_id]
        if role and row["role"] != role:
            continue
        result.append({
            "employee_id": employee_id, "name": row["name"], "role": row["role"], "tier": row["tier"],
            "specialty": row["specialty"], "is_supervisor": row["is_supervisor"],
            "signed_in": row["signed_in"], "availability": row["availability"],
            "active_incidents": row["active_incidents"],
            "last_assigned_at": _iso(row["last_assigned_at"]),
            "shift": {"shift_code": duty.shift_code, "starts_at": duty.starts_at.astimezone(tz).isoformat(),
                      "ends_at": duty.ends_at.astimezone(tz).isoformat(), "source": duty.source,
                      "override_id": duty.override_id, "replaces_id": duty.replaces_id},
        })
    result.sort(key=lambda r: (r["role"], r["employee_id"]))
    return result


def signed_in_on_duty_by_role(cur, *, tz: ZoneInfo, at: dt.datetime) -> dict[str, int]:
    """role -> clinicians on duty and signed in (0 for every role nobody covers)."""
    counts = dict.fromkeys(known_roles(cur), 0)
    for row in on_call_now(cur, tz=tz, at=at):
        if row["signed_in"]:
            counts[row["role"]] += 1
    return counts


def employee_json(row) -> dict:
    return {"employee_id": row["employee_id"], "login": row["login"], "name": row["name"],
            "role": row["role"], "specialty": row["specialty"], "tier": row["tier"],
            "is_supervisor": row["is_supervisor"], "is_account_admin": row["is_account_admin"],
            "is_privacy_officer": row["is_privacy_officer"],
            "signed_in": row["signed_in"], "availability": row["availability"],
            "last_login": _iso(row["last_login"])}


def list_employees(cur, *, at: dt.datetime, role=None) -> list[dict]:
    if role:
        check_roles(cur, [role])
    cur.execute(f"""
        SELECT {EMPLOYEE_COLUMNS} FROM employees e
        -- A privacy officer is no clinician: in no list of them (migration 0020).
        WHERE (%(role)s::text IS NULL OR e.role = %(role)s) AND NOT e.is_privacy_officer
        ORDER BY e.employee_id""", {"role": role, "at": at})  # noqa: S608 (a constant column list)
    return [employee_json(row) for row in cur.fetchall()]


def get_employee(cur, *, employee_id: str, at: dt.datetime) -> dict:
    cur.execute(f"SELECT {EMPLOYEE_COLUMNS} FROM employees e WHERE e.employee_id = %(id)s",  # noqa: S608
                {"id": employee_id, "at": at})
    row = cur.fetchone()
    if row is None:
        raise ApiError(404, f"no employee {employee_id}")
    return employee_json(row)


def set_availability(cur, *, employee_id: str, availability: str, at: dt.datetime) -> dict:
    if availability not in AVAILABILITIES:
        raise ApiError(422, "availability must be one of: " + ", ".join(AVAILABILITIES))
    cur.execute("UPDATE employees SET availability = %s WHERE employee_id = %s",
                (availability, employee_id))
    return get_employee(cur, employee_id=employee_id, at=at)
