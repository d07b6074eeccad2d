"""App factory: `gunicorn -c python:healthguard.gunicorn_conf "oncall.app:create_app()"`."""
from healthguard import metrics as shared_metrics
from healthguard.audit import AuditChainCollector
from healthguard.web import create_service_app

from . import auth_views, privacy_views, views
from .metrics import OnCallCollector
from .prune_sign_in_records import PruneSignInRecords
from .schemas import api
from .seal_audit_chains import SealAuditChains
from .settings import OnCallSettings


def create_app(config=None):
    app = create_service_app("oncall", config, settings_model=OnCallSettings,
                             blueprints=(auth_views.blueprint, views.blueprint, privacy_views.blueprint),
                             api=api)
    hg = app.extensions["healthguard"]
    shared_metrics.add_scrape_collector(app, OnCallCollector(db=hg.db, tz=hg.settings.HOSPITAL_TZ))
    shared_metrics.add_scrape_collector(app, AuditChainCollector(hg.db))
    hg.background.append(PruneSignInRecords(db=hg.db))  # run by the worker process
    hg.background.append(SealAuditChains(db=hg.db))
    hg.dependencies = ("database",)  # on-call never uses the broker: /ready does not ask it
    return app
