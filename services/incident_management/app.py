"""App factory: `gunicorn -c python:healthguard.gunicorn_conf "incident_management.app:create_app()"`."""
from healthguard.config import ConfigError
from healthguard.openapi import openapi_blueprint
from healthguard.outbox import OutboxRelay
from healthguard.web import create_service_app

from .api_document import DOCUMENT
from .assign_open_incidents import OpenIncidentRetrier
from .consume_alerts import AlertConsumer
from .views import blueprint

DEFAULT_RETRY_SECONDS = 5.0  # how often OPEN (unassigned) incidents are offered again


def create_app(config=None):
    app = create_service_app("incident-management", config, required=("ONCALL_URL",),
                             optional=("ASSIGNMENT_RETRY_SECONDS",),
                             blueprints=(blueprint, openapi_blueprint(DOCUMENT)))
    try:
        retry_seconds = float(app.config.get("ASSIGNMENT_RETRY_SECONDS") or DEFAULT_RETRY_SECONDS)
    except ValueError:
        retry_seconds = 0
    if not 0 < retry_seconds <= 3600:
        raise ConfigError("setting ASSIGNMENT_RETRY_SECONDS must be a number of seconds between 0 and 3600, "
                          f"got {app.config.get('ASSIGNMENT_RETRY_SECONDS')!r}")
    hg = app.extensions["healthguard"]
    common = {"db": hg.db, "oncall_url": app.config["ONCALL_URL"],
              "service_token": app.config["SERVICE_TOKEN"]}
    # Started per worker after gunicorn forks (post_worker_init), never here.
    hg.background += [
        OutboxRelay(hg.db, hg.publisher),
        AlertConsumer(rabbitmq_url=hg.rabbitmq_url, **common),
        OpenIncidentRetrier(interval=retry_seconds, **common),
    ]
    return app
