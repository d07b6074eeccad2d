"""App factory: `gunicorn -c python:healthguard.gunicorn_conf "oncall.app:create_app()"`."""
from healthguard import metrics as shared_metrics
from healthguard.addresses import trusted_proxies
from healthguard.config import ConfigError, hospital_tz
from healthguard.web import create_service_app

from . import auth_views, views
from .metrics import OnCallCollector
from .prune_sign_in_records import PruneSignInRecords
from .schemas import api


def create_app(config=None):
    app = create_service_app("oncall", config,
                             optional=("HOSPITAL_TZ", "SESSION_TTL_HOURS", "TRUSTED_PROXIES"),
                             blueprints=(auth_views.blueprint, views.blueprint), api=api)
    tz = hospital_tz(app.config)
    try:
        ttl_hours = float(app.config["SESSION_TTL_HOURS"])
    except (TypeError, ValueError):
        ttl_hours = 0
    if not 0 < ttl_hours <= 24 * 30:
        raise ConfigError("setting SESSION_TTL_HOURS must be a number of hours between 0 and 720, got "
                          f"{app.config['SESSION_TTL_HOURS']!r}")
    app.extensions["oncall.tz"] = tz
    app.extensions["oncall.session_ttl_hours"] = ttl_hours
    app.extensions["oncall.trusted_proxies"] = trusted_proxies(app.config.get("TRUSTED_PROXIES"))
    hg = app.extensions["healthguard"]
    shared_metrics.add_scrape_collector(app, OnCallCollector(db=hg.db, tz=tz))
    hg.background.append(PruneSignInRecords(db=hg.db))  # run by the worker process
    hg.dependencies = ("database",)  # on-call never uses the broker: /ready does not ask it
    return app
