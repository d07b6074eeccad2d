"""Who is on duty when: rotations and overrides turned into concrete shifts.

Shifts are spans of hospital local time (HOSPITAL_TZ). Each concrete shift is computed by
placing the shift's local start and end on a local date and only then converting to an instant,
so an 08:00 shift starts at 08:00 local on both sides of a clock change (the night that contains
the change is an hour shorter or longer instead). A shift whose end is not after its start ends
the next day; '24:00' ends at the next midnight.

Rotations (table oncall_rotations): in period k after start_date (period_days long), the member at
position p works shift_codes[(k + p) mod n] every day of that period. No shift before start_date.

Overrides (table oncall_overrides), applied in the order they were created:
- with replaces_id: wherever the replaced clinician would be on duty between starts_at and
  ends_at, the covering clinician is on duty instead (the replaced one is not);
- without replaces_id: the clinician is on duty, in addition, for the whole period.

The pure functions here take rows and return Duty values; `load_duties` reads the rows.
"""
import datetime as dt
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

# Shifts last at most a day (ONCALL24), so a shift that started two local days before a window
# cannot reach into it: generation starts that far back.
_LOOKBACK_DAYS = 2


@dataclass(frozen=True)
class Shift:
    shift_code: str
    start_local: dt.time
    end_local: dt.time | None  # None: '24:00', the end of the day


@dataclass(frozen=True)
class Rotation:
    rotation_id: int
    role: str
    start_date: dt.date
    period_days: int
    shift_codes: tuple
    members: tuple  # ((employee_id, position), ...)


@dataclass(frozen=True)
class Override:
    override_id: int
    employee_id: str
    replaces_id: str | None
    starts_at: dt.datetime
    ends_at: dt.datetime


@dataclass(frozen=True)
class Duty:
    """One clinician on duty from starts_at (inclusive) to ends_at (exclusive)."""
    employee_id: str
    role: str
    shift_code: str | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    source: str  # "rotation" or "override"
    rotation_id: int | None = None
    override_id: int | None = None
    replaces_id: str | None = None

    def covers(self, at: dt.datetime) -> bool:
        return self.starts_at <= at < self.ends_at

    def overlaps(self, start: dt.datetime, end: dt.datetime) -> bool:
        return self.starts_at < end and start < self.ends_at


def parse_shift_time(text: str) -> dt.time | None:
    """'08:00', '08:00:00' -> time; '24:00' -> None (end of the day)."""
    hours, minutes, *rest = (int(part) for part in str(text).split(":"))
    if hours == 24 and minutes == 0 and not any(rest):
        return None
    return dt.time(hours, minutes, rest[0] if rest else 0)


def local_instant(day: dt.date, time: dt.time, tz: ZoneInfo) -> dt.datetime:
    """The instant (in UTC) at `time` o'clock on `day` in `tz`. A wall time skipped by a
    spring-forward change falls after the gap; a repeated one is its first occurrence.

    Instants are kept in UTC: Python compares and subtracts two datetimes of the same zone by
    wall clock, which is wrong across a clock change."""
    return dt.datetime.combine(day, time).replace(tzinfo=tz, fold=0).astimezone(dt.UTC)


def shift_span(shift: Shift, day: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    starts = local_instant(day, shift.start_local, tz)
    if shift.end_local is None:
        ends = local_instant(day + dt.timedelta(days=1), dt.time(0), tz)
    elif shift.end_local <= shift.start_local:
        ends = local_instant(day + dt.timedelta(days=1), shift.end_local, tz)
    else:
        ends = local_instant(day, shift.end_local, tz)
    return starts, ends


def rotation_duties(*, rotations, shifts: dict, roles: dict, tz: ZoneInfo,
                    start: dt.datetime, end: dt.datetime) -> list[Duty]:
    """Shifts that the rotations put within [start, end). `roles` maps employee_id -> role."""
    first_day = start.astimezone(tz).date() - dt.timedelta(days=_LOOKBACK_DAYS)
    last_day = end.astimezone(tz).date()
    duties = []
    for rotation in rotations:
        day = max(first_day, rotation.start_date)
        while day <= last_day:
            period = (day - rotation.start_date).days // rotation.period_days
            for employee_id, position in rotation.members:
                code = rotation.shift_codes[(period + position) % len(rotation.shift_codes)]
                starts, ends = shift_span(shifts[code], day, tz)
                if starts < end and start < ends:
                    duties.append(Duty(employee_id=employee_id,
                                       role=roles.get(employee_id, rotation.role),
                                       shift_code=code, starts_at=starts, ends_at=ends,
                                       source="rotation", rotation_id=rotation.rotation_id))
            day += dt.timedelta(days=1)
    return duties


def apply_overrides(duties: list[Duty], overrides, *, roles: dict) -> list[Duty]:
    """The duties after each override, in order (see the module docstring)."""
    for override in overrides:
        o_start, o_end = override.starts_at, override.ends_at
        if override.replaces_id is None:
            duties = duties + [Duty(employee_id=override.employee_id,
                                    role=roles.get(override.employee_id, ""), shift_code=None,
                                    starts_at=o_start, ends_at=o_end, source="override",
                                    override_id=override.override_id)]
            continue
        result = []
        for duty in duties:
            if duty.employee_id != override.replaces_id or not duty.overlaps(o_start, o_end):
                result.append(duty)
                continue
            # The replaced clinician keeps the parts of the shift outside the override...
            if duty.starts_at < o_start:
                result.append(replace(duty, ends_at=o_start))
            if o_end < duty.ends_at:
                result.append(replace(duty, starts_at=o_end))
            # ...and the covering clinician takes the part inside it.
            result.append(replace(
                duty, employee_id=override.employee_id,
                role=roles.get(override.employee_id, duty.role),
                starts_at=max(duty.starts_at, o_start), ends_at=min(duty.ends_at, o_end),
                source="override", override_id=override.override_id,
                replaces_id=override.replaces_id))
        duties = result
    return duties


def compute_duties(*, rotations, shifts: dict, overrides, roles: dict, tz: ZoneInfo,
                   start: dt.datetime, end: dt.datetime) -> list[Duty]:
    """Everyone on duty at some moment of [start, end), ordered by start, role, employee."""
    duties = rotation_duties(rotations=rotations, shifts=shifts, roles=roles, tz=tz,
                             start=start, end=end)
    duties = apply_overrides(duties, overrides, roles=roles)
    duties = [d for d in duties if d.starts_at < d.ends_at and d.overlaps(start, end)]
    return sorted(duties, key=lambda d: (d.starts_at, d.role, d.employee_id, d.ends_at))


# --- Reading the schedule tables ---------------------------------------------------------------

def load_duties(cur, *, tz: ZoneInfo, start: dt.datetime, end: dt.datetime) -> list[Duty]:
    """Everyone on duty at some moment of [start, end), from the database."""
    cur.execute("SELECT shift_code, start_local::text AS start_local, end_local::text AS end_local "
                "FROM shifts")
    shifts = {row["shift_code"]: Shift(row["shift_code"], parse_shift_time(row["start_local"]),
                                       parse_shift_time(row["end_local"]))
              for row in cur.fetchall()}
    cur.execute("SELECT employee_id, role FROM employees")
    roles = {row["employee_id"]: row["role"] for row in cur.fetchall()}
    cur.execute("""
        SELECT r.rotation_id, r.role, r.start_date, r.period_days, r.shift_codes,
               coalesce(array_agg(m.employee_id ORDER BY m.position, m.employee_id)
                        FILTER (WHERE m.employee_id IS NOT NULL), '{}') AS member_ids,
               coalesce(array_agg(m.position ORDER BY m.position, m.employee_id)
                        FILTER (WHERE m.employee_id IS NOT NULL), '{}') AS positions
        FROM oncall_rotations r LEFT JOIN oncall_rotation_members m USING (rotation_id)
        GROUP BY r.rotation_id
        ORDER BY r.rotation_id
    """)
    rotations = [Rotation(rotation_id=row["rotation_id"], role=row["role"],
                          start_date=row["start_date"], period_days=row["period_days"],
                          shift_codes=tuple(row["shift_codes"]),
                          members=tuple(zip(row["member_ids"], row["positions"], strict=True)))
                 for row in cur.fetchall()]
    # An override replacing part of a shift that overlaps the window may itself start before it:
    # read every override that overlaps the generated span, not just the window.
    cur.execute("""
        SELECT override_id, employee_id, replaces_id, starts_at, ends_at
        FROM oncall_overrides
        WHERE starts_at < %s AND ends_at > %s
        ORDER BY created_at, override_id
    """, (end, start - dt.timedelta(days=_LOOKBACK_DAYS + 1)))
    overrides = [Override(**row) for row in cur.fetchall()]
    return compute_duties(rotations=rotations, shifts=shifts, overrides=overrides, roles=roles,
                          tz=tz, start=start, end=end)


def on_duty_at(cur, *, tz: ZoneInfo, at: dt.datetime) -> dict[str, Duty]:
    """employee_id -> the duty that has them on duty at the instant `at`."""
    on_duty = {}
    for duty in load_duties(cur, tz=tz, start=at, end=at + dt.timedelta(microseconds=1)):
        if duty.covers(at):
            on_duty.setdefault(duty.employee_id, duty)
    return on_duty
