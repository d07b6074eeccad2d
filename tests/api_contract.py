"""The API contract of a service, checked the same way for each: its OpenAPI document is valid,
lists every route, and schemathesis (in-process, over WSGI) finds no schema-valid request refused
and no answer that breaks the document.

Usage in a service's tests: `run_contract(app, headers=lambda: {...})`, the headers computed
per request (a fresh session each time, so a call that signs out does not spoil the next).

schemathesis' own pytest integration (`from_fixture(...).parametrize()`) does not run under
pytest 9 (it reads a node attribute pytest 9 removed), so the operations are driven here with
hypothesis directly; one test per service reports every operation that failed.
"""
import re
from collections.abc import Callable

import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

DOCUMENT_URL = "/api/v1/openapi.json"
UNDOCUMENTED = {"/health", "/ready", "/metrics"}  # operational routes, not the API

# A schema-valid request may still name something that does not exist (404, 422) or hit a state
# or a permission rule (403, 409): the domain's answers, not a refusal of valid data. A 400 is.
ACCEPTED_FOR_VALID_DATA = ["2xx", "401", "403", "404", "409", "422", "429"]

CONFIG = SchemathesisConfig.from_dict({
    "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED_FOR_VALID_DATA}},
})

# Bounded and reproducible: every run sends the same requests; a few dozen per operation keep a
# service's run within a minute on a small machine.
CONTRACT_SETTINGS = settings(max_examples=20, derandomize=True, deadline=None, database=None,
                             suppress_health_check=list(HealthCheck))


CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance,
          positive_data_acceptance]


def app_operations(app) -> set[tuple[str, str]]:
    """(METHOD, path) of every route the app serves, spelled as OpenAPI does
    (/api/v1/alerts/<int:alert_id> is /api/v1/alerts/{alert_id})."""
    return {(method, re.sub(r"<(?:[^<>]+:)?([^<>:]+)>", r"{\1}", rule.rule))
            for rule in app.url_map.iter_rules() if rule.endpoint != "static"
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def document_of(app) -> dict:
    answer = app.test_client().get(DOCUMENT_URL)
    assert answer.status_code == 200
    return answer.get_json()


def assert_document_is_valid_and_complete(app) -> dict:
    """The document passes openapi-spec-validator and lists every route the app serves, but the
    operational ones; returns it."""
    document = document_of(app)
    validate(document)
    documented = {(method.upper(), path) for path, item in document["paths"].items()
                  for method in item if method in ("get", "post", "put", "patch", "delete")}
    served = {(method, path) for method, path in app_operations(app)
              if path not in UNDOCUMENTED and path != DOCUMENT_URL}
    assert served == documented
    return document


def run_contract(app, *, headers: Callable[[], dict], modes=tuple(GenerationMode)) -> int:
    """Every operation of the app's document, with schema-valid and (for the status codes)
    schema-invalid requests, called in-process; fails listing every operation that broke a check.
    Returns how many operations ran."""
    schema = schemathesis.openapi.from_wsgi(DOCUMENT_URL, app, config=CONFIG)
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in modes:
            @CONTRACT_SETTINGS
            @given(case=operation.as_strategy(generation_mode=mode))
            def honours_the_document(case):
                case.call_and_validate(checks=CHECKS, headers=headers())

            try:
                honours_the_document()
            except (Exception, BaseExceptionGroup) as exc:  # every operation's, not only the first
                failures.append(f"--- {operation.label} ({mode.value} data)\n{exc}")
    assert not failures, "\n\n".join(failures)
    return operations
