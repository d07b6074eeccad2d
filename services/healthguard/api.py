"""Request and response models that validate and document at once (FastAPI's lesson, on Flask).

Each service declares its requests and responses as pydantic v2 models and decorates its routes
with `api.validate(...)`, where `api = service_api(...)` is the service's spectree instance. The
same models refuse bad input and generate the OpenAPI document at /api/v1/openapi.json, so the
two cannot disagree. Views receive the parsed models as keyword arguments (`json`, `query`).

Status policy, the same in every service:
- 400: the request does not match the document (not JSON, a missing field, a wrong type, a value
  out of its range or enum); `field` names the part that is wrong. JSON bodies are read strictly,
  as the document types them: `false` is not 0, `1.0` and `"1"` are not integers, `0.5` is not a
  time; a time is an RFC 3339 string with its offset. Query strings are text, so `?limit=5` is 5.
- 401 no or bad credentials; 403 signed in but not allowed; 404 no such resource.
- 409: the resource's state does not allow it (acknowledging a resolved incident).
- 413 body too large; 429 too many attempts (Retry-After); 503 database or broker not answering.
- 422: well-formed, but it names something that does not exist (an unknown patient, alert type,
  employee or role) or breaks a domain rule (an alarm from the future, a period too long).
Every error has one body: {"error", "message", "status", "request_id", "field"?}.
"""
import datetime
import functools
import json
import logging
import re
from collections.abc import Iterable
from typing import Annotated

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic.functional_validators import AfterValidator
from spectree import Response, SecurityScheme, SpecTree
from spectree.models import SecuritySchemeData
from spectree.plugins.flask_plugin import FlaskPlugin

from .auth import public
from .errors import ApiError

log = logging.getLogger(__name__)

DOCUMENT_PATH = "api/v1"  # the document is served at /api/v1/openapi.json

ERROR_DESCRIPTIONS = {
    400: "the request does not match this document (not JSON, a missing or malformed field); "
         "`field` names it",
    401: "missing or invalid credentials",
    403: "signed in, but not allowed to do this",
    404: "no such resource",
    409: "the resource's current state does not allow this",
    410: "gone: a one-time token or code already used or expired",
    413: "the request body is too large",
    422: "well-formed, but it names something unknown or breaks a rule; `field` names it",
    429: "too many attempts; retry after the Retry-After header's seconds",
    503: "the database or the broker is not answering; retry shortly",
}
# Any authenticated route may answer these.
COMMON_ERRORS = (400, 401, 503)


class ErrorBody(BaseModel):
    """The one error shape every service answers with."""
    model_config = ConfigDict(extra="allow", title="Error")

    error: str = Field(description="the HTTP reason phrase")
    message: str = Field(description="what is wrong, for a person")
    status: int = Field(ge=400, le=599)
    request_id: str | None = Field(None, description="the X-Request-ID of this request")
    field: str | None = Field(None, description="the request field or parameter that is wrong")


class RequestModel(BaseModel):
    """Base of request bodies and query strings: unknown fields are ignored (a device may send
    more than we read), and text is stripped of surrounding blanks. A JSON body is validated in
    pydantic's strict JSON mode (`_DocumentedRoutes.request_validation`): no type is coerced."""
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class ResponseModel(BaseModel):
    """Base of responses: documents what we answer; extra keys are allowed so a new field is
    not a breaking change."""
    model_config = ConfigDict(extra="allow")


# PostgreSQL text cannot hold NUL, and UTF-8 cannot hold a lone surrogate (JSON's "\ud800"):
# pydantic refuses the surrogate in any str, the patterns below refuse NUL, and
# refuse_unencodable_input refuses both in paths and query strings. Request text is stripped of
# surrounding blanks before its limits are checked, so a required text must hold one character
# that is not blank: without this pattern, "  " would match the document (minLength 1) and still
# be refused.
NO_NUL = r"^[^\x00]*$"
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"

# How deep a request's JSON may nest. Our bodies are two levels deep; a parser's recursion is not
# (json's C scanner raises RecursionError around 1,000), so depth is counted before parsing.
MAX_JSON_DEPTH = 32
# One left-to-right pass: a string (its closing quote optional, so an unterminated one ends the
# text instead of being retried from each quote inside it) or a bracket.
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)
# A NUL, or a UTF-16 surrogate, which Python may hold alone (a path or query parameter decoded
# with surrogateescape, JSON's "\ud800").
_UNENCODABLE = re.compile("[\x00\ud800-\udfff]")


class JsonTooDeep(ValueError):
    """A JSON text nested deeper than MAX_JSON_DEPTH (a ValueError, as json's own errors are)."""


def json_depth(text: str | bytes, *, stop_above: int = MAX_JSON_DEPTH) -> int:
    """The deepest nesting of arrays and objects in a JSON text, counted without parsing it (in
    linear time, outside strings). Counting stops once it passes `stop_above`."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    depth = deepest = 0
    for part in _JSON_TOKENS.findall(text):
        if part[0] == '"':
            continue
        depth += 1 if part in "[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > stop_above:
                break
    return deepest


def loads_bounded(text: str | bytes, **kwargs):
    """json.loads, refusing (JsonTooDeep) a text nested deeper than MAX_JSON_DEPTH."""
    if json_depth(text) > MAX_JSON_DEPTH:
        raise JsonTooDeep(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return json.loads(text, **kwargs)


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, reading no text nested deeper than MAX_JSON_DEPTH: every `request.get_json`
    (spectree's included) goes through it, so no parser recursion is reachable from a request."""

    def loads(self, s, **kwargs):
        return loads_bounded(s, **kwargs)


def refuse_unencodable_input() -> None:
    """A before_request check of every route: a NUL byte or a lone surrogate in the path or a
    query parameter, or a JSON body nested too deep, is a 400 before any view, model or SQL sees
    it (PostgreSQL refuses NUL in text, and a surrogate cannot be encoded to send it). Body text
    is the models' to check: `Text` refuses NUL, and pydantic refuses a lone surrogate in any str."""
    if _UNENCODABLE.search(request.path):
        raise ApiError(400, "the path holds a NUL byte or an invalid character", field="path")
    for name, value in request.args.items(multi=True):
        if _UNENCODABLE.search(name) or _UNENCODABLE.search(value):
            raise ApiError(400, "a query parameter holds a NUL byte or an invalid character",
                           field="query" if _UNENCODABLE.search(name) else name)
    if request.is_json and json_depth(request.get_data(cache=True)) > MAX_JSON_DEPTH:
        raise ApiError(400, f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels")


def Text(max_length: int, *, min_length: int = 1, pattern: str | None = None):  # noqa: N802 (a type)
    """A required-shape string with limits, e.g. `note: Text(2000)`; by default without NUL and,
    when min_length > 0, not blank."""
    if pattern is None:
        pattern = NOT_BLANK if min_length > 0 else NO_NUL
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length,
                                            pattern=pattern, strict=True)]


def _in_utc(value: datetime.datetime) -> datetime.datetime:
    """PostgreSQL takes UTC offsets up to 15:59, Python up to 23:59: timestamps go in as UTC.
    The few hours at the ends of the calendar that Python cannot express in UTC clamp to its ends."""
    try:
        return value.astimezone(datetime.UTC)
    except OverflowError:
        end = datetime.datetime.min if value.year == 1 else datetime.datetime.max
        return end.replace(tzinfo=datetime.UTC)


# RFC 3339's date-time (its section 5.6): what the document's `format: date-time` promises. pydantic
# alone would also take a number (seconds since 1970), a space for the T, and a date alone.
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)", re.ASCII)


def _rfc3339(value):
    """Parsed here rather than by pydantic: after a validator of ours, pydantic's strict mode
    would take the text as a Python str, which is no datetime."""
    if isinstance(value, datetime.datetime):  # built in code, not read from a request
        return value
    if isinstance(value, str) and _RFC3339.fullmatch(value):
        try:
            return datetime.datetime.fromisoformat(value.upper())
        except ValueError:
            pass  # a 13th month, a 61st second...
    raise ValueError("must be an RFC 3339 datetime with its timezone offset, e.g. 2026-02-01T10:15:00Z")


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_in_utc),
                      Field(description="RFC 3339 date-time with a UTC offset, e.g. 2026-02-01T10:15:00Z")]
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]


def responses(ok: dict | None = None, errors: Iterable[int] = (), *, public_route: bool = False) -> Response:
    """A route's documented responses: `ok` maps success codes to models (or None for an empty
    body), `errors` adds codes to the common ones."""
    codes = set(errors) | (set() if public_route else set(COMMON_ERRORS))
    entries = {f"HTTP_{code}": model for code, model in (ok or {}).items()}
    for code in sorted(codes):
        entries[f"HTTP_{code}"] = (ErrorBody, ERROR_DESCRIPTIONS[code])
    return Response(**entries)


def _refuse_invalid_request(req, resp, error, instance, model_adapter):
    """spectree's `before` hook: a request the models refuse becomes our 400 error body."""
    if error is None:
        return
    problems = error.errors(include_context=False)
    first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
    field = ".".join(str(part) for part in first.get("loc", ()))
    message = f"{field}: {first['msg']}" if field else first["msg"]
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more)"
    raise ApiError(400, message, **({"field": field} if field else {}))


def _log_invalid_response(req, resp, error, instance, model_adapter):
    """spectree's `after` hook: a response that breaks its own document is our bug; it answers
    500 and is logged, so tests (and schemathesis) see it."""
    if error is not None:
        log.error("response does not match the API document",
                  extra={"path": req.path, "error": str(error)[:500]})


class ServiceApi(SpecTree):
    """One service's validator and document."""

    def validate(self, *, json=None, body_optional: bool = False, **kwargs):
        """spectree's validate, plus: a route with a JSON body refuses a body that is not a JSON
        object (spectree would read it as {}), unless the body is optional and empty."""
        decorate = super().validate(json=json, **kwargs)

        def decorator(view):
            validated = decorate(view)
            if json is None:
                return validated

            @functools.wraps(validated)
            def wrapper(*args, **kw):
                if not (body_optional and not request.get_data()):
                    _require_json_object()
                return validated(*args, **kw)
            wrapper.hg_body_optional = body_optional
            return wrapper
        return decorator

    def _generate_spec(self) -> dict:
        """spectree documents every request body as required: say which ones are optional."""
        spec = super()._generate_spec()
        for route in self.backend.find_routes():
            for method, view in self.backend.parse_func(route):
                path, _ = self.backend.parse_path(route, None)
                operation = spec["paths"].get(path, {}).get(method.lower())
                if operation and getattr(view, "hg_body_optional", False):
                    operation["requestBody"]["required"] = False
        return spec

    def register(self, app: Flask):
        super().register(app)
        # The document is public, like /health.
        for endpoint, view in app.view_functions.items():
            if endpoint.startswith(f"openapi_{DOCUMENT_PATH}"):
                app.view_functions[endpoint] = public(view)


class _DocumentedRoutes(FlaskPlugin):
    """spectree leaves out every route under the document's folder (/api/v1), which is where all
    our routes live: leave out only the document itself."""

    def find_routes(self):
        for rule in self.get_current_app().url_map.iter_rules():
            if not (rule.endpoint == "static" or rule.endpoint.startswith("openapi")
                    or getattr(rule, "websocket", False)):
                yield rule

    def request_validation(self, request, query, json, form, headers, cookies):
        """spectree's validation, but a JSON body in pydantic's strict JSON mode: the types the
        document states, no coercion (spectree validates the parsed body leniently, which takes
        `false` as 0 and 0.5 as a time). Query strings stay lenient: they are text."""
        super().request_validation(request, query, None, form, headers, cookies)
        if json is not None and request.method not in ("GET", "DELETE") \
                and request.mimetype not in self.FORM_MIMETYPE:
            body = _integral_numbers_as_integers(request.get_data(cache=True) or b"{}")
            request.context = request.context._replace(json=json.model_validate_json(body, strict=True))

    def parse_path(self, route, path_parameter_descriptions):
        """Flask's <int:...> matches no minus sign and our ids are bigint: not spectree's int32."""
        path, parameters = super().parse_path(route, path_parameter_descriptions)
        for parameter in parameters:
            if parameter["schema"] == {"type": "integer", "format": "int32"}:
                parameter["schema"] = {"type": "integer", "format": "int64", "minimum": 0}
        return path, parameters


def _integral_number(text: str) -> int | float:
    number = float(text)
    return int(number) if number.is_integer() else number


def _integral_numbers_as_integers(body: bytes) -> str:
    """The JSON text with every number that has no fraction written as an integer (`3.0` as 3):
    JSON Schema's `integer` is any number without a fraction, and strict validation takes only
    JSON's integer form. `false`, `"3"` and `3.5` stay what they are, and are refused."""
    return json.dumps(loads_bounded(body, parse_float=_integral_number))


def _require_json_object() -> None:
    if not request.is_json:
        raise ApiError(400, "the request body must be JSON (Content-Type: application/json)")
    if not isinstance(request.get_json(silent=True), dict):
        raise ApiError(400, "the request body must be a JSON object")


def service_api(title: str, description: str) -> ServiceApi:
    """The spectree instance of a service; `create_service_app(..., api=api)` registers it."""
    return ServiceApi(
        "flask", backend=_DocumentedRoutes,
        title=title, description=description, version="1.0.0",
        path=DOCUMENT_PATH, filename="openapi.json", mode="strict",
        page_templates={},  # the JSON document only; no UI pages pulling scripts from a CDN
        validation_error_status=400, validation_error_model=ErrorBody,
        before=_refuse_invalid_request, after=_log_invalid_response,
        security_schemes=[
            SecurityScheme(name="bearerAuth", data=SecuritySchemeData(
                type="http", scheme="bearer",
                description="a session token from POST /api/v1/auth/login, or the service token. "
                            "The web UI sends its session as the HttpOnly cookie hg_session "
                            "instead, with X-CSRF-Token on every method but GET, HEAD and "
                            "OPTIONS")),
            SecurityScheme(name="deviceApiKey", data=SecuritySchemeData(
                type="apiKey", name="X-API-Key", field_in="header",
                description="a bedside device's key")),
        ],
        security={"bearerAuth": []},
        annotations=True,
        # Components named as the models are (unique within a service), not with a hash.
        naming_strategy=lambda model: model.__name__,
        nested_naming_strategy=lambda _parent, child: child,
    )


# Per-route security values for `api.validate(security=...)`.
PUBLIC = {}
DEVICE_KEY = {"deviceApiKey": []}
DEVICE_KEY_OR_SESSION = [{"deviceApiKey": []}, {"bearerAuth": []}]


def _split_commas(value):
    values = [value] if isinstance(value, str) else value
    if isinstance(values, list) and all(isinstance(raw, str) for raw in values):
        return [part.strip() for raw in values for part in raw.split(",") if part.strip()]
    return value


def QueryList(item):  # noqa: N802 (a type)
    """A query parameter given several times (?severity=HIGH&severity=LOW) or comma-separated
    (?severity=HIGH,LOW, as the web UI sends it): a list of `item` either way."""
    return Annotated[list[item], BeforeValidator(_split_commas),
                     Field(description="repeated, or comma-separated")]
