"""The notification service's own metrics (multiprocess-safe: see healthguard.metrics)."""
from prometheus_client import Counter, Gauge, Histogram

# channel="store": status stored | duplicate | rejected (one per recipient of an event);
# channel="websocket": status delivered | failed (one per frame written to one socket).
NOTIFICATIONS_SENT = Counter(
    "notifications_sent_total", "Notifications stored and pushed, by channel and outcome",
    ["channel", "status"])
# livesum: the open sockets of all live workers of this instance, dead workers not counted.
WEBSOCKET_CONNECTIONS = Gauge(
    "websocket_connections", "Open authenticated WebSocket connections",
    multiprocess_mode="livesum")
PUSH_LATENCY = Histogram(
    "notification_push_latency_seconds",
    "From a notification's commit to its frame being written to a clinician's socket",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))

# Off-tab channels (push, email; issue 23: badge, sms, voice): one count per send of a ledger
# attempt, by how it went: sent | delivered | retry (transient, backing off) | failed (for good,
# fell through) | dead_letter (retries exhausted or outcome unknown, fell through).
DELIVERY_ATTEMPTS = Counter(
    "notification_delivery_attempts_total",
    "Off-tab sends of delivery ledger attempts, by channel and result",
    ["channel", "result"])
DELIVERY_FAILURES = Counter(
    "notification_delivery_failures_total",
    "Off-tab sends that failed (transient or for good), by channel", ["channel"])
# From when the step was due (the assignment, for a step "at once") to the request leaving us
# (the moment the channel starts sending it): what the queue, the claim and the worker add.
DELIVERY_SEND_LATENCY = Histogram(
    "notification_delivery_send_latency_seconds",
    "From a rule step falling due (the assignment, for a step at once) to its request leaving us",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0))
