"""App factory: `gunicorn -c python:healthguard.gunicorn_conf "incident_management.app:create_app()"`."""
import datetime
import threading

from healthguard.domain import CLINICIAN_AVAILABLE_CHANNEL
from healthguard.metrics import add_scrape_collector
from healthguard.outbox import OutboxRelay
from healthguard.web import create_service_app

from .assign_open_incidents import OpenIncidentRetrier
from .care_views import blueprint as care_blueprint
from .consume_alerts import AlertConsumer
from .end_expired_silences import SilenceExpirer
from .escalate_unacknowledged import UnacknowledgedEscalator
from .metrics import ActiveIncidentsCollector
from .resolve_heard_devices import HeardDeviceResolver
from .schemas import api
from .settings import IncidentManagementSettings
from .views import blueprint


def create_app(config=None):
    app = create_service_app("incident-management", config, settings_model=IncidentManagementSettings,
                             blueprints=(blueprint, care_blueprint), api=api)
    hg = app.extensions["healthguard"]
    settings = hg.settings
    escalation_seconds = settings.ESCALATION_CHECK_SECONDS
    app.extensions["incidents.oncall"] = threading.local()  # each HTTP thread's on-call client (views)
    add_scrape_collector(app, ActiveIncidentsCollector(db=hg.db))
    common = {"db": hg.db, "oncall_url": settings.ONCALL_URL, "service_token": settings.SERVICE_TOKEN}
    # Run by the worker process (python -m healthguard.worker incident_management), never here.
    hg.background += [
        OutboxRelay(hg.db, hg.publisher),
        AlertConsumer(rabbitmq_url=hg.rabbitmq_url, retry=hg.retry,
                      window=datetime.timedelta(seconds=settings.CORRELATION_WINDOW_SECONDS), **common),
        # Also woken the moment a clinician signs in or becomes available (0006's NOTIFY).
        OpenIncidentRetrier(interval=settings.ASSIGNMENT_RETRY_SECONDS,
                            wake_channel=CLINICIAN_AVAILABLE_CHANNEL, **common),
        UnacknowledgedEscalator(interval=escalation_seconds, **common),
        # A silence's end is a deadline like an acknowledgement's: checked as often.
        SilenceExpirer(db=hg.db, interval=escalation_seconds),
        # A silent device heard again (alert ingestion marks its alert cleared): as promptly.
        HeardDeviceResolver(db=hg.db, interval=escalation_seconds),
    ]
    return app
