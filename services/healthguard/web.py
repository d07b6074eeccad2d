"""The Flask app factory every service builds on: config, logging, CORS, JSON errors,
request ids, request metrics, /health, /ready and /metrics."""
import logging
import re
import time
import uuid

from flask import Blueprint, Flask, Response, g, request
from flask_cors import CORS

from . import broker, metrics
from .api import BoundedJSONProvider, refuse_unencodable_input
from .auth import public, register_authentication
from .context import Platform, platform
from .db import Database
from .errors import register_error_handlers
from .logs import configure_logging
from .phi_access import PURPOSE_HEADER, REASON_HEADER
from .settings import ServiceSettings

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
UNAUTHENTICATED_PATHS = ("/health", "/ready", "/metrics")
# Label values of http_requests_total's `method`: any other method name a client invents counts as
# "other", so nobody can add series to Prometheus by sending requests.
KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def create_service_app(service: str, config=None, *, settings_model: type[ServiceSettings] = ServiceSettings,
                       blueprints=(), api=None) -> Flask:
    """The service's Flask app, its settings read once here (`settings_model`, from `config`
    over the environment over .env; ConfigError names a bad one); `api`
    (healthguard.api.service_api) validates its routes and serves the OpenAPI document generated
    from the same models at /api/v1/openapi.json."""
    settings = settings_model.load(config)
    configure_logging(service, settings.LOG_LEVEL)
    app = _ServiceFlask(service)
    # Flask's and its extensions' own keys (TESTING, say) pass through; the settings do not:
    # code reads them typed, from the Platform.
    app.config.update({name: value for name, value in (config or {}).items()
                       if name not in type(settings).model_fields})
    app.config["MAX_CONTENT_LENGTH"] = settings.MAX_CONTENT_LENGTH
    app.json.sort_keys = False
    CORS(app, origins=[settings.WEB_ORIGIN],
         allow_headers=["Authorization", "Content-Type", "X-CSRF-Token", "X-Request-ID",
                        PURPOSE_HEADER, REASON_HEADER],
         expose_headers=["Location", "X-Request-ID"])
    app.extensions["healthguard"] = Platform(
        service=service,
        settings=settings,
        db=database(settings),
        publisher=broker.Publisher(settings.RABBITMQ_URL),
        rabbitmq_url=settings.RABBITMQ_URL,
        retry=broker.RetryPolicy(max_attempts=settings.MESSAGE_MAX_ATTEMPTS,
                                 first_delay=settings.MESSAGE_RETRY_SECONDS),
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


class _ServiceFlask(Flask):
    json_provider_class = BoundedJSONProvider


def database(settings: ServiceSettings) -> Database:
    """The process's pool, sized and timed by the DB_POOL_* settings."""
    return Database(settings.DATABASE_URL, maxconn=settings.DB_POOL_MAX,
                    idle_seconds=settings.DB_POOL_IDLE_SECONDS, wait_seconds=settings.DB_POOL_WAIT_SECONDS)


def start_web_background(app: Flask) -> None:
    """Start the tasks of one web process (`web_background`). Called per gunicorn worker after
    the fork (post_worker_init), never at import or app creation."""
    for task in app.extensions["healthguard"].web_background:
        task.start()


def stop_web_background(app: Flask) -> None:
    for task in app.extensions["healthguard"].web_background:
        task.stop()


def _register_request_hooks(app: Flask, service: str) -> None:
    @app.before_request
    def start_request():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()
        refuse_unencodable_input()

    @app.after_request
    def finish_request(response):
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule else "unmatched"
        method = request.method if request.method in KNOWN_METHODS else "other"
        metrics.HTTP_REQUESTS.labels(service, method, route, str(response.status_code)).inc()
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
        """Liveness: this process answers. No dependency is asked, so an outage of the database
        never makes anything restart a service that will recover by itself."""
        return {"status": "ok", "service": platform().service}

    @ops.get("/ready")
    @public
    def ready():
        """Readiness: can this service do its job now? 503 names the parts that are down;
        parts in `degrades_without` make it "degraded" (200). The answer is public, so a failure
        is named in a few words and its detail (hosts, ports, driver text) goes to the log."""
        hg = platform()
        # The database part is the pool's state: can it serve a query on a connection it holds
        # (or may still open)? Not "could one more connection be opened", which a full server
        # refuses while every pooled connection still serves.
        probes = {"database": hg.db.ping, "broker": lambda: broker.ping(hg.rabbitmq_url)}
        checks = {}
        for part in hg.dependencies:
            try:
                probes[part]()
                checks[part] = {"status": "up"}
            except Exception as exc:  # any failure means this part cannot serve
                log.warning("readiness check failed", extra={
                    "part": part, "error": f"{type(exc).__name__}: {exc}".strip()[:300]})
                checks[part] = {"status": "down", "error": f"{part} unreachable"}
        down = [part for part, check in checks.items() if check["status"] != "up"]
        unready = [part for part in down if part not in hg.degrades_without]
        status = "unavailable" if unready else "degraded" if down else "ok"
        body = {"status": status, "service": hg.service, "checks": checks}
        if down:
            body["down"] = down
        return body, 503 if unready else 200

    @ops.get("/metrics")
    @public
    def prometheus_metrics():
        payload, content_type = metrics.exposition()
        return Response(payload, content_type=content_type)

    return ops
