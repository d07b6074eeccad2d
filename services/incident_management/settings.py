"""Incident management's settings (healthguard.settings)."""
from healthguard.settings import Seconds, ServiceSettings

from .consume_alerts import DEFAULT_CORRELATION_WINDOW


class IncidentManagementSettings(ServiceSettings):
    # The on-call service, asked who is available.
    ONCALL_URL: str
    # How often OPEN (unassigned) incidents are offered again.
    ASSIGNMENT_RETRY_SECONDS: Seconds(at_most=3600) = 5
    # How often deadlines are checked: an escalation is at most this late.
    ESCALATION_CHECK_SECONDS: Seconds(at_most=3600) = 1
    # A repeat of an alarm within this long of its last sounding joins the incident still open.
    CORRELATION_WINDOW_SECONDS: Seconds(at_most=3600) = DEFAULT_CORRELATION_WINDOW.total_seconds()
