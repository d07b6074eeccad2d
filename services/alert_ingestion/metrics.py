"""Metrics of the alert ingestion service (multiprocess-safe: see healthguard.metrics)."""
from prometheus_client import Counter

ALERTS_RECEIVED = Counter(
    "alerts_received_total", "Alerts accepted and durably stored (retries of one alarm count once)",
    ["severity"])
