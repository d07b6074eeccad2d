"""Metrics of the alert ingestion service (multiprocess-safe: see healthguard.metrics)."""
from prometheus_client import Counter

ALERTS_RECEIVED = Counter(
    "alerts_received_total", "Alerts accepted and durably stored (retries of one alarm count once)",
    ["severity"])
ALERTS_RATE_LIMITED = Counter(
    "alerts_rate_limited_total", "Alerts refused (429) because a device key or a clinician sent "
    "more than its flood limit", ["source"])
