"""Notification rules: each person's steps ("push at once, email after 2 minutes if not
acknowledged"), per urgency. A person's own rules for an urgency win; without them, their role's
defaults (set by supervisors); without those, the hospital default below."""
from dataclasses import dataclass

from healthguard.errors import ApiError

from .contact_methods import STEP_KINDS

URGENCIES = ("HIGH", "LOW")
# HIGH = CRITICAL/HIGH incidents, LOW = MEDIUM/LOW: the one place this mapping is written.
URGENCY_OF_SEVERITY = {"CRITICAL": "HIGH", "HIGH": "HIGH", "MEDIUM": "LOW", "LOW": "LOW"}
MAX_STEPS = 10


def urgency_of(severity: str) -> str:
    return URGENCY_OF_SEVERITY[severity]


@dataclass(frozen=True)
class Step:
    position: int
    delay_seconds: int
    kind: str | None = None               # every verified method of this kind ...
    contact_method_id: int | None = None  # ... or this one method


# Without personal rules or a role default: every push subscription at once, email after 2 min.
HOSPITAL_DEFAULT = (Step(0, 0, kind="push"), Step(1, 120, kind="email"))


def steps_of_many(cur, *, employee_ids) -> dict[tuple[str, str], tuple[tuple[Step, ...], str]]:
    """(employee_id, urgency) -> the steps in force, in order, and where they come from
    ('personal' | 'role' | 'hospital'), for every urgency of each person: one query for any
    number of people (a batch of pagings, or one person's own page)."""
    employee_ids = list(dict.fromkeys(employee_ids))
    cur.execute("""
        SELECT e.employee_id, r.urgency,
               CASE WHEN r.employee_id IS NULL THEN 'role' ELSE 'personal' END AS source,
               r.position, r.delay_seconds, r.kind, r.contact_method_id
        FROM employees e
        JOIN notification_rules r ON r.employee_id = e.employee_id OR r.role = e.role
        WHERE e.employee_id = ANY(%s)
        ORDER BY r.position""", (employee_ids,))
    found: dict[tuple[str, str, str], list[Step]] = {}
    for r in cur.fetchall():
        found.setdefault((r["employee_id"], r["urgency"], r["source"]), []).append(
            Step(r["position"], r["delay_seconds"], r["kind"], r["contact_method_id"]))
    result = {}
    for employee_id in employee_ids:
        for urgency in URGENCIES:
            source = next((source for source in ("personal", "role")
                           if (employee_id, urgency, source) in found), "hospital")
            steps = found.get((employee_id, urgency, source), HOSPITAL_DEFAULT)
            result[(employee_id, urgency)] = (tuple(steps), source)
    return result


def as_json(steps, source: str | None = None) -> list[dict]:
    return [{"position": s.position, "delay_seconds": s.delay_seconds, "kind": s.kind,
             "contact_method_id": s.contact_method_id, **({"source": source} if source else {})}
            for s in steps]


def my_rules(cur, *, employee_id: str) -> dict:
    """For each urgency: the steps in force and where they come from."""
    in_force = steps_of_many(cur, employee_ids=[employee_id])
    return {urgency: {"source": in_force[(employee_id, urgency)][1],
                      "steps": as_json(in_force[(employee_id, urgency)][0])}
            for urgency in URGENCIES}


def _checked(steps: list[dict], *, personal: bool) -> list[Step]:
    if len(steps) > MAX_STEPS:
        raise ApiError(422, f"at most {MAX_STEPS} steps per urgency", field="steps")
    checked = []
    for position, step in enumerate(sorted(steps, key=lambda s: s["delay_seconds"])):
        if (step.get("kind") is None) == (step.get("contact_method_id") is None):
            raise ApiError(422, "each step names a kind or (your own rules only) a contact_method_id",
                           field="steps")
        if step.get("contact_method_id") is not None and not personal:
            raise ApiError(422, "a role's default names a kind, not a person's method", field="steps")
        if step.get("kind") is not None and step["kind"] not in STEP_KINDS:
            raise ApiError(422, f"kind must be one of {', '.join(STEP_KINDS)}", field="steps")
        checked.append(Step(position, step["delay_seconds"], step.get("kind"), step.get("contact_method_id")))
    return checked


def replace(cur, *, urgency_steps: dict[str, list[dict]], employee_id: str | None = None,
            role: str | None = None) -> None:
    """Replace the person's own rules (employee_id) or a role's defaults (role) for each urgency
    given; an empty list removes them (the role's, then the hospital's default applies)."""
    for urgency, steps in urgency_steps.items():
        checked = _checked(steps, personal=employee_id is not None)
        if employee_id is not None:
            ids = [s.contact_method_id for s in checked if s.contact_method_id is not None]
            cur.execute("SELECT count(*) AS n FROM contact_methods WHERE employee_id = %s "
                        "AND contact_method_id = ANY(%s)", (employee_id, ids))
            if cur.fetchone()["n"] != len(set(ids)):
                raise ApiError(422, "a step names a contact method that is not yours", field="steps")
        cur.execute("""DELETE FROM notification_rules
                       WHERE urgency = %s AND employee_id IS NOT DISTINCT FROM %s
                         AND role IS NOT DISTINCT FROM %s""", (urgency, employee_id, role))
        for step in checked:
            cur.execute("""INSERT INTO notification_rules
                               (employee_id, role, urgency, delay_seconds, contact_method_id, kind, position)
                           VALUES (%s, %s, %s, %s, %s, %s, %s)""",
                        (employee_id, role, urgency, step.delay_seconds, step.contact_method_id,
                         step.kind, step.position))


def role_defaults(cur, *, role: str) -> dict:
    cur.execute("""SELECT urgency, position, delay_seconds, kind, contact_method_id
                   FROM notification_rules WHERE role = %s ORDER BY urgency, position""", (role,))
    rows = cur.fetchall()
    return {u: {"steps": as_json(Step(r["position"], r["delay_seconds"], r["kind"], r["contact_method_id"])
                                 for r in rows if r["urgency"] == u)} for u in URGENCIES}
