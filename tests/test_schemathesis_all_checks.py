"""schemathesis, as the red team ran it (issue 17, finding 10): its command line against each of
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
def services(module_service_env):
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
def test_schemathesis_with_every_check_finds_nothing(name, services, supervisor_token, tmp_path):
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color", "run",
               f"{services[name].url}/api/v1/openapi.json", "--checks", "all", "--mode", "all",
               "--max-examples", "15", "--generation-deterministic", "--workers", "1",
               "--request-timeout", "10", "--suppress-health-check", "all",
               "-H", f"Authorization: Bearer {supervisor_token}", "-H", f"X-API-Key: {DEVICE_KEY}",
               *(option for path in EXCLUDED_PATHS.get(name, ()) for option in ("--exclude-path", path))]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-20000:]
    assert "No issues found" in output or " passed" in output, output[-5000:]
