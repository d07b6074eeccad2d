"""JSON errors: no route ever answers an HTML page or a stack trace."""
import logging

import psycopg2
from flask import g, jsonify
from werkzeug.exceptions import HTTPException

from .db import PoolTimeout

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the caller can act on: `raise ApiError(409, "already acknowledged", status=...)`."""

    def __init__(self, status: int, message: str, **details):
        super().__init__(message)
        self.status, self.message, self.details = status, message, details


def error_response(status: int, error: str, message: str, **details):
    body = {"error": error, "message": message, "status": status, **details}
    request_id = g.get("request_id")
    if request_id:
        body["request_id"] = request_id
    return jsonify(body), status


def register_error_handlers(app) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        from http import HTTPStatus
        response = error_response(exc.status, HTTPStatus(exc.status).phrase, exc.message, **exc.details)
        if "retry_after_seconds" in exc.details:  # 429 and 503 say when to come back
            response[0].headers["Retry-After"] = str(exc.details["retry_after_seconds"])
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        response = error_response(exc.code or 500, exc.name, exc.description or exc.name)
        if exc.code == 405 and exc.valid_methods:
            response[0].headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(PoolTimeout)
    def every_connection_busy(exc):
        # This process's share of the database's connections stayed busy for the whole wait
        # (DB_POOL_WAIT_SECONDS): answer now rather than queue without bound.
        log.error("no database connection free", extra={"error": str(exc)})
        response = error_response(503, "Service Unavailable",
                                  "every database connection is busy; retry shortly")
        response[0].headers["Retry-After"] = "1"
        return response

    @app.errorhandler(psycopg2.OperationalError)
    @app.errorhandler(psycopg2.InterfaceError)
    def database_unavailable(exc):
        log.error("database unavailable", extra={"error": repr(exc)})
        return error_response(503, "Service Unavailable", "the database is not answering; retry shortly")

    @app.errorhandler(psycopg2.DataError)
    def value_refused_by_database(exc):
        # The last line of defence: the models should refuse any value PostgreSQL cannot hold
        # (an out-of-range number or date, an invalid text). One that slips through is the
        # caller's bad input, not an outage; it is logged so the model can be tightened.
        log.error("database refused a value the models let through", extra={
            "pgcode": exc.pgcode, "error": str(exc).strip()[:300]})
        return error_response(400, "Bad Request", "a value in the request is out of range or invalid")

    @app.errorhandler(Exception)
    def unexpected(exc):
        log.exception("unhandled error")
        return error_response(500, "Internal Server Error", "internal error; it has been logged")
