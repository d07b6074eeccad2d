"""What a service shares between its routes, consumers and tests, kept in app.extensions.

Its own module so that both the app factory (web.py) and authentication (auth.py) can reach it
while imports run one way: web imports auth, auth imports this, this imports neither.
"""
from dataclasses import dataclass, field

from flask import current_app

from . import broker
from .db import Database
from .settings import ServiceSettings


@dataclass
class Platform:
    """What a service shares between its routes, consumers and tests (app.extensions)."""
    service: str
    settings: ServiceSettings  # the service's model (healthguard.settings), read once at start
    db: Database
    publisher: broker.Publisher
    rabbitmq_url: str
    retry: broker.RetryPolicy = field(default_factory=broker.RetryPolicy)
    # Consumers, outbox relays and periodic tasks (objects with start(), stop(), is_alive()):
    # run by the service's worker process (`python -m healthguard.worker <service>`), never in
    # a web worker, so scaling HTTP does not multiply them and a stuck one takes no HTTP thread.
    background: list = field(default_factory=list)
    # Tasks that serve state held by one web process (its WebSockets): started in every gunicorn
    # worker after the fork (post_worker_init), and only those.
    web_background: list = field(default_factory=list)
    # What /ready checks: the parts this service cannot work without...
    dependencies: tuple = ("database", "broker")
    # ...except these, without which it still does its job, degraded: /ready answers 200 naming
    # them (alert ingestion keeps accepting alarms into its outbox while the broker is away).
    degrades_without: frozenset = frozenset()


def platform() -> Platform:
    return current_app.extensions["healthguard"]


def settings() -> ServiceSettings:
    """This app's settings, typed (the service's own model)."""
    return current_app.extensions["healthguard"].settings
