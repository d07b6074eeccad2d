"""The hospital's vocabularies (severities, incident statuses, availabilities) are written once for
the services, in healthguard/domain.py, and once for the browser, in web-ui/src/domain.js. These
tests fail when the copies differ: the browser's module as node evaluates it, and the database's
CHECK constraints."""
import json
import re
import shutil
import subprocess

import pytest

from healthguard import domain
from tests.support import REPO

PYTHON_LISTS = {name: list(value) for name, value in vars(domain).items()
                if name.isupper() and isinstance(value, tuple)}


def browser_lists() -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed to read web-ui/src/domain.js (scripts/bootstrap.sh installs it)")
    module = (REPO / "web-ui" / "src" / "domain.js").as_uri()
    script = f"import * as domain from {json.dumps(module)}; console.log(JSON.stringify(domain));"
    result = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True,
                            text=True, timeout=30, check=True)
    return json.loads(result.stdout)


def test_the_web_ui_has_the_same_lists_as_the_services():
    assert {"SEVERITIES", "INCIDENT_STATUSES", "AVAILABILITIES"} <= set(PYTHON_LISTS)
    assert browser_lists() == PYTHON_LISTS


def check_values(db, table: str, column: str) -> list[str]:
    """The values a CHECK constraint of `table` allows for `column` (column IN (...))."""
    with db.transaction() as cur:
        cur.execute("""
            SELECT pg_get_constraintdef(oid) AS definition FROM pg_constraint
            WHERE conrelid = %s::regclass AND contype = 'c'""", (table,))
        for row in cur.fetchall():
            if f"({column} = ANY" in row["definition"]:
                return re.findall(r"'([A-Z_]+)'::text", row["definition"])
    raise AssertionError(f"no CHECK constraint on {table}.{column}")


def test_the_database_allows_exactly_the_same_values(db):
    assert check_values(db, "incidents", "status") == PYTHON_LISTS["INCIDENT_STATUSES"]
    assert check_values(db, "alert_types", "severity") == PYTHON_LISTS["SEVERITIES"]
    assert check_values(db, "escalation_policies", "severity") == PYTHON_LISTS["SEVERITIES"]
    assert check_values(db, "employees", "availability") == PYTHON_LISTS["AVAILABILITIES"]
