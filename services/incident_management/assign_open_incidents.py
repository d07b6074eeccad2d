"""Retries OPEN incidents: an incident nobody could take (no one available, or the on-call
service down) is never dropped; every few seconds it is offered again, oldest first within the
most severe, and at once when a clinician signs in or marks themselves available (the database
NOTIFYs `clinician_available`, 0006_escalation_deadlines.sql, and the retrier LISTENs: delivered
at commit to every worker, with no queue to lose it in; the interval stays as the safety net).

Runs in the worker process of every incident-management instance: each incident is locked with
SKIP LOCKED and assigned only while still OPEN, so copies never assign one incident twice.
"""
import logging

from . import incidents
from .assignment import OnCallClient, OnCallTask, assign_automatically
from .metrics import ASSIGNMENTS

log = logging.getLogger(__name__)

BATCH = 50
CLINICIAN_AVAILABLE = "clinician_available"  # the NOTIFY channel


def assign_open_incidents(*, db, oncall: OnCallClient) -> int:
    """One pass over the OPEN incidents; returns how many it assigned."""
    with db.transaction() as cur:
        waiting = incidents.open_unassigned(cur, limit=BATCH)
    candidates_by_route = {}
    assigned = 0
    for row in waiting:
        route = tuple(row["routes_to"])
        if route not in candidates_by_route:  # one on-call lookup per route per pass
            candidates_by_route[route] = oncall.candidates(route)
        if not candidates_by_route[route]:
            continue
        with db.transaction() as cur:
            incident = incidents.lock_incident(cur, incident_id=row["incident_id"], skip_locked=True)
            if incident is None:
                continue  # another copy is on it right now
            done = assign_automatically(cur, incident, candidates_by_route[route])
        if done:
            assigned += 1
            ASSIGNMENTS.labels(reason="AUTO").inc()
    return assigned


class OpenIncidentRetrier(OnCallTask):
    """Offers incidents still OPEN (nobody was available) to the on-call service again."""

    name = "assign-open-incidents"

    def run_once(self) -> int:
        assigned = assign_open_incidents(db=self.db, oncall=self.oncall)
        if assigned:
            log.info("assigned incidents that were waiting", extra={"assigned": assigned})
        return assigned
