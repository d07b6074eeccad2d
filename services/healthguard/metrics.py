"""Prometheus metrics shared by every service.

Under gunicorn each worker is its own process, and the service's background work runs in another
(healthguard.worker): prometheus-client runs in multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set
before any metric exists, shared by the web and worker processes of a service) and every scrape
builds a fresh registry that sums all their files.
"""
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds", "Time to answer an HTTP request", ["service", "route"])
MESSAGES_DEAD_LETTERED = Counter(
    "messages_dead_lettered_total", "Messages moved to a dead-letter queue", ["queue"])
# Set by the service's worker process while all its background tasks run (healthguard.worker).
# "max" over every process's file: the web workers' zeros never hide it, and a worker that
# stopped leaves its last beat, which ages until the WorkerStalled alert fires.
WORKER_HEARTBEAT = Gauge(
    "worker_heartbeat_timestamp_seconds",
    "When the service's worker process last found all its background tasks running (Unix time)",
    multiprocess_mode="max")
MESSAGES_RETRIED = Counter(
    "messages_retried_total", "Messages whose handler failed, parked in a delay queue to retry",
    ["queue"])


def add_scrape_collector(app, collector) -> None:
    """Register a collector (an object with collect()) that computes its metrics when scraped,
    e.g. from the database. Kept per app: it works in multiprocess mode, where every scrape
    builds a fresh registry, and several apps in one test process do not collide."""
    app.extensions.setdefault("healthguard.scrape_collectors", []).append(collector)


def _scrape_collectors() -> list:
    from flask import current_app, has_app_context
    return current_app.extensions.get("healthguard.scrape_collectors", []) if has_app_context() else []


def exposition() -> tuple[bytes, str]:
    """The text exposition of this service's metrics, across all its processes (gunicorn workers
    and the background worker), plus the scrape-time collectors the current app registered."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    payload = generate_latest(registry)
    extra = _scrape_collectors()
    if extra:
        scrape_time = CollectorRegistry(auto_describe=False)
        for collector in extra:
            scrape_time.register(collector)
        payload += generate_latest(scrape_time)
    return payload, CONTENT_TYPE_LATEST
