"""App factory: `gunicorn -c python:healthguard.gunicorn_conf "alert_ingestion.app:create_app()"`."""
from healthguard.web import create_service_app


def create_app(config=None):
    return create_service_app("alert-ingestion", config)
