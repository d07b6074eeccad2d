"""Metrics of the incident management service (multiprocess-safe: see healthguard.metrics).
Observed only after the transaction that made the change has committed."""
import logging

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from healthguard import clock

log = logging.getLogger(__name__)

# Minutes matter at a bedside: buckets from 5 seconds to 4 hours.
RESPONSE_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400)

INCIDENTS_CREATED = Counter("incidents_total", "Incidents created from alerts", ["severity"])
MTTA = Histogram("incident_mtta_seconds", "Time from an incident's creation (OPEN) to its first "
                 "acknowledgement", ["severity"], buckets=RESPONSE_BUCKETS)
MTTR = Histogram("incident_mttr_seconds", "Time from an incident's creation (OPEN) to its resolution",
                 ["severity"], buckets=RESPONSE_BUCKETS)
ALERTS_CORRELATED = Counter("alerts_correlated_total",
                            "Alerts handled: opened a new incident, or a repeat joined the open one",
                            ["result"])
ASSIGNMENTS = Counter("incident_assignments_total", "Incidents assigned to a clinician",
                      ["reason"])
ONCALL_LOOKUP_FAILURES = Counter("oncall_lookup_failures_total",
                                 "Requests to the on-call service that failed (incident left OPEN)")
ESCALATIONS = Counter("incident_escalations_total",
                      "Incidents escalated because nobody acknowledged them in time", ["severity"])


class ActiveIncidentsCollector:
    """Read from the database when Prometheus scrapes, so every worker and replica reports the
    same truth: incidents not yet resolved, by status and severity, and how long the oldest one
    nobody owns (OPEN: no clinician was available) has waited. An alarm nobody owns is the
    failure this platform exists to prevent; prometheus/alerts.yml pages on it."""

    def __init__(self, *, db):
        self.db = db

    def collect(self):
        try:
            with self.db.transaction() as cur:
                cur.execute("""
                    SELECT status, severity, count(*) AS n,
                           extract(epoch FROM %s - min(created_at)) AS oldest_seconds
                    FROM incidents WHERE status <> 'RESOLVED'
                    GROUP BY status, severity
                """, (clock.now(),))
                rows = cur.fetchall()
        except Exception as exc:  # a scrape must still answer the other metrics
            log.warning("incidents_active not collected", extra={"error": repr(exc)})
            return
        active = GaugeMetricFamily("incidents_active", "Incidents not yet resolved",
                                   labels=["status", "severity"])
        unowned = GaugeMetricFamily("incident_unassigned_oldest_seconds",
                                    "Age of the oldest incident nobody is assigned to (OPEN)",
                                    labels=["severity"])
        for row in rows:
            active.add_metric([row["status"], row["severity"]], row["n"])
            if row["status"] == "OPEN":
                unowned.add_metric([row["severity"]], float(row["oldest_seconds"]))
        yield active
        yield unowned
