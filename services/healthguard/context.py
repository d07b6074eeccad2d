"""What a service shares between its routes, consumers and tests, kept in app.extensions.

Its own module so that both the app factory (web.py) and authentication (auth.py) can reach it
while imports run one way: web imports auth, auth imports this, this imports neither.
"""
from dataclasses import dataclass, field

from flask import current_app

from . import broker
from .db import Database


@dataclass
class Platform:
    """What a service shares between its routes, consumers and tests (app.extensions)."""
    service: str
    db: Database
    publisher: broker.Publisher
    rabbitmq_url: str
    background: list = field(default_factory=list)  # objects with start() and stop()


def platform() -> Platform:
    return current_app.extensions["healthguard"]
