"""One clock (issue 19, item 1): every time the services write or compare comes from
healthguard.clock.now(), passed into SQL as a parameter. A SQL time function in services/ would
stamp the wall clock beside the platform's, so a test clock would move half an incident (MTTA
negative, a deadline read against the wrong time)."""
import ast
import datetime as dt
import re
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.module_database  # the pipeline runs once for the module

SERVICES = Path(__file__).resolve().parents[1] / "services"
# SQL's own clocks: functions, the SQL-standard special values and the 'now' literal.
SQL_TIME = re.compile(
    r"\b(?:now|clock_timestamp|statement_timestamp|transaction_timestamp|timeofday)\s*\(\s*\)"
    r"|\b(?:current_timestamp|current_date|current_time|localtimestamp|localtime)\b"
    r"|'(?:now|today|tomorrow|yesterday)'", re.IGNORECASE)
# No exception is needed today; one would be (path, the matched text) with the reason beside it.
ALLOWED: set[tuple[str, str]] = set()

MOVED = 600  # the clock moved 10 minutes
ACK_TIMEOUT = 1200  # HIGH, for this test: longer than the move, so nothing escalates meanwhile
START_TIMEOUT = 600  # HIGH, from acknowledgement to the start of work (0006_escalation_deadlines.sql)


def sql_time_calls(source: str) -> list[tuple[int, str]]:
    """(line, match) of every SQL clock in the module's string literals (f-strings' literal parts
    included); docstrings are prose and are skipped, Python's own calls are not strings."""
    tree = ast.parse(source)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return sorted(((node.lineno, match.group(0)) for node in ast.walk(tree)
                   if isinstance(node, ast.Constant) and isinstance(node.value, str)
                   and id(node) not in docstrings
                   for match in SQL_TIME.finditer(node.value)), key=lambda found: found[0])


def test_the_scan_finds_a_sql_clock_and_ignores_prose_and_python():
    found = sql_time_calls('"""Never SQL\'s now()."""\n'
                           'from healthguard import clock\n'
                           'at = clock.now()\n'
                           'Q = "UPDATE t SET a = coalesce(a, now()), b = CURRENT_TIMESTAMP"\n'
                           'R = f"SELECT {x} WHERE d < current_date"\n')
    assert found == [(4, "now()"), (4, "CURRENT_TIMESTAMP"), (5, "current_date")]


def test_no_sql_in_the_services_reads_the_databases_clock():
    found = [f"{path.relative_to(SERVICES)}:{line}: {text}"
             for path in sorted(SERVICES.rglob("*.py"))
             for line, text in sql_time_calls(path.read_text())
             if (str(path.relative_to(SERVICES)), text) not in ALLOWED]
    assert not found, "pass healthguard.clock.now() as a parameter instead:\n" + "\n".join(found)


def at(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


@pytest.fixture(scope="module")
def pipeline_settings():
    return {"incident_env": {"ASSIGNMENT_RETRY_SECONDS": "0.5", "ESCALATION_CHECK_SECONDS": "0.3"}}


def test_a_moved_clock_moves_the_acknowledgement_the_mtta_and_the_deadlines(api, db, doctors, clock):
    with db.transaction() as cur:
        cur.execute("UPDATE escalation_policies SET ack_timeout_seconds = %s WHERE severity = 'HIGH'",
                    (ACK_TIMEOUT,))
    began = time.monotonic()
    incident = api.incident_of(api.post_alert("P001", "HEART_RATE_HIGH", value=170))
    incident_id = incident["incident_id"]
    # The rota is pinned months away from the wall clock: every stamp is the platform's clock.
    assert abs(dt.datetime.now(dt.UTC) - clock.now()) > dt.timedelta(days=1)
    created, assigned = at(incident["created_at"]), at(incident["assigned_at"])
    assert dt.timedelta(0) <= clock.now() - created <= dt.timedelta(seconds=time.monotonic() - began + 1)
    assert assigned >= created and at(incident["alert"]["received_at"]) <= assigned
    assert at(incident["ack_deadline"]) == assigned + dt.timedelta(seconds=ACK_TIMEOUT)

    clock.advance(MOVED)
    answer = api.act(doctors[incident["assigned_to"]], incident_id, "acknowledge")
    assert answer.status_code == 200, answer.text
    elapsed = time.monotonic() - began
    acknowledged = api.get(incident_id)
    acknowledged_at = at(acknowledged["acknowledged_at"])
    assert MOVED <= (acknowledged_at - assigned).total_seconds() <= MOVED + elapsed + 1
    assert acknowledged["response_seconds"] == pytest.approx((acknowledged_at - created).total_seconds())
    assert at(acknowledged["updated_at"]) == acknowledged_at
    assert at(acknowledged["history"][-1]["created_at"]) == acknowledged_at
    # The next deadline (start work) counts from the acknowledgement.
    assert at(acknowledged["ack_deadline"]) == acknowledged_at + dt.timedelta(seconds=START_TIMEOUT)

    # MTTA as the metrics page shows it: this incident's, in a window ending at the moved clock.
    figures = requests.get(api.url + "/api/v1/incidents/metrics", params={"hours": 1}, timeout=10,
                           headers=api.auth(api.service_token))
    assert figures.status_code == 200, figures.text
    figures = figures.json()
    assert figures["mtta_seconds"]["count"] == 1
    assert figures["mtta_seconds"]["avg"] == pytest.approx(acknowledged["response_seconds"], abs=0.001)
    assert figures["mtta_seconds"]["avg"] >= MOVED
    assert acknowledged_at <= at(figures["window"]["until"]) <= clock.now()
    trends = requests.get(api.url + "/api/v1/incidents/trends", params={"hours": 2, "bucket": "hour"},
                          timeout=10, headers=api.auth(api.service_token))
    assert trends.status_code == 200, trends.text
    raised = [point for point in trends.json()["points"] if point["incidents"]]
    assert [(p["incidents"], p["mtta_avg_seconds"]) for p in raised] == [(1, figures["mtta_seconds"]["avg"])]

    # The escalator reads the deadline against the same clock: past it, the owner is paged again.
    clock.advance(START_TIMEOUT + 1)
    repaged = api.wait_until(incident_id, lambda i: i["history"][-1]["action"] == "REPAGED",
                             "the owner to be paged again for not starting work")
    repaged_at = at(repaged["history"][-1]["created_at"])
    assert repaged_at >= acknowledged_at + dt.timedelta(seconds=START_TIMEOUT)
    assert at(repaged["ack_deadline"]) == repaged_at + dt.timedelta(seconds=START_TIMEOUT)
