"""The hospital's vocabularies and the rules and constants written on them are defined once for the
services, in healthguard/domain.py, and mirrored once for the browser, in web-ui/src/domain.js.
These tests fail when a copy differs: the browser's module as node evaluates it, the database's
CHECK constraints, its deadline rule (next_deadline(), which stays in SQL: every UPDATE that moves
an incident computes it) and list order, and its NOTIFY channels; and when a name of domain.py is
defined a second time anywhere in services/ or web-ui/src."""
import json
import re
import shutil
import subprocess

import pytest

from healthguard import domain
from tests.support import REPO

PYTHON_VALUES = {name: json.loads(json.dumps(value)) for name, value in vars(domain).items()
                 if name.isupper() and isinstance(value, (tuple, dict, int, str))}

# Not the browser's: it decides no permission (the server answers allowed_actions per user) and no
# deadline (the server sends ack_deadline), and never meets a database channel or the simulator.
SERVICES_ONLY = {"ACTIONS", "DEADLINE_TIMEOUTS", "DEADLINE_STATUSES", "SEVERITY_WEIGHTS",
                 "OUTBOX_WAKE_CHANNEL", "HL7_STATUS_WAKE_CHANNEL", "CLINICIAN_AVAILABLE_CHANNEL"}


def browser_values() -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed to read web-ui/src/domain.js (scripts/bootstrap.sh installs it)")
    module = (REPO / "web-ui" / "src" / "domain.js").as_uri()
    script = (f"import * as domain from {json.dumps(module)}; console.log(JSON.stringify("
              "Object.fromEntries(Object.entries(domain).filter(([, v]) => typeof v !== 'function'))));")
    result = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True,
                            text=True, timeout=30, check=True)
    return json.loads(result.stdout)


def test_the_web_ui_has_the_same_lists_and_constants_as_the_services():
    browser = browser_values()
    assert {"SEVERITIES", "INCIDENT_STATUSES", "AVAILABILITIES", "ALERTING_EVENTS",
            "WS_CLOSE_SESSION_ENDED", "WS_CLOSE_TOO_MANY_SOCKETS"} <= set(browser)
    # The actions it has words for are the ones the server may offer, in its order.
    assert browser.pop("ACTION_NAMES") == list(domain.ACTIONS)
    assert browser == {name: value for name, value in PYTHON_VALUES.items() if name not in SERVICES_ONLY}


def test_the_rules_are_written_on_the_vocabularies():
    statuses, actions = set(domain.INCIDENT_STATUSES), domain.ACTIONS
    assert all(set(allowed) <= statuses for allowed in actions.values())
    assert set(domain.TAKEN_ON_STATUSES) <= set(domain.ACTIVE_INCIDENT_STATUSES)
    assert set(domain.DEADLINE_STATUSES) <= set(domain.ACTIVE_INCIDENT_STATUSES)
    assert set(domain.UNACKNOWLEDGED_STATUSES) <= set(domain.DEADLINE_STATUSES)
    assert list(domain.SEVERITY_WEIGHTS) == list(domain.SEVERITIES)
    assert domain.ALERTING_EVENTS == tuple(f"INCIDENT_{what}" for what in (
        "ASSIGNED", "REASSIGNED", "ESCALATED", "REPAGED"))


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
    assert check_values(db, "incidents", "status") == PYTHON_VALUES["INCIDENT_STATUSES"]
    assert check_values(db, "alert_types", "severity") == PYTHON_VALUES["SEVERITIES"]
    assert check_values(db, "escalation_policies", "severity") == PYTHON_VALUES["SEVERITIES"]
    assert check_values(db, "employees", "availability") == PYTHON_VALUES["AVAILABILITIES"]


def function_source(db, name: str) -> str:
    with db.transaction() as cur:
        cur.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", (name,))
        [row] = cur.fetchall()
    return row["prosrc"]


def test_the_databases_deadline_rule_and_list_order_are_domains(db):
    # next_deadline(): WHEN status IN (...) | = '...' THEN at + make_interval(secs => p.<column>).
    clause = r"WHEN status (IN \([^)]*\)|= '[A-Z_]+') THEN at \+ make_interval\(secs => p\.(\w+)\)"
    clauses = re.findall(clause, function_source(db, "next_deadline"))
    assert clauses, "next_deadline() is not in the shape this test reads"
    deadlines = {status: column for statuses, column in clauses
                 for status in re.findall(r"'([A-Z_]+)'", statuses)}
    assert deadlines == domain.DEADLINE_TIMEOUTS
    # The list's order: those waiting for an acknowledgement (or an owner) before those taken on.
    priority = function_source(db, "incident_list_priority")
    [waiting] = re.findall(r"WHEN status IN \(([^)]*)\) THEN 0", priority)
    assert re.findall(r"'([A-Z_]+)'", waiting) == [
        s for s in domain.ACTIVE_INCIDENT_STATUSES if s not in domain.TAKEN_ON_STATUSES]


def test_the_outbox_relay_listens_on_domains_channel():
    from healthguard import outbox
    assert outbox.OUTBOX_WAKE_CHANNEL is domain.OUTBOX_WAKE_CHANNEL
    source = (REPO / "services" / "healthguard" / "outbox.py").read_text()
    assert '"LISTEN " + OUTBOX_WAKE_CHANNEL' in source and 'NOTIFY " + OUTBOX_WAKE_CHANNEL' in source


def test_the_databases_notify_channels_are_domains(db):
    available = function_source(db, "notify_clinician_available")
    assert f"pg_notify('{domain.CLINICIAN_AVAILABLE_CHANNEL}'" in available
    assert f"pg_notify('{domain.HL7_STATUS_WAKE_CHANNEL}'" in function_source(db, "queue_hl7_status_report")


def test_every_name_of_the_contract_is_defined_once():
    """grep finds one definition of each: no module of services/ or web-ui/src assigns a name of
    domain.py at its top level, nor writes a close code as a number."""
    defined = re.compile(r"^(?:export\s+)?(?:const\s+|let\s+)?(" + "|".join(PYTHON_VALUES) + r")\s*=", re.M)
    codes = re.compile(rf"\b(?:{domain.WS_CLOSE_SESSION_ENDED}|{domain.WS_CLOSE_TOO_MANY_SOCKETS})\b")
    contract = {REPO / "services" / "healthguard" / "domain.py", REPO / "web-ui" / "src" / "domain.js"}
    sources = [*(REPO / "services").rglob("*.py"),
               *(path for pattern in ("*.js", "*.jsx") for path in (REPO / "web-ui" / "src").rglob(pattern))]
    twice = []
    for path in sources:
        if path in contract or "__tests__" in path.parts:
            continue
        text = path.read_text()
        twice += [f"{path.relative_to(REPO)}: {name}" for name in defined.findall(text)]
        twice += [f"{path.relative_to(REPO)}: close code {code}"
                  for code in codes.findall(re.sub(r"#.*|//.*", "", text))]
    assert twice == []
