"""Automatic assignment: an OPEN incident goes to the least busy of its candidates (who they are
is routing.py's answer), with its assignment, ASSIGNED history row and page."""
from healthguard import clock
from healthguard.incident_events import assigned_message, person
from healthguard.tasks import PeriodicTask

from . import history
from .events import Announcement, announce_many
from .routing import OnCallClient, Workload


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
        SET status = 'ASSIGNED', assigned_to = c.employee_id, assigned_at = c.at, assignment_reason = 'AUTO',
            ack_deadline = next_deadline(i.severity, 'ASSIGNED', c.at), updated_at = c.at
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
        (incident, "OPEN", f"assigned to {person(pick)}, the least busy available")
        for incident, pick in chosen])
    announce_many(cur, [Announcement(incident, "INCIDENT_ASSIGNED", entries[incident["incident_id"]],
                                     [incident["assigned_to"]], assigned_message(incident),
                                     {"paged": [incident["assigned_to"]]})
                        for incident, _ in chosen])
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
