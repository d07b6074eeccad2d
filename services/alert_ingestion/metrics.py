"""Metrics of the alert ingestion service (multiprocess-safe: see healthguard.metrics)."""
from prometheus_client import Counter, Gauge, Histogram

ALERTS_RECEIVED = Counter(
    "alerts_received_total", "Alerts accepted and durably stored (retries of one alarm count once)",
    ["severity"])
ALERTS_RATE_LIMITED = Counter(
    "alerts_rate_limited_total", "Alerts refused (429) because a device key or a clinician sent "
    "more than its flood limit", ["source"])

# HL7 over MLLP (hl7_listener.py, send_alert_status.py)
HL7_MESSAGES = Counter(
    "hl7_messages_total", "HL7 messages answered on the MLLP listener, by outcome: accepted (AA, "
    "stored), duplicate (AA, already stored), error (AE), rejected (AE: unknown sender or outside "
    "its scope), failed (AR: could not be stored now, e.g. the database away)", ["result"])
HL7_ACK_SECONDS = Histogram(
    "hl7_ack_seconds", "From a complete HL7 message read to its acknowledgement written",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
HL7_CONNECTIONS_CLOSED = Counter(
    "hl7_connections_closed_total", "MLLP connections the listener closed itself. As they opened: "
    "too_many (HL7_MAX_CONNECTIONS open), per_address (HL7_MAX_CONNECTIONS_PER_ADDRESS not yet "
    "authenticated from that address), reserved (only the HL7_RESERVED_CONNECTIONS kept for "
    "allowlisted gateway addresses left); later: unauthenticated (no message from a registered "
    "gateway within HL7_MSH_DEADLINE_SECONDS), idle (authenticated, no complete message for "
    "HL7_IDLE_SECONDS)", ["reason"])
HL7_LISTENER_UP = Gauge(
    "hl7_listener_up", "1 while the MLLP listener holds its port (0: it cannot bind, retrying)",
    multiprocess_mode="livemax")
HL7_STATUS_REPORTS = Counter(
    "hl7_status_reports_total", "PCD-05 alert status messages sent to gateways: sent (acknowledged "
    "AA/CA), failed (an attempt that will be retried)", ["result"])
