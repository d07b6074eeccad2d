"""App factory: `gunicorn -c python:healthguard.gunicorn_conf "incident_management.app:create_app()"`."""
import datetime
import threading

from healthguard.config import ConfigError, hospital_tz
from healthguard.domain import CLINICIAN_AVAILABLE_CHANNEL
from healthguard.metrics import add_scrape_collector
from healthguard.outbox import OutboxRelay
from healthguard.web import create_service_app

from .assign_open_incidents import OpenIncidentRetrier
from .care_views import blueprint as care_blueprint
from .consume_alerts import DEFAULT_CORRELATION_WINDOW, AlertConsumer
from .end_expired_silences import SilenceExpirer
from .escalate_unacknowledged import UnacknowledgedEscalator
from .metrics import ActiveIncidentsCollector
from .resolve_heard_devices import HeardDeviceResolver
from .schemas import api
from .views import blueprint

DEFAULT_RETRY_SECONDS = 5.0  # how often OPEN (unassigned) incidents are offered again
DEFAULT_ESCALATION_CHECK_SECONDS = 1.0  # how often deadlines are checked: an escalation is at most this late


def _seconds(app, name: str, default: float) -> float:
    try:
        value = float(app.config.get(name) or default)
    except ValueError:
        value = 0
    if not 0 < value <= 3600:
        raise ConfigError(f"setting {name} must be a number of seconds between 0 and 3600, "
                          f"got {app.config.get(name)!r}")
    return value


def create_app(config=None):
    app = create_service_app("incident-management", config, required=("ONCALL_URL",),
                             optional=("ASSIGNMENT_RETRY_SECONDS", "ESCALATION_CHECK_SECONDS",
                                       "CORRELATION_WINDOW_SECONDS", "HOSPITAL_TZ"),
                             blueprints=(blueprint, care_blueprint), api=api)
    retry_seconds = _seconds(app, "ASSIGNMENT_RETRY_SECONDS", DEFAULT_RETRY_SECONDS)
    escalation_seconds = _seconds(app, "ESCALATION_CHECK_SECONDS", DEFAULT_ESCALATION_CHECK_SECONDS)
    window = datetime.timedelta(seconds=_seconds(app, "CORRELATION_WINDOW_SECONDS",
                                                 DEFAULT_CORRELATION_WINDOW.total_seconds()))
    app.extensions["incidents.tz"] = hospital_tz(app.config)  # the days of the trends
    app.extensions["incidents.oncall"] = threading.local()  # each HTTP thread's on-call client (views)
    hg = app.extensions["healthguard"]
    add_scrape_collector(app, ActiveIncidentsCollector(db=hg.db))
    common = {"db": hg.db, "oncall_url": app.config["ONCALL_URL"],
              "service_token": app.config["SERVICE_TOKEN"]}
    # Run by the worker process (python -m healthguard.worker incident_management), never here.
    hg.background += [
        OutboxRelay(hg.db, hg.publisher),
        AlertConsumer(rabbitmq_url=hg.rabbitmq_url, retry=hg.retry, window=window, **common),
        # Also woken the moment a clinician signs in or becomes available (0006's NOTIFY).
        OpenIncidentRetrier(interval=retry_seconds, wake_channel=CLINICIAN_AVAILABLE_CHANNEL, **common),
        UnacknowledgedEscalator(interval=escalation_seconds, **common),
        # A silence's end is a deadline like an acknowledgement's: checked as often.
        SilenceExpirer(db=hg.db, interval=escalation_seconds),
        # A silent device heard again (alert ingestion marks its alert cleared): as promptly.
        HeardDeviceResolver(db=hg.db, interval=escalation_seconds),
    ]
    return app
