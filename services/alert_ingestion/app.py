"""App factory: `gunicorn -c python:healthguard.gunicorn_conf "alert_ingestion.app:create_app()"`."""
from healthguard.outbox import OutboxRelay
from healthguard.web import create_service_app

from .flood_limits import limits_from
from .hl7_listener import listener_from
from .schemas import api
from .send_alert_status import SendAlertStatus
from .settings import AlertIngestionSettings
from .views import blueprint
from .watch_device_heartbeats import WatchDeviceHeartbeats


def create_app(config=None):
    app = create_service_app("alert-ingestion", config, settings_model=AlertIngestionSettings,
                             blueprints=(blueprint,), api=api)
    hg = app.extensions["healthguard"]
    app.extensions["alert_ingestion.flood_limits"] = limits_from(hg.settings)
    rules = app.extensions["alert_ingestion.gateway_rules"] = hg.settings.gateway_rules
    # Run by the worker process (python -m healthguard.worker alert_ingestion), never here.
    hg.background.append(OutboxRelay(hg.db, hg.publisher))
    # Device gateways' HL7 alarms (PCD-04 over MLLP) and their status back (PCD-05): HL7.md.
    hg.background.append(listener_from(hg.db, hg.settings))
    hg.background.append(SendAlertStatus(hg.db, rules=rules))
    hg.background.append(WatchDeviceHeartbeats(db=hg.db))
    # Alarms are stored with their outbox row while the broker is away: still ready, degraded.
    hg.degrades_without = frozenset({"broker"})
    return app
