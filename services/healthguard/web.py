"""The Flask app factory every service builds on: config, logging, CORS, JSON errors,
request ids, request metrics, /health and /metrics."""
import logging
import re
import time
import uuid

from flask import Blueprint, Flask, Response, g, request
from flask_cors import CORS

from . import broker, metrics
from .auth import public, register_authentication
from .config import COMMON_REQUIRED, env_int, load_config
from .context import Platform, platform
from .db import Database
from .errors import ApiError, register_error_handlers
from .logs import configure_logging

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
UNAUTHENTICATED_PATHS = ("/health", "/metrics")


def create_service_app(service: str, config=None, *, required=(), optional=(),
                       blueprints=(), api=None) -> Flask:
    """The service's Flask app; `api` (healthguard.api.service_api) validates its routes and
    serves the OpenAPI document generated from the same models at /api/v1/openapi.json."""
    settings = load_config(config, required=(*COMMON_REQUIRED, *required), optional=optional)
    configure_logging(service, settings["LOG_LEVEL"])
    app = Flask(service)
    app.config.update(settings)
    app.config["MAX_CONTENT_LENGTH"] = env_int(settings, "MAX_CONTENT_LENGTH")
    app.json.sort_keys = False
    CORS(app, origins=[settings["WEB_ORIGIN"]],
         allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
         expose_headers=["Location", "X-Request-ID"])
    app.extensions["healthguard"] = Platform(
        service=service,
        db=Database(settings["DATABASE_URL"]),
        publisher=broker.Publisher(settings["RABBITMQ_URL"]),
        rabbitmq_url=settings["RABBITMQ_URL"],
    )
    register_error_handlers(app)
    _register_request_hooks(app, service)
    register_authentication(app)
    app.register_blueprint(_ops_blueprint())
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    if api is not None:
        api.register(app)
    return app


def start_background(app: Flask) -> None:
    """Start consumers and relays. Called per worker process, after the fork (gunicorn's
    post_worker_init), never at import or app creation."""
    for task in app.extensions["healthguard"].background:
        task.start()


def stop_background(app: Flask) -> None:
    for task in app.extensions["healthguard"].background:
        task.stop()


def json_body() -> dict:
    """The request's JSON object, or a 400 that says what is wrong with it."""
    if not request.is_json:
        raise ApiError(400, "the request body must be JSON (Content-Type: application/json)")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


def _register_request_hooks(app: Flask, service: str) -> None:
    @app.before_request
    def start_request():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def finish_request(response):
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.HTTP_REQUESTS.labels(service, request.method, route, str(response.status_code)).inc()
        metrics.HTTP_LATENCY.labels(service, route).observe(elapsed)
        response.headers["X-Request-ID"] = g.get("request_id", "")
        level = logging.DEBUG if request.path in UNAUTHENTICATED_PATHS else logging.INFO
        log.log(level, "request", extra={
            "method": request.method, "path": request.path, "status": response.status_code,
            "duration_ms": round(elapsed * 1000, 1)})
        return response


def _ops_blueprint() -> Blueprint:
    ops = Blueprint("ops", __name__)

    @ops.get("/health")
    @public
    def health():
        hg = platform()
        checks = {}
        for part, probe in (("database", hg.db.ping), ("broker", lambda: broker.ping(hg.rabbitmq_url))):
            try:
                probe()
                checks[part] = {"status": "up"}
            except Exception as exc:  # any failure means this part cannot serve
                checks[part] = {"status": "down", "error": f"{type(exc).__name__}: {exc}".strip()[:300]}
        healthy = all(check["status"] == "up" for check in checks.values())
        down = [part for part, check in checks.items() if check["status"] != "up"]
        body = {"status": "ok" if healthy else "unavailable", "service": hg.service, "checks": checks}
        if down:
            body["down"] = down
        return body, 200 if healthy else 503

    @ops.get("/metrics")
    @public
    def prometheus_metrics():
        payload, content_type = metrics.exposition()
        return Response(payload, content_type=content_type)

    return ops
