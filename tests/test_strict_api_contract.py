"""Request bodies are read as strictly as the documents type them (issue 17, finding 10).

schemathesis, as the red team ran it: its command line against each of
the four services under gunicorn, every check (`--checks all`) and both kinds of data (schema-valid
and schema-invalid, `--mode all`), with a supervising doctor's session and a device key. The run
must find no 5xx and nothing that breaks the documents: a schema-invalid request (`false` for an
integer, `0.5` for a time) refused, a schema-valid one accepted or refused only for a domain rule.

The per-service `fuzz` tests (tests/api_contract.py) run in-process with known ids; this one runs
the tool itself, over HTTP, with its own phases (examples, coverage, stateful, fuzzing)."""
import subprocess
import sys

import pytest

from healthguard.auth import new_session_token, token_hash
from tests.support import DEVICE_KEY, SERVICE_MODULES, ServiceProcess

pytestmark = pytest.mark.module_database

# What a schema-valid request may be answered besides success (tests/api_contract.py).
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]
"""
# Signing out would end the session the run uses; what it answers is checked in-process.
EXCLUDED_PATHS = {"oncall": ("/api/v1/auth/logout",)}


@pytest.fixture(scope="module")
def api_servers(module_service_env):
    """Every service's web process (no background tasks), incident management asking the on-call
    one: name (SERVICE_MODULES) -> ServiceProcess."""
    started = {}
    try:
        started["oncall"] = ServiceProcess("oncall", module_service_env, background=False).start()
        for name in sorted(set(SERVICE_MODULES) - {"oncall"}):
            started[name] = ServiceProcess(name, {**module_service_env, "ONCALL_URL": started["oncall"].url},
                                           background=False).start()
        yield started
    finally:
        for service in started.values():
            service.stop()


@pytest.fixture
def supervisor_token(db):
    token = new_session_token()
    with db.transaction() as cur:
        cur.execute("INSERT INTO sessions (employee_id, token_hash, expires_at) "
                    "VALUES ('D01', %s, now() + interval '1 hour')", (token_hash(token),))
    return token


@pytest.mark.parametrize("name", sorted(SERVICE_MODULES))
def test_schemathesis_with_every_check_finds_nothing(name, api_servers, supervisor_token, tmp_path):
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color", "run",
               f"{api_servers[name].url}/api/v1/openapi.json", "--checks", "all", "--mode", "all",
               "--max-examples", "15", "--generation-deterministic", "--workers", "1",
               "--request-timeout", "10", "--suppress-health-check", "all",
               "-H", f"Authorization: Bearer {supervisor_token}", "-H", f"X-API-Key: {DEVICE_KEY}",
               *(option for path in EXCLUDED_PATHS.get(name, ()) for option in ("--exclude-path", path))]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-20000:]
    assert "No issues found" in output or " passed" in output, output[-5000:]


def test_json_bodies_are_read_strictly_and_times_only_as_rfc_3339(apps, supervisor_token):
    """What schemathesis flagged: `false` taken as 0 and 0.5 as a time. A body's value must be of
    the type the document states; a number without a fraction is an integer (JSON Schema's rule)."""
    auth = {"Authorization": f"Bearer {supervisor_token}"}
    notifications = apps["notification"].test_client()
    for wrong in (False, True, "3", 0.5, [3], {"id": 3}):
        answer = notifications.post("/api/v1/notifications/read-all", json={"up_to_id": wrong}, headers=auth)
        assert answer.status_code == 400, (wrong, answer.get_json())
        assert answer.get_json()["field"] == "up_to_id"
    for right in (3, 3.0):
        answer = notifications.post("/api/v1/notifications/read-all", json={"up_to_id": right}, headers=auth)
        assert answer.status_code == 200, (right, answer.get_json())

    ingestion = apps["alert-ingestion"].test_client()
    for wrong in (0.5, 1767225600, "2026-02-01 10:15:00Z", "2026-02-01", "2026-02-01T10:15:00",
                  "2026-02-01T10:15:60Z", True):
        answer = ingestion.post("/api/v1/alerts/manual", json={"occurred_at": wrong}, headers=auth)
        assert answer.status_code == 400, (wrong, answer.get_json())
        assert answer.get_json()["field"] == "occurred_at"
        assert "RFC 3339" in answer.get_json()["message"]
    answer = ingestion.get("/api/v1/alerts", query_string={"since": "0.5"}, headers=auth)
    assert answer.status_code == 400 and answer.get_json()["field"] == "since"
    # Query strings are text: a number there is read as one.
    answer = notifications.get("/api/v1/notifications", query_string={"limit": "5", "unread": "false"},
                               headers=auth)
    assert answer.status_code == 200, answer.get_json()
