"""Schedule overrides: a clinician covering another's shifts, or added on duty, for a period."""
import datetime as dt
from zoneinfo import ZoneInfo

from healthguard import clock
from healthguard.errors import ApiError


def _role_of(cur, employee_id: str, field: str) -> str:
    cur.execute("SELECT role FROM employees WHERE employee_id = %s", (employee_id,))
    row = cur.fetchone()
    if row is None:
        raise ApiError(422, f"{field}: no employee {employee_id}", field=field)
    return row["role"]


def create_override(cur, *, employee_id: str, replaces_id: str | None, starts_at: dt.datetime,
                    ends_at: dt.datetime, reason: str | None, created_by: str, tz: ZoneInfo) -> dict:
    if ends_at <= starts_at:
        raise ApiError(422, "ends_at must be after starts_at", field="ends_at")
    role = _role_of(cur, employee_id, "employee_id")
    if replaces_id is not None:
        if replaces_id == employee_id:
            raise ApiError(422, "a clinician cannot cover their own shift", field="replaces_id")
        # A cover must be able to do the work of the shift it takes over.
        if _role_of(cur, replaces_id, "replaces_id") != role:
            raise ApiError(422, f"{employee_id} cannot cover {replaces_id}: they have different roles",
                           field="replaces_id")
    cur.execute("""
        INSERT INTO oncall_overrides (employee_id, replaces_id, starts_at, ends_at, reason, created_by,
                                      created_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s)
        RETURNING override_id, employee_id, replaces_id, starts_at, ends_at, reason, created_by, created_at
    """, (employee_id, replaces_id, starts_at, ends_at, reason, created_by, clock.now()))
    return override_json(cur.fetchone(), tz)


def delete_override(cur, *, override_id: int) -> None:
    cur.execute("DELETE FROM oncall_overrides WHERE override_id = %s", (override_id,))
    if cur.rowcount == 0:
        raise ApiError(404, f"no override {override_id}")


def override_json(row, tz: ZoneInfo) -> dict:
    return {**row, **{name: row[name].astimezone(tz).isoformat()
                      for name in ("starts_at", "ends_at", "created_at")}}
