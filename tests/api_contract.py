"""The API contract every service keeps (issue 8): its OpenAPI document, generated from the
models that validate, is a valid document that names every route the service serves, and
schemathesis finds no schema-valid request refused and no answer that breaks the document.

Used by each service's tests with the app built in-process (WSGI) on the run's database."""
import re
from collections import defaultdict
from collections.abc import Callable

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

DOCUMENT = "/api/v1/openapi.json"
# Served, but not API operations: probes, metrics and the document itself.
UNDOCUMENTED = frozenset({"/health", "/ready", "/metrics", DOCUMENT})
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, positive_data_acceptance]
# What a schema-valid request may be answered besides success: a domain rule (403 not yours, 404
# no such id, 409 not in this status, 422 names something unknown). Never 400.
DOMAIN_REFUSALS = ["2xx", "401", "403", "404", "409", "422", "429"]


def _openapi_path(rule: str) -> str:
    """Flask's /api/v1/incidents/<int:incident_id> is OpenAPI's /api/v1/incidents/{incident_id}."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def served_operations(app, *, also_undocumented=()) -> set[tuple[str, str]]:
    """(METHOD, path) of every route the app serves that belongs in its document."""
    skip = UNDOCUMENTED | set(also_undocumented)
    return {(method, _openapi_path(rule.rule))
            for rule in app.url_map.iter_rules() if rule.endpoint != "static" and rule.rule not in skip
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def documented_operations(document: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items()
            for method in item if method in ("get", "post", "put", "patch", "delete")}


def checked_document(app, *, also_undocumented=()) -> dict:
    """The document the app serves, after checking it is valid OpenAPI and names every route."""
    answer = app.test_client().get(DOCUMENT)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    document = answer.get_json()
    validate(document)
    assert documented_operations(document) == served_operations(app, also_undocumented=also_undocumented)
    return document


def fuzz(app, *, headers: dict | Callable[[], dict], known_ids: dict[str, list] | None = None,
         max_examples: int = 20) -> dict[str, set[int]]:
    """Run schemathesis (positive data) against every operation of the app's document, with the
    checks above; returns the statuses each operation answered, so a caller can check that the
    run reached past the refusals. A generated id hardly ever names a row, so half the cases take
    a path parameter named in `known_ids` from its list instead (still schema-valid). `headers`
    may be a function giving each call its own (a fresh session, where a call may sign out)."""
    config = SchemathesisConfig.from_dict({
        "checks": {"positive_data_acceptance": {"expected-statuses": DOMAIN_REFUSALS}},
    })
    schema = schemathesis.openapi.from_wsgi(DOCUMENT, app, config=config)
    known_ids = known_ids or {}
    answered: dict[str, set[int]] = defaultdict(set)
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(), data=st.data())
        @settings(max_examples=max_examples, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def conforms(case, data):
            for name, ids in known_ids.items():
                if name in (case.path_parameters or {}) and data.draw(st.booleans(), label=f"known {name}"):
                    case.path_parameters[name] = data.draw(st.sampled_from(ids), label=name)
            response = case.call_and_validate(headers=headers() if callable(headers) else headers,
                                              checks=CHECKS)
            answered[case.operation.label].add(response.status_code)

        conforms()
    return answered
