"""App factory: `gunicorn -c python:healthguard.gunicorn_conf "alert_ingestion.app:create_app()"`."""
from healthguard.outbox import OutboxRelay
from healthguard.web import create_service_app

from .flood_limits import limits_from
from .schemas import api
from .views import blueprint
from .wake_relay import RelayWaker


def create_app(config=None):
    # DEVICE_API_KEYS is optional: bootstrap keys for the demo profile; devices have their own keys.
    app = create_service_app("alert-ingestion", config,
                             optional=("DEVICE_API_KEYS", "DEVICE_ALERTS_PER_SECOND",
                                       "MANUAL_ALERTS_PER_MINUTE"),
                             blueprints=(blueprint,), api=api)
    app.extensions["alert_ingestion.flood_limits"] = limits_from(app.config)
    hg = app.extensions["healthguard"]
    app.extensions["alert_ingestion.relay_waker"] = RelayWaker(hg.db)
    # Run by the worker process (python -m healthguard.worker alert_ingestion), never here.
    hg.background.append(OutboxRelay(hg.db, hg.publisher))
    # Alarms are stored with their outbox row while the broker is away: still ready, degraded.
    hg.degrades_without = frozenset({"broker"})
    return app
