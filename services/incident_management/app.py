"""App factory: `gunicorn -c python:healthguard.gunicorn_conf "incident_management.app:create_app()"`."""
from healthguard.web import create_service_app


def create_app(config=None):
    return create_service_app("incident-management", config)
