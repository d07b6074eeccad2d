"""Automatic assignment: an OPEN incident goes to the least busy of its first candidate group
(who they are, and why, is routing.py's answer), with its assignment (and why this person), its
ASSIGNED history row and page; the patient's nurse is told of an alarm she may not own."""
from healthguard import clock
from healthguard.incident_events import assigned_message, person
from healthguard.oncall_client import OnCallClient
from healthguard.tasks import PeriodicTask

from . import history
from .events import Announcement, announce_many
from .routing import CandidateGroup, Workload


def assign_automatically(cur, incident: dict, group: CandidateGroup | None, told=()) -> dict | None:
    """Assign an OPEN incident, locked by the caller, to the least busy of `group`. Returns the
    updated incident, or None when there is nobody to assign (it stays OPEN)."""
    if incident["status"] != "OPEN" or group is None or incident.get("silenced_by"):
        return None
    workload = Workload(cur, [c["employee_id"] for c in group.candidates])
    return assign_least_busy(cur, [(incident, group, told)], workload=workload).get(incident["incident_id"])


def assign_least_busy(cur, offers, *, workload: Workload) -> dict[int, dict]:
    """Assign each OPEN incident of `offers` ((incident, candidate group or None, told), locked by
    the caller, in order) to the least busy of its group by `workload`, which counts each
    assignment for the next one; its assignment (with why), ASSIGNED history row and page in a
    few statements for them all; those `told` (routing.told_of) get a record and a notice, not
    the alarm. An incident held by a silence is not offered. Returns incident_id -> the updated
    incident, for those assigned."""
    chosen = []
    for incident, group, told in offers:
        if incident["status"] != "OPEN" or group is None or incident.get("silenced_by"):
            continue
        pick = workload.least_busy(list(group.candidates))
        if pick is not None:
            at = clock.now()
            workload.assigned(pick["employee_id"], at)
            others = [t for t in told if t != pick["employee_id"]]
            chosen.append((incident["incident_id"], pick, at, group, others))
    if not chosen:
        return {}
    cur.execute("""
        UPDATE incidents i
        SET status = 'ASSIGNED', assigned_to = c.employee_id, assigned_at = c.at, assignment_reason = 'AUTO',
            ack_deadline = next_deadline(i.severity, 'ASSIGNED', c.at), updated_at = c.at
        FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[]) AS c(incident_id, employee_id, at)
        WHERE i.incident_id = c.incident_id AND i.status = 'OPEN'
        RETURNING i.*
    """, ([c[0] for c in chosen], [c[1]["employee_id"] for c in chosen], [c[2] for c in chosen]))
    updated = {row["incident_id"]: row for row in cur.fetchall()}
    chosen = [(updated[i], pick, group, told) for i, pick, _, group, told in chosen if i in updated]
    cur.execute("""
        INSERT INTO incident_assignments (incident_id, employee_id, assigned_by, reason, assigned_at,
                                          routed_as, why)
        SELECT incident_id, employee_id, NULL, 'AUTO', assigned_at, routed_as, why
        FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::text[], %s::text[])
             WITH ORDINALITY AS a(incident_id, employee_id, assigned_at, routed_as, why, n)
        ORDER BY n
    """, ([i["incident_id"] for i, *_ in chosen], [i["assigned_to"] for i, *_ in chosen],
          [i["assigned_at"] for i, *_ in chosen], [g.routed_as for _, _, g, _ in chosen],
          [g.why for _, _, g, _ in chosen]))
    told = [(i["incident_id"], who, i["assigned_at"]) for i, _, _, names in chosen for who in names]
    if told:
        cur.execute("""
            INSERT INTO incident_told (incident_id, employee_id, reason, told_at)
            SELECT t.incident_id, t.employee_id, 'the patient''s nurse: a nurse may not own this alarm', t.at
            FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[]) AS t(incident_id, employee_id, at)
            ON CONFLICT DO NOTHING
        """, ([t[0] for t in told], [t[1] for t in told], [t[2] for t in told]))
    entries = history.record_many(cur, action="ASSIGNED", changes=[
        (incident, "OPEN", f"assigned to {person(pick)}: {group.why}"
                           + (f"; told: {', '.join(names)}" if names else ""))
        for incident, pick, group, names in chosen])
    announce_many(cur, [Announcement(incident, "INCIDENT_ASSIGNED", entries[incident["incident_id"]],
                                     [incident["assigned_to"], *names], assigned_message(incident),
                                     {"paged": [incident["assigned_to"]]})
                        for incident, _, _, names in chosen])
    return {incident["incident_id"]: incident for incident, *_ in chosen}


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
