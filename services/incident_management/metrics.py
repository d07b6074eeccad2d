"""Metrics of the incident management service (multiprocess-safe: see healthguard.metrics).
Observed only after the transaction that made the change has committed."""
from prometheus_client import Counter, Histogram

# Minutes matter at a bedside: buckets from 5 seconds to 4 hours.
RESPONSE_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400)

INCIDENTS_CREATED = Counter("incidents_total", "Incidents created from alerts", ["severity"])
MTTA = Histogram("incident_mtta_seconds", "Time from an incident's creation (OPEN) to its first "
                 "acknowledgement", ["severity"], buckets=RESPONSE_BUCKETS)
MTTR = Histogram("incident_mttr_seconds", "Time from an incident's creation (OPEN) to its resolution",
                 ["severity"], buckets=RESPONSE_BUCKETS)
ASSIGNMENTS = Counter("incident_assignments_total", "Incidents assigned to a clinician",
                      ["reason"])
ONCALL_LOOKUP_FAILURES = Counter("oncall_lookup_failures_total",
                                 "Requests to the on-call service that failed (incident left OPEN)")
ESCALATIONS = Counter("incident_escalations_total",
                      "Incidents escalated because nobody acknowledged them in time", ["severity"])
