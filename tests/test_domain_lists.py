"""The hospital's vocabularies and the rules and constants written on them are defined once for the
services, in healthguard/domain.py, and mirrored once for the browser, in web-ui/src/domain.js.
These tests fail when a copy differs: the browser's module as node evaluates it, the database's
CHECK constraints, its deadline rule (next_deadline(), which stays in SQL: every UPDATE that moves
an incident computes it) and list order, and its NOTIFY channels; and when a name of domain.py is
defined a second time anywhere in services/ or web-ui/src, or its value written out in its place
(a close code, a WebSocket frame type, a queue or exchange name)."""
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
# deadline (the server sends ack_deadline), never meets a database channel, a queue, an exchange or
# the simulator, and does not act on error frames (they answer a frame it never sends).
SERVICES_ONLY = {"ACTIONS", "DEADLINE_TIMEOUTS", "DEADLINE_STATUSES", "SEVERITY_WEIGHTS",
                 "OUTBOX_WAKE_CHANNEL", "HL7_STATUS_WAKE_CHANNEL", "CLINICIAN_AVAILABLE_CHANNEL",
                 "NOTIFICATIONS_QUEUE", "PUSH_EXCHANGE", "ALERT_LANES", "WS_FRAME_ERROR"}
FRAME_TYPES = {value for name, value in PYTHON_VALUES.items() if name.startswith("WS_FRAME_")}


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
            "WS_CLOSE_SESSION_ENDED", "WS_CLOSE_TOO_MANY_SOCKETS", "WS_FRAME_NOTIFICATION",
            "WS_FRAME_INCIDENT_UPDATED", "WS_FRAME_PING", "WS_FRAME_PONG", "WS_FRAME_MORE",
            "WS_FRAME_RESUME"} <= set(browser)
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
    assert domain.ALERT_LANES == tuple(domain.alert_lane(severity) for severity in domain.SEVERITIES)
    assert len(set(domain.ALERT_LANES) | {domain.NOTIFICATIONS_QUEUE}) == len(domain.SEVERITIES) + 1
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


def test_the_broker_and_the_hub_use_domains_names():
    from healthguard import broker
    assert broker.NOTIFICATIONS_QUEUE is domain.NOTIFICATIONS_QUEUE
    assert broker.ALERT_LANES is domain.ALERT_LANES and broker.alert_lane is domain.alert_lane
    # Every frame type the hub sends or answers, and only those, is one of domain.py's.
    hub = (REPO / "services" / "notification" / "hub.py").read_text()
    used = set(re.findall(r"\b(WS_FRAME_\w+)\b", hub))
    assert used == {name for name in PYTHON_VALUES if name.startswith("WS_FRAME_")}
    # WEBSOCKET.md documents each of them.
    documented = (REPO / "services" / "notification" / "WEBSOCKET.md").read_text()
    assert all(f"| `{frame}` |" in documented for frame in FRAME_TYPES)


# A value written out where a name of domain.py belongs: a frame type compared with or given as
# a frame's `type` (or the hub's `kind`), or written into a frame; a string naming an alert lane
# or the push exchange, or building one (f"alerts.{...}": a second lane rule). The bare queue name
# "notifications" is also a JSON key and a URL, so its users are checked by identity above.
FRAME_TYPE_WRITTEN = re.compile(
    r"""(?:\b(?:type|kind)["']?\s*(?:===|!==|==|!=|:)\s*|\bframe_text\(\s*)["'](\w+)["']""")
BROKER_NAME_WRITTEN = re.compile(r"""(?<![\w"'])f?["']((?:alerts|notifications)\.[^"'\s]*)["']""")


def test_every_name_of_the_contract_is_defined_once():
    """grep finds one definition of each: no module of services/ or web-ui/src assigns a name of
    domain.py at its top level, nor writes a close code as a number, a frame type, a queue or an
    exchange name as a string."""
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
        uncommented = re.sub(r"#.*|//.*", "", text)
        where = path.relative_to(REPO)
        twice += [f"{where}: {name}" for name in defined.findall(text)]
        twice += [f"{where}: close code {code}" for code in codes.findall(uncommented)]
        twice += [f"{where}: frame type {kind!r}" for kind in FRAME_TYPE_WRITTEN.findall(uncommented)
                  if kind in FRAME_TYPES]
        twice += [f"{where}: broker name {name!r}" for name in BROKER_NAME_WRITTEN.findall(uncommented)]
    assert twice == []


def test_the_written_out_checks_see_a_copy():
    """The checks above find the copies they are for (and so are not passing by seeing nothing)."""
    copies = ('if (frame.type === "incident_updated") emit(frame);', "self._write('{\"type\":\"pong\"}')",
              'frame_text("more", {})', 'elif kind == "resume":')
    assert [FRAME_TYPE_WRITTEN.findall(copy) for copy in copies] == [
        ["incident_updated"], ["pong"], ["more"], ["resume"]]
    assert BROKER_NAME_WRITTEN.findall('FanoutPublisher(url, "notifications.push")') == ["notifications.push"]
    assert BROKER_NAME_WRITTEN.findall('return f"alerts.{severity.lower()}"') == ["alerts.{severity.lower()}"]
    assert BROKER_NAME_WRITTEN.findall('"""alerts.device_id of a gateway\'s alarms"""') == []
