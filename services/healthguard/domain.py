"""The hospital's vocabularies, written once for every service. The browser has the same lists
in web-ui/src/domain.js; tests/test_domain_lists.py fails when the two differ. The database's
CHECK constraints (db/migrations) hold them too, as the last line of defence."""
from typing import Literal

# Most severe first: the order of lists, filters and the dashboard.
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")

# In lifecycle order. RESOLVED is the only status an incident does not leave.
INCIDENT_STATUSES = ("OPEN", "ASSIGNED", "ACKNOWLEDGED", "REASSIGNED", "IN_PROGRESS", "RESOLVED")
ACTIVE_INCIDENT_STATUSES = tuple(status for status in INCIDENT_STATUSES if status != "RESOLVED")
# Waiting for the assignee to acknowledge (and escalated when they do not in time).
UNACKNOWLEDGED_STATUSES = ("ASSIGNED", "REASSIGNED")

# What a clinician says of themselves: AWAY takes them out of assignment while signed in.
AVAILABILITIES = ("AVAILABLE", "AWAY")

# The same lists as types, for the request and response models (healthguard.api).
Severity = Literal[SEVERITIES]
IncidentStatus = Literal[INCIDENT_STATUSES]
Availability = Literal[AVAILABILITIES]
