"""App factory: `gunicorn -c python:healthguard.gunicorn_conf "oncall.app:create_app()"`."""
import datetime as dt

from healthguard import metrics as shared_metrics
from healthguard.addresses import trusted_proxies
from healthguard.audit import AuditChainCollector
from healthguard.config import ConfigError, hospital_tz
from healthguard.web import create_service_app

from . import auth_views, privacy_views, views
from .accounts import one_time_password_lifetime
from .metrics import OnCallCollector
from .prune_sign_in_records import PruneSignInRecords
from .schemas import api
from .seal_audit_chains import SealAuditChains

# A browser session (the web UI's) ends after this long without a request from any of its tabs:
# a workstation left with the browser closed, not a console left open (its pages keep it alive).
SESSION_IDLE_MINUTES = "30"


def create_app(config=None):
    app = create_service_app("oncall", config,
                             optional=("HOSPITAL_TZ", "SESSION_TTL_HOURS", "SESSION_IDLE_MINUTES",
                                       "ONE_TIME_PASSWORD_HOURS", "TRUSTED_PROXIES"),
                             blueprints=(auth_views.blueprint, views.blueprint, privacy_views.blueprint),
                             api=api)
    tz = hospital_tz(app.config)
    try:
        ttl_hours = float(app.config["SESSION_TTL_HOURS"])
    except (TypeError, ValueError):
        ttl_hours = 0
    if not 0 < ttl_hours <= 24 * 30:
        raise ConfigError("setting SESSION_TTL_HOURS must be a number of hours between 0 and 720, got "
                          f"{app.config['SESSION_TTL_HOURS']!r}")
    idle_text = app.config.get("SESSION_IDLE_MINUTES") or SESSION_IDLE_MINUTES
    try:
        idle_minutes = float(idle_text)
    except ValueError:
        idle_minutes = 0
    if not 0 < idle_minutes <= ttl_hours * 60:
        raise ConfigError("setting SESSION_IDLE_MINUTES must be a number of minutes above 0 and at "
                          f"most the session's SESSION_TTL_HOURS, got {idle_text!r}")
    app.extensions["oncall.tz"] = tz
    app.extensions["oncall.session_ttl_hours"] = ttl_hours
    app.extensions["oncall.session_idle"] = dt.timedelta(minutes=idle_minutes)
    app.extensions["oncall.one_time_password_lifetime"] = one_time_password_lifetime(app.config)
    app.extensions["oncall.trusted_proxies"] = trusted_proxies(app.config.get("TRUSTED_PROXIES"))
    hg = app.extensions["healthguard"]
    shared_metrics.add_scrape_collector(app, OnCallCollector(db=hg.db, tz=tz))
    shared_metrics.add_scrape_collector(app, AuditChainCollector(hg.db))
    hg.background.append(PruneSignInRecords(db=hg.db))  # run by the worker process
    hg.background.append(SealAuditChains(db=hg.db))
    hg.dependencies = ("database",)  # on-call never uses the broker: /ready does not ask it
    return app
