"""Retries OPEN incidents: an incident nobody could take (no one available, or the on-call
service down) is never dropped; every few seconds it is offered again, oldest first within the
most severe, and at once when a clinician signs in or marks themselves available (the database
NOTIFYs `clinician_available`, 0006_escalation_deadlines.sql, and the retrier LISTENs: delivered
at commit to every worker, with no queue to lose it in; the interval stays as the safety net).

Runs in the worker process of every incident-management instance: each incident is locked with
SKIP LOCKED and assigned only while still OPEN, so copies never assign one incident twice.
"""
import logging

from healthguard import clock
from healthguard.oncall_client import OnCallClient

from . import care_teams, incidents, routing
from .assignment import OnCallTask, assign_automatically
from .metrics import ASSIGNMENTS

log = logging.getLogger(__name__)

BATCH = 50


def assign_open_incidents(*, db, oncall: OnCallClient) -> int:
    """One pass over the OPEN incidents; returns how many it assigned."""
    with db.transaction() as cur:
        waiting = incidents.open_unassigned(cur, limit=BATCH)
        clinical = routing.clinical_roles(cur)
        care = care_teams.care_teams_of(cur, patient_ids=[row["patient_id"] for row in waiting],
                                        at=clock.now()) if waiting else {}
    everyone = (routing.everyone_available(oncall) or []) if waiting else []  # one lookup per pass
    assigned = 0
    for row in waiting:
        route = routing.route(alert_name=row["alert_name"], severity=row["severity"],
                              routes_to=row["routes_to"], escalate_to_roles=row["escalate_to_roles"],
                              clinical_roles=clinical)
        group = routing.first_candidates(everyone, route, care=care.get(row["patient_id"]))
        if group is None:
            continue
        with db.transaction() as cur:
            incident = incidents.lock_incident(cur, incident_id=row["incident_id"], skip_locked=True)
            if incident is None:
                continue  # another copy is on it right now
            done = assign_automatically(cur, incident, group,
                                        routing.told_of(route, care.get(row["patient_id"]), owner=None))
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
