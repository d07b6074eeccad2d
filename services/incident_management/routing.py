"""Who may own an alarm, and who should get it now: one rule set for automatic assignment, the
retrier, escalation's next candidate, decline, claim and reassign.

An alarm's candidates are an ordered list of candidate groups (candidate_groups), each with why
it comes where it does (kept on the assignment: "why this person"). Where the patient's ward has
a care team this shift (care_teams.py):
  1. CARE_TEAM: the patient's nurse, or doctor for alarm types a nurse may not own, if signed in
     and on duty (available);
  2. CHARGE_NURSE: the ward's charge nurse, for types a nurse may own;
  3. WARD_POOL: the ward's staff this shift of the alarm's roles (the care role first);
  4. ROLE_POOL: the hospital's pool of each role;
  5. then escalation as today (escalate_unacknowledged.py).
A ward without a care team starts at 4, in the alert type's roles (`routes_to`, in order), then
its severity's escalation roles (`escalate_to_roles`): the routing of before care teams. The
last-resort role (every emergency doctor on duty is paged once the escalation levels are spent)
may take it too. Within a group the least busy goes first (healthguard.workload, the one
definition; SQL's least_busy_first went in 0014). Each step is skipped when nobody is there.
The role rules hold at every step: a nurse never owns an alarm her role may not take (a cardiac
arrest); she is told of it instead (told_of), and a doctor owns it.

- Automatic assignment takes the first group with someone available. When no group has anyone,
  it falls back to anyone available whom a supervisor's override could choose (better someone
  than no one for a new alarm); escalation and decline never fall back: the alarm has an owner.
- Decline takes the first group with someone available who never held the alarm
  (first_candidates with `exclude`): the patient's nurse who declines hands it to the charge
  nurse, then the ward's pool, not to the least busy stranger.
- Escalation keeps the order of its roles as before care teams (`escalating`: the alert type's
  roles, then the policy's; the issue's "escalation as today"), but within a role the ward's
  staff who never held it come before strangers (WARD_POOL, then ROLE_POOL): one who knows the
  ward loses fewer minutes than one who has never seen the patient, and escalation is where
  minutes have already been lost. The care team is read once per pass, like the batch's.
- An owner chosen by a person (claim, reassign) must be on duty, signed in and of a routed role.
  A supervisor may go outside the routed roles with a stated reason, which is audited, but a
  CRITICAL alarm never goes to a non-clinical role (staff_roles, 0014_ownership_rules.sql).

Who is on duty and available comes from the on-call service (OnCallClient), asked before any
database transaction: a slow answer must not hold row locks.
"""
import datetime
import logging
from dataclasses import dataclass

from healthguard.errors import ApiError
from healthguard.incident_events import role_in_words
from healthguard.oncall_client import ONCALL_ERRORS, OnCallClient
from healthguard.workload import least_busy_key

from .metrics import ONCALL_LOOKUP_FAILURES

log = logging.getLogger(__name__)

# Paged, every one on duty, once every escalation level has passed without an acknowledgement.
LAST_RESORT_ROLE = "EMERGENCY_DOCTOR"

# All automatic assignments queue on this lock for the few milliseconds they take, so two
# incidents arriving together see each other's assignment when they rank clinicians by workload.
ASSIGNMENT_LOCK_ID = 0x4847_0003


# --- The routing order -------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    """An alarm's routing order and what the override rule needs to know."""
    alert_name: str
    severity: str
    groups: tuple[str, ...]          # roles, in the order they are offered the alarm
    clinical_roles: frozenset[str]
    first_roles: tuple[str, ...] = ()  # the alert type's own roles (routes_to)

    @property
    def care_role(self) -> str:
        """Who in the patient's care team hears it first: the nurse when a nurse may own it by
        its type, else the doctor."""
        return "NURSE" if "NURSE" in self.first_roles else "DOCTOR"

    @property
    def allowed_roles(self) -> list[str]:
        """The roles that may own it without an override: the groups, then the last resort."""
        return list(dict.fromkeys((*self.groups, LAST_RESORT_ROLE)))

    def routes_to(self, role: str) -> bool:
        return role in self.allowed_roles

    def may_ever_go_to(self, role: str) -> bool:
        """Whether any override may give it to `role`: never a CRITICAL alarm to a non-clinical role."""
        return self.severity != "CRITICAL" or role in self.clinical_roles


def route(*, alert_name: str, severity: str, routes_to, escalate_to_roles, clinical_roles) -> Route:
    return Route(alert_name=alert_name, severity=severity,
                 groups=tuple(dict.fromkeys((*routes_to, *(escalate_to_roles or ())))),
                 clinical_roles=frozenset(clinical_roles or ()), first_roles=tuple(routes_to))


# The columns route_of() and the batch readers need, for an incident or alert `i` (its severity
# and alert type): join escalation_policies p and alert_types t on them.
ROUTE_COLUMNS = """
    t.name AS alert_name, t.routes_to, coalesce(p.escalate_to_roles, '{}') AS escalate_to_roles"""


def clinical_roles(cur) -> frozenset[str]:
    cur.execute("SELECT role FROM staff_roles WHERE is_clinical")
    return frozenset(row["role"] for row in cur.fetchall())


def route_of(cur, incident: dict) -> Route:
    """The routing order of an incident (as its severity is now)."""
    return routes_of(cur, [incident])[(incident["alert_type"], incident["severity"])]


def routes_of(cur, incidents) -> dict[tuple[str, str], Route]:
    """(alert_type, severity) -> routing order, for every pair of `incidents` (or alerts): one
    query, whatever their number (a list of 50 incidents offers each its allowed actions)."""
    keys = sorted({(i["alert_type"], i["severity"]) for i in incidents})
    if not keys:
        return {}
    cur.execute(f"""
        SELECT k.alert_type, k.severity, {ROUTE_COLUMNS},
               ARRAY(SELECT role FROM staff_roles WHERE is_clinical) AS clinical_roles
        FROM unnest(%s::text[], %s::text[]) AS k(alert_type, severity)
        JOIN alert_types t ON t.alert_type = k.alert_type
        LEFT JOIN escalation_policies p ON p.severity = k.severity
    """, ([k[0] for k in keys], [k[1] for k in keys]))  # noqa: S608 (constant columns)
    return {(row["alert_type"], row["severity"]): route(
                alert_name=row["alert_name"], severity=row["severity"], routes_to=row["routes_to"],
                escalate_to_roles=row["escalate_to_roles"], clinical_roles=row["clinical_roles"])
            for row in cur.fetchall()}


# --- Who should get it now ---------------------------------------------------------------------

def everyone_available(oncall: OnCallClient) -> list[dict] | None:
    """Everyone available now, least busy first; None when the on-call service cannot answer
    (the caller leaves the alarm where it is and tries again)."""
    return _asked("on-call service did not answer who is available",
                  lambda: [c for c in oncall.available() if c["employee_id"] and c["role"]])


def _asked(failure: str, lookup):
    """lookup()'s answer from the on-call service, or None when it cannot answer (counted, and
    logged as `failure`): the caller decides what an unanswered question means."""
    try:
        return lookup()
    except ONCALL_ERRORS as exc:
        ONCALL_LOOKUP_FAILURES.inc()
        log.warning(failure, extra={"error": repr(exc)[:300]})
        return None


@dataclass(frozen=True)
class CareTeam:
    """A patient's care team now (care_teams.care_teams_of), for a ward that has one."""
    patient_id: str
    ward: str
    nurse: str | None
    doctor: str | None
    charge_nurse: str | None
    ward_staff: frozenset[str]   # everyone caring for a patient of the ward now, charge nurse included


# How an owner was chosen (incident_assignments.routed_as), in the routing order.
ROUTED_AS = ("CARE_TEAM", "CHARGE_NURSE", "WARD_POOL", "ROLE_POOL", "FALLBACK")


@dataclass(frozen=True)
class CandidateGroup:
    routed_as: str            # ROUTED_AS
    why: str                  # for a person: why this group comes here
    candidates: tuple[dict, ...]


def candidate_groups(everyone: list[dict], route: Route, *, care: CareTeam | None = None, exclude=(),
                     fallback: bool = False, escalating: bool = False) -> list[CandidateGroup]:
    """The routing order of an alarm (see the module's docstring) among `everyone` available
    (everyone_available()) but `exclude`: its non-empty candidate groups, in order. `care`: the
    patient's care team (None: the ward has none, it routes by role alone). `escalating`:
    escalation's order, the route's roles as before care teams, each role's ward staff before
    the hospital's."""
    present = [c for c in everyone if c["employee_id"] not in exclude]
    by_id = {c["employee_id"]: c for c in present}
    groups: list[CandidateGroup] = []

    def offer(routed_as: str, why: str, candidates) -> None:
        candidates = tuple(c for c in candidates if route.routes_to(c["role"]))
        if candidates:
            groups.append(CandidateGroup(routed_as, why, candidates))

    def ward_pool(role: str) -> None:
        if care is not None:
            offer("WARD_POOL", f"the least busy {role_in_words(role)} working on {care.ward} this shift",
                  [c for c in present if c["role"] == role and c["employee_id"] in care.ward_staff])

    def role_pool(role: str) -> None:
        offer("ROLE_POOL", f"the least busy {role_in_words(role)} available",
              [c for c in present if c["role"] == role])

    roles = route.groups
    if escalating:
        for role in roles:
            ward_pool(role)
            role_pool(role)
        return groups
    if care is not None:
        nurse_first = route.care_role == "NURSE"
        own = by_id.get(care.nurse if nurse_first else care.doctor)
        offer("CARE_TEAM", f"the patient's {'nurse' if nurse_first else 'doctor'} this shift",
              [own] if own else [])
        if nurse_first:
            charge = by_id.get(care.charge_nurse)
            nurse = "has had it" if care.nurse is not None and care.nurse in exclude else "is not available"
            offer("CHARGE_NURSE", f"the charge nurse of {care.ward} (the patient's nurse {nurse})",
                  [charge] if charge else [])
            roles = tuple(dict.fromkeys(("NURSE", *roles)))
        for role in roles:
            ward_pool(role)
    for role in roles:
        role_pool(role)
    if fallback:
        everyone_else = [c for c in present if route.may_ever_go_to(c["role"])]
        if everyone_else:
            groups.append(CandidateGroup("FALLBACK", "nobody of the alarm's roles was available: the least "
                                         "busy of anyone who may take it", tuple(everyone_else)))
    return groups


def first_candidates(everyone: list[dict], route: Route, *, care: CareTeam | None = None, exclude=(),
                     fallback: bool = True, escalating: bool = False) -> CandidateGroup | None:
    """The first group of an alarm's routing order with anyone available not in `exclude`, or
    None: automatic assignment (with `fallback`), decline and escalation (`exclude`: who held
    it; no fallback, the alarm has an owner)."""
    groups = candidate_groups(everyone, route, care=care, exclude=exclude, fallback=fallback,
                              escalating=escalating)
    return groups[0] if groups else None


def told_of(route: Route, care: CareTeam | None, *, owner: str | None) -> list[str]:
    """Who hears of the alarm without owning it: the patient's nurse, when a nurse may not own
    its type (a cardiac arrest goes to a doctor; she is told)."""
    if care is None or care.nurse is None or care.nurse == owner or route.routes_to("NURSE"):
        return []
    return [care.nurse]


class Workload:
    """The workload of candidates, read once under the assignment lock (all automatic
    assignments queue on it for the few milliseconds they take, so alarms arriving together see
    each other's assignment) and kept up to date as a batch assigns: a batch ranks each of its
    alarms as if it came alone (the 2nd of two alarms for one role goes to the 2nd clinician)
    without one ranking query per alarm. Ranked by healthguard.workload.least_busy_key, ties
    in the candidates' order (the on-call service's)."""

    def __init__(self, cur, employee_ids):
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (ASSIGNMENT_LOCK_ID,))
        cur.execute("SELECT employee_id, active_incidents, last_assigned_at FROM clinician_workload "
                    "WHERE employee_id = ANY(%s)", (sorted(set(employee_ids)),))
        self.load = {row["employee_id"]: (row["active_incidents"], row["last_assigned_at"])
                     for row in cur.fetchall()}

    def least_busy(self, candidates: list[dict]) -> dict | None:
        known = [c for c in candidates if c["employee_id"] in self.load]
        if not known:
            return None
        return min(known, key=lambda c: least_busy_key(*self.load[c["employee_id"]]))  # min() is stable

    def assigned(self, employee_id: str, at: datetime.datetime) -> None:
        active, _ = self.load[employee_id]
        self.load[employee_id] = (active + 1, at)


def least_busy(cur, candidates: list[dict]) -> dict | None:
    """The candidate to give one alarm to, ranked on current workload under the assignment lock."""
    return Workload(cur, [c["employee_id"] for c in candidates]).least_busy(candidates)


def supervisors_on_duty(oncall: OnCallClient) -> list[str] | None:
    """Supervisors on duty now and signed in: the only ones told of escalations and of alarms
    nobody could take (an off-shift supervisor must not collect a pile of unread pages). None
    when the on-call service cannot answer."""
    return _asked("on-call service did not answer who supervises now", lambda: sorted(
        c["employee_id"] for c in oncall.on_duty() if c["is_supervisor"] and c["signed_in"]))


def supervisors_to_tell(cur, *, on_duty: list[str] | None, at: datetime.datetime) -> list[str]:
    """The supervisors to tell: `on_duty` (supervisors_on_duty(), asked before the transaction).
    When the on-call service could not say who is on duty (None), every signed-in supervisor is
    told instead: for a safety notice, too many readers beat none."""
    if on_duty is not None:
        return on_duty
    cur.execute("""
        SELECT e.employee_id FROM employees e
        WHERE e.is_supervisor
          AND e.employee_id IN (SELECT s.employee_id FROM signed_in_clinicians(%s) s)
        ORDER BY e.employee_id
    """, (at,))
    return [row["employee_id"] for row in cur.fetchall()]


def last_resort(oncall: OnCallClient) -> list[dict] | None:
    """Every clinician of the last-resort role on duty now, signed in or not (their pager rings
    either way); None when the on-call service cannot answer."""
    return _asked("on-call service did not answer who the last resort is",
                  lambda: oncall.on_duty(LAST_RESORT_ROLE))


# --- Who may own it: claim and reassign --------------------------------------------------------

@dataclass(frozen=True)
class Refusal:
    rule: str        # a code the UI may branch on
    message: str     # for a person
    field: str       # the request field at fault (reassign); claim refuses the caller


def on_duty_now(oncall: OnCallClient) -> dict[str, dict]:
    """employee_id -> their on-call record (role, signed_in, ...) for everyone on duty now.
    Raises ApiError 503 when the on-call service cannot answer: nobody may be given an alarm
    unchecked."""
    on_duty = _asked("on-call service did not answer who is on duty",
                     lambda: {c["employee_id"]: c for c in oncall.on_duty()})
    if on_duty is None:
        raise ApiError(503, "cannot check who is on duty now (the on-call service does not answer); "
                       "try again", retry_after_seconds=5)
    return on_duty


def owner_refusal(route: Route, *, person: dict, on_duty: dict[str, dict], by_supervisor: bool,
                  override_reason: str | None) -> Refusal | None:
    """Why `person` (an employees row: employee_id, name, role) may not own the alarm, or None.
    `by_supervisor`: the one choosing is a supervisor (only they may override the routed roles)."""
    role, who = person["role"], person.get("name") or person["employee_id"]
    words = f"{who} ({role_in_words(role)})"
    if not route.may_ever_go_to(role):
        return Refusal("non_clinical_critical",
                       f"a CRITICAL {route.alert_name} alarm never goes to a {role_in_words(role)}, "
                       f"override or not", "employee_id")
    duty = on_duty.get(person["employee_id"])
    if duty is None:
        return Refusal("not_on_duty", f"{words} is not on duty now", "employee_id")
    if not duty.get("signed_in"):
        return Refusal("not_signed_in", f"{words} is not signed in", "employee_id")
    if route.routes_to(role):
        return None
    roles = ", ".join(role_in_words(r) for r in route.allowed_roles)
    if not by_supervisor:
        return Refusal("override_not_allowed",
                       f"a {role_in_words(role)} may not take this {route.alert_name} alarm; "
                       f"it is for: {roles}",
                       "employee_id")
    if not override_reason:
        return Refusal("role_not_routed",
                       f"a {role_in_words(role)} is not among the roles this {route.alert_name} alarm goes "
                       f"to ({roles}); to give it to {who} anyway, say why in override_reason",
                       "override_reason")
    return None


def owners_to_choose(route: Route, *, on_duty: dict[str, dict], exclude=()) -> list[dict]:
    """Everyone on duty now, as a supervisor choosing a new owner sees them (the reassign list):
    who may own the alarm as things stand, who only with an override (and a reason), and why the
    others may not; those who may first, in the routing order, then by name."""
    chosen = []
    for employee_id, duty in on_duty.items():
        if employee_id in exclude:
            continue
        person = {"employee_id": employee_id, "name": duty.get("name"), "role": duty["role"]}
        refusal = owner_refusal(route, person=person, on_duty=on_duty, by_supervisor=True,
                                override_reason=None)
        override_only = refusal is not None and refusal.rule == "role_not_routed"
        chosen.append({**person, "signed_in": bool(duty.get("signed_in")),
                       "availability": duty.get("availability"),
                       "active_incidents": duty.get("active_incidents"),
                       "may_own": refusal is None, "needs_override": override_only,
                       "refusal": None if refusal is None or override_only else
                       {"rule": refusal.rule, "message": refusal.message}})
    order = {role: n for n, role in enumerate(route.allowed_roles)}
    return sorted(chosen, key=lambda c: (not c["may_own"], not c["needs_override"],
                                         order.get(c["role"], len(order)), c["name"] or "", c["employee_id"]))
