"""Who takes an incident: the on-call service says who is on shift and available, with their
workload; the least busy of the first role (in the alert type's routes_to order) that has anyone
is assigned, and when no routed role has anyone, any available clinician."""
import datetime
import logging

import requests

from healthguard import clock
from healthguard.incident_events import assigned_message
from healthguard.tasks import PeriodicTask

from . import history
from .events import announce_many
from .metrics import ONCALL_LOOKUP_FAILURES

log = logging.getLogger(__name__)

# All automatic assignments queue on this lock for the few milliseconds they take, so two
# incidents arriving together see each other's assignment when they rank clinicians by workload.
ASSIGNMENT_LOCK_ID = 0x4847_0003


class OnCallClient:
    """GET /api/v1/oncall/available on the on-call service, as a service (SERVICE_TOKEN).

    Called outside any database transaction. One per thread (requests.Session is not shared).
    """

    def __init__(self, base_url: str, service_token: str, *, timeout: tuple = (1.0, 3.0)):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {service_token}"

    def available(self, role: str | None = None) -> list[dict]:
        """Available clinicians (of this role, or of any role), least busy first. Raises
        requests.RequestException when the on-call service cannot answer."""
        params = {"roles": role} if role else {}
        response = self.session.get(f"{self.base_url}/api/v1/oncall/available", params=params,
                                    timeout=self.timeout)
        if response.status_code == 422 and role:
            return []  # nobody in the hospital has this role: the next role in the route decides
        response.raise_for_status()
        return response.json()["clinicians"]

    def candidates(self, routes_to, *, exclude=()) -> list[dict]:
        """The clinicians to choose from for an alert type routed to `routes_to`: those of the
        first role that has anyone available (other than `exclude`), else anyone available. []
        when nobody is, or when the on-call service is unreachable (the incident stays OPEN and
        is retried)."""
        return self.candidates_for_routes([routes_to], exclude=exclude)[0]

    def candidates_for_routes(self, routes, *, exclude=()) -> list[list[dict]]:
        """candidates() for each of several routes (a batch of alarms), from ONE question to
        the on-call service: everyone available, least busy first, each with their role."""
        try:
            everyone = [c for c in self.available() if c["employee_id"] not in exclude]
            roles = {c["role"] for c in everyone}
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            ONCALL_LOOKUP_FAILURES.inc()
            log.warning("on-call service did not answer; incident left OPEN for a retry",
                        extra={"error": repr(exc)[:300]})
            return [[] for _ in routes]
        chosen = []
        for routes_to in routes:
            role = next((role for role in routes_to if role in roles), None)
            chosen.append([c for c in everyone if c["role"] == role] if role else list(everyone))
        return chosen

    def on_duty(self, role: str | None = None) -> list[dict]:
        """Everyone on duty now by the rota (GET /api/v1/oncall/current), signed in or not.
        Raises requests.RequestException when the on-call service cannot answer."""
        params = {"role": role} if role else {}
        response = self.session.get(f"{self.base_url}/api/v1/oncall/current", params=params,
                                    timeout=self.timeout)
        response.raise_for_status()
        return response.json()["clinicians"]

    def supervisors_on_duty(self) -> list[str] | None:
        """Supervisors on duty now and signed in: the only ones told of escalations and of alarms
        nobody could take (an off-shift supervisor must not collect a pile of unread pages).
        None when the on-call service cannot answer."""
        try:
            return sorted(c["employee_id"] for c in self.on_duty() if c["is_supervisor"] and c["signed_in"])
        except (requests.RequestException, ValueError, KeyError) as exc:
            ONCALL_LOOKUP_FAILURES.inc()
            log.warning("on-call service did not answer who supervises now", extra={"error": repr(exc)[:300]})
            return None

    def close(self) -> None:
        self.session.close()


def supervisors_to_tell(cur, *, on_duty: list[str] | None, at: datetime.datetime) -> list[str]:
    """The supervisors to tell: `on_duty` (OnCallClient.supervisors_on_duty(), asked before the
    transaction). When the on-call service could not say who is on duty (None), every signed-in
    supervisor is told instead: for a safety notice, too many readers beat none."""
    if on_duty is not None:
        return on_duty
    cur.execute("""
        SELECT e.employee_id FROM employees e
        WHERE e.is_supervisor
          AND e.employee_id IN (SELECT s.employee_id FROM signed_in_clinicians(%s) s)
        ORDER BY e.employee_id
    """, (at,))
    return [row["employee_id"] for row in cur.fetchall()]


def least_busy(cur, candidates: list[dict]) -> dict | None:
    """The candidate to assign, re-ranked on current workload under the assignment lock.

    The on-call answer was computed before this transaction; incidents assigned since (a burst
    of alarms) are counted here, in the order the on-call service uses (least_busy_first()), ties
    kept in the on-call service's own order.
    """
    return Workload(cur, [c["employee_id"] for c in candidates]).least_busy(candidates)


class Workload:
    """The workload of candidates, read once under the assignment lock (all automatic
    assignments queue on it for the few milliseconds they take, so alarms arriving together see
    each other's assignment) and kept up to date as a batch assigns: a batch ranks each of its
    alarms as if it came alone (the 2nd of two alarms for one role goes to the 2nd clinician)
    without one ranking query per alarm.

    The order is least_busy_first()'s (0004_availability.sql): fewest active incidents (counted
    in unresolved_incidents, 0013), then idle longest (never assigned first), then the on-call
    service's order."""

    NEVER = datetime.datetime.min.replace(tzinfo=datetime.UTC)

    def __init__(self, cur, employee_ids):
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (ASSIGNMENT_LOCK_ID,))
        cur.execute("SELECT employee_id, active_incidents, last_assigned_at FROM least_busy_first(%s)",
                    (sorted(set(employee_ids)),))
        self.load = {row["employee_id"]: (row["active_incidents"], row["last_assigned_at"])
                     for row in cur.fetchall()}

    def least_busy(self, candidates: list[dict]) -> dict | None:
        def rank(numbered):
            position, candidate = numbered
            active, last = self.load[candidate["employee_id"]]
            return active, last is not None, last or self.NEVER, position
        known = [(n, c) for n, c in enumerate(candidates) if c["employee_id"] in self.load]
        return min(known, key=rank)[1] if known else None

    def assigned(self, employee_id: str, at: datetime.datetime) -> None:
        active, _ = self.load[employee_id]
        self.load[employee_id] = (active + 1, at)


def assign_automatically(cur, incident: dict, candidates: list[dict]) -> dict | None:
    """Assign an OPEN incident, locked by the caller, to the least busy candidate. Returns the
    updated incident, or None when there is nobody to assign (it stays OPEN)."""
    if incident["status"] != "OPEN" or not candidates:
        return None
    workload = Workload(cur, [c["employee_id"] for c in candidates])
    return assign_least_busy(cur, [(incident, candidates)], workload=workload).get(incident["incident_id"])


def assign_least_busy(cur, offers, *, workload: Workload) -> dict[int, dict]:
    """Assign each OPEN incident of `offers` ((incident, candidates), locked by the caller, in
    order) to its least busy candidate by `workload`, which counts each assignment for the next
    one; its assignment, ASSIGNED history row and page in a few statements for them all.
    Returns incident_id -> the updated incident, for those assigned."""
    chosen = []
    for incident, candidates in offers:
        pick = workload.least_busy(candidates) if incident["status"] == "OPEN" and candidates else None
        if pick is not None:
            at = clock.now()
            workload.assigned(pick["employee_id"], at)
            chosen.append((incident["incident_id"], pick, at))
    if not chosen:
        return {}
    cur.execute("""
        UPDATE incidents i
        SET status = 'ASSIGNED', assigned_to = c.employee_id, assigned_at = c.at,
            ack_deadline = next_deadline(i.severity, 'ASSIGNED', c.at), updated_at = now()
        FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[]) AS c(incident_id, employee_id, at)
        WHERE i.incident_id = c.incident_id AND i.status = 'OPEN'
        RETURNING i.*
    """, ([i for i, _, _ in chosen], [p["employee_id"] for _, p, _ in chosen], [at for _, _, at in chosen]))
    updated = {row["incident_id"]: row for row in cur.fetchall()}
    chosen = [(updated[i], pick) for i, pick, _ in chosen if i in updated]
    cur.execute("""
        INSERT INTO incident_assignments (incident_id, employee_id, assigned_by, reason, assigned_at)
        SELECT incident_id, employee_id, NULL, 'AUTO', assigned_at
        FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[])
             WITH ORDINALITY AS a(incident_id, employee_id, assigned_at, n)
        ORDER BY n
    """, ([i["incident_id"] for i, _ in chosen], [i["assigned_to"] for i, _ in chosen],
          [i["assigned_at"] for i, _ in chosen]))
    entries = history.record_many(cur, action="ASSIGNED", changes=[
        (incident, "OPEN", f"assigned to {pick['name']} ({pick['role']}), the least busy available")
        for incident, pick in chosen])
    announce_many(cur, [(incident, "INCIDENT_ASSIGNED", entries[incident["incident_id"]],
                         [incident["assigned_to"]], assigned_message(incident)) for incident, _ in chosen])
    return {incident["incident_id"]: incident for incident, _ in chosen}


class OnCallTask(PeriodicTask):
    """Periodic work that asks the on-call service who is available (its own client: a
    requests.Session is not shared between threads)."""

    def __init__(self, *, db, oncall_url: str, service_token: str, interval: float,
                 wake_channel: str | None = None):
        super().__init__(interval=interval, wake_on=(db.url, wake_channel) if wake_channel else None)
        self.db = db
        self.oncall = OnCallClient(oncall_url, service_token)

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        self.oncall.close()
