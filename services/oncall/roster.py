"""Clinicians on duty, their sign-in state, availability and workload; employee records.

Service functions: keyword-only arguments, a cursor from Database.transaction(), plain values
back. The routes, the scrape-time metric and the tests all call these.
"""
import datetime as dt
from zoneinfo import ZoneInfo

from healthguard.errors import ApiError

from .schedule import on_duty_at

AVAILABILITIES = ("AVAILABLE", "AWAY")


def known_roles(cur) -> list[str]:
    cur.execute("SELECT DISTINCT role FROM employees ORDER BY role")
    return [row["role"] for row in cur.fetchall()]


def check_roles(cur, roles, *, field: str = "role") -> None:
    unknown = sorted(set(roles) - set(known_roles(cur)))
    if unknown:
        raise ApiError(422, "unknown role(s): " + ", ".join(unknown), field=field, unknown_roles=unknown)


def _workload(cur, employee_ids) -> dict[str, dict]:
    """employee_id -> employee columns plus active_incidents and last_assigned_at."""
    cur.execute("""
        SELECT e.employee_id, e.login, e.name, e.role, e.specialty, e.tier, e.is_supervisor,
               e.is_logged_in, e.availability, e.last_login,
               (SELECT count(*) FROM incidents i
                 WHERE i.assigned_to = e.employee_id AND i.status <> 'RESOLVED')::int
                   AS active_incidents,
               (SELECT max(a.assigned_at) FROM incident_assignments a
                 WHERE a.employee_id = e.employee_id) AS last_assigned_at,
               -- Sessions end by expiry without a logout: whoever has sessions but no live one is
               -- signed out, whatever is_logged_in still says.
               e.is_logged_in AND (
                   EXISTS (SELECT 1 FROM sessions s WHERE s.employee_id = e.employee_id
                             AND s.revoked_at IS NULL AND s.expires_at > now())
                   OR NOT EXISTS (SELECT 1 FROM sessions s WHERE s.employee_id = e.employee_id)
               ) AS signed_in
        FROM employees e
        WHERE e.employee_id = ANY(%s)
    """, (list(employee_ids),))
    return {row["employee_id"]: row for row in cur.fetchall()}


def _iso(value):
    return value.isoformat() if value is not None else None


def available_clinicians(cur, *, tz: ZoneInfo, at: dt.datetime, roles=None) -> list[dict]:
    """Clinicians who can take an incident now: on duty, signed in and not away, with a role
    in `roles` (any role when None), least busy first, then idle longest, then by id."""
    if roles:
        check_roles(cur, roles, field="roles")
    on_duty = on_duty_at(cur, tz=tz, at=at)
    rows = _workload(cur, on_duty)
    chosen = [row for row in rows.values()
              if row["signed_in"] and row["availability"] == "AVAILABLE"
              and (not roles or row["role"] in roles)]
    never = dt.datetime.min.replace(tzinfo=dt.UTC)
    chosen.sort(key=lambda r: (r["active_incidents"], r["last_assigned_at"] or never, r["employee_id"]))
    return [{"employee_id": r["employee_id"], "name": r["name"], "role": r["role"], "tier": r["tier"],
             "active_incidents": r["active_incidents"], "last_assigned_at": _iso(r["last_assigned_at"])}
            for r in chosen]


def on_call_now(cur, *, tz: ZoneInfo, at: dt.datetime, role=None) -> list[dict]:
    """Everyone on duty at `at` (of `role` when given), whether signed in or not."""
    if role:
        check_roles(cur, [role])
    on_duty = on_duty_at(cur, tz=tz, at=at)
    rows = _workload(cur, on_duty)
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
            "is_supervisor": row["is_supervisor"], "is_logged_in": row["is_logged_in"],
            "availability": row["availability"], "last_login": _iso(row["last_login"])}


def list_employees(cur, *, role=None) -> list[dict]:
    if role:
        check_roles(cur, [role])
    cur.execute("""
        SELECT e.employee_id, e.login, e.name, e.role, e.specialty, e.tier, e.is_supervisor,
               e.is_logged_in, e.availability, e.last_login
        FROM employees e
        WHERE %(role)s::text IS NULL OR e.role = %(role)s
        ORDER BY e.employee_id""", {"role": role})
    return [employee_json(row) for row in cur.fetchall()]


def get_employee(cur, *, employee_id: str) -> dict:
    # Never password_hash: only the columns a caller may see.
    cur.execute("""
        SELECT e.employee_id, e.login, e.name, e.role, e.specialty, e.tier, e.is_supervisor,
               e.is_logged_in, e.availability, e.last_login
        FROM employees e WHERE e.employee_id = %s""", (employee_id,))
    row = cur.fetchone()
    if row is None:
        raise ApiError(404, f"no employee {employee_id}")
    return employee_json(row)


def set_availability(cur, *, employee_id: str, availability: str) -> dict:
    if availability not in AVAILABILITIES:
        raise ApiError(422, "availability must be one of: " + ", ".join(AVAILABILITIES))
    cur.execute("UPDATE employees SET availability = %s WHERE employee_id = %s",
                (availability, employee_id))
    return get_employee(cur, employee_id=employee_id)
