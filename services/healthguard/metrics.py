"""Prometheus metrics shared by every service.

Under gunicorn each worker is its own process: prometheus-client runs in multiprocess mode
(PROMETHEUS_MULTIPROC_DIR, set by healthguard.gunicorn_conf before any metric exists) and every
scrape builds a fresh registry that sums the workers' files.
"""
import os

from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter,
                               Histogram, generate_latest)
from prometheus_client import multiprocess

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds", "Time to answer an HTTP request", ["service", "route"])
MESSAGES_DEAD_LETTERED = Counter(
    "messages_dead_lettered_total", "Messages moved to a dead-letter queue", ["queue"])


def exposition() -> tuple[bytes, str]:
    """The text exposition of this service's metrics, across all its worker processes."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST
