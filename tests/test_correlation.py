"""Correlation (issue 9): a repeat of an alarm (same patient and alert type) while its incident is
not RESOLVED and within the correlation window joins that incident instead of paging again; a
more severe repeat raises the severity and pages the assignee again; two consumers handling
repeats at the same moment still make one incident."""
import threading

import pytest

from healthguard.db import Database
from incident_management.consume_alerts import open_incident_for_alert
from tests.support import insert_alerts

pytestmark = pytest.mark.module_database  # the pipeline runs once for the module

WINDOW_SECONDS = 120  # set below the 5-minute default: the setting is honoured


@pytest.fixture(scope="module")
def pipeline_settings():
    return {"incident_env": {"ASSIGNMENT_RETRY_SECONDS": "0.5",
                             "CORRELATION_WINDOW_SECONDS": str(WINDOW_SECONDS)}}


def incident_count(db) -> int:
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM incidents")
        return cur.fetchone()["n"]


def test_repeats_join_the_open_incident_counted_recorded_and_without_a_page(api, doctors, db,
                                                                            notification_events):
    new_before = api.metric("alerts_correlated_total", result="new_incident")
    joined_before = api.metric("alerts_correlated_total", result="existing_incident")
    first = api.incident_of(api.post_alert("P001", "CARDIAC_ARREST"))
    repeats = [api.post_alert("P001", "CARDIAC_ARREST", value=0) for _ in range(2)]
    # A repeat reports the incident it joined, like the first alert.
    assert {api.incident_of(alert_id)["incident_id"] for alert_id in repeats} == {first["incident_id"]}
    incident = api.wait_until(first["incident_id"], lambda i: i["alert_count"] == 3, "three alarms counted")
    assert incident_count(db) == 1
    assert incident["status"] == "ASSIGNED" and incident["assigned_to"] == first["assigned_to"]
    assert incident["last_alert_at"] > first["last_alert_at"]
    assert [h["action"] for h in incident["history"]] == ["CREATED", "ASSIGNED", "ALERT_CORRELATED",
                                                          "ALERT_CORRELATED"]
    assert "3 in all" in incident["history"][-1]["note"]
    listed = api.list(status="ASSIGNED").json()["incidents"]
    assert [(i["incident_id"], i["alert_count"]) for i in listed] == [(first["incident_id"], 3)]
    assert listed[0]["last_alert_at"] == incident["last_alert_at"]

    events = notification_events(lambda es: len(es) >= 3, "the assignment and two repeat events")
    assert [e["type"] for e in events] == ["INCIDENT_ASSIGNED", "INCIDENT_ALERT_CORRELATED",
                                           "INCIDENT_ALERT_CORRELATED"]
    # Dashboards get the count (incident_updated frames carry data.alert_count); nobody is paged.
    assert [e["recipients"] for e in events[1:]] == [[], []]
    assert [e["data"]["alert_count"] for e in events] == [1, 2, 3]
    assert api.metric("alerts_correlated_total", result="new_incident") == new_before + 1
    assert api.metric("alerts_correlated_total", result="existing_incident") == joined_before + 2


def test_window_runs_from_the_last_repeat_and_a_repeat_after_it_or_after_resolve_opens_a_new_incident(
        api, doctors, clock, db):
    first = api.incident_of(api.post_alert("P004", "CARDIAC_ARREST"))
    # Its doctor is at work on it: moving the clock past its deadlines must not escalate it away.
    for action in ("acknowledge", "start"):
        assert api.act(doctors[first["assigned_to"]], first["incident_id"], action).status_code == 200
    # Each repeat comes within the window of the one before, though the last is long after the first.
    for _ in range(2):
        clock.advance(WINDOW_SECONDS - 20)
        repeat = api.incident_of(api.post_alert("P004", "CARDIAC_ARREST"), status="IN_PROGRESS")
        assert repeat["incident_id"] == first["incident_id"]
    clock.advance(WINDOW_SECONDS + 1)
    late = api.incident_of(api.post_alert("P004", "CARDIAC_ARREST"))
    assert late["incident_id"] != first["incident_id"] and late["alert_count"] == 1
    assert api.get(first["incident_id"])["alert_count"] == 3

    token = doctors[late["assigned_to"]]
    for action, body in (("acknowledge", None), ("start", None), ("resolve", {"resolution_notes": "ROSC"})):
        assert api.act(token, late["incident_id"], action, body).status_code == 200
    # The newest unresolved incident is resolved; the older one is out of the window: a new one.
    after_resolve = api.incident_of(api.post_alert("P004", "CARDIAC_ARREST"))
    assert after_resolve["incident_id"] not in (first["incident_id"], late["incident_id"])
    assert incident_count(db) == 3


def test_a_more_severe_repeat_raises_the_severity_and_pages_the_assignee_again(
        api, make_incident, notification_events):
    # Opened as HIGH (the catalogue said so then); the repeat reports the alarm as CRITICAL.
    incident_id = make_incident(severity="HIGH", patient_id="P002", alert_type="CARDIAC_ARREST",
                                assigned_to="D01", title="HIGH: Cardiac arrest, room ICU-2")
    api.post_alert("P002", "CARDIAC_ARREST")
    incident = api.wait_until(incident_id, lambda i: i["alert_count"] == 2, "the repeat to be correlated")
    assert (incident["severity"], incident["title"]) == ("CRITICAL", "CRITICAL: Cardiac arrest, room ICU-2")
    assert incident["assigned_to"] == "D01" and incident["status"] == "ASSIGNED"
    assert "severity raised from HIGH to CRITICAL" in incident["history"][-1]["note"]
    def about_it(events):
        return [e for e in events if e["incident_id"] == incident_id]
    events = about_it(notification_events(lambda es: about_it(es), "the repeat's page"))
    assert len(events) == 1, events
    [event] = events
    assert event["type"] == "INCIDENT_ALERT_CORRELATED" and event["recipients"] == ["D01"]
    assert event["severity"] == "CRITICAL" and "was HIGH" in event["message"]


class NobodyOnCall:
    """The on-call answer for the race: nobody, so the incidents stay OPEN and only creation and
    correlation are exercised."""

    def available(self):
        return []

    def on_duty(self, role=None):
        return []


def test_two_consumers_handling_repeats_at_the_same_moment_make_one_incident(db, clock):
    # Two consumers (each its own database connection, as two worker processes have) take two
    # alerts of the same alarm at the same instant, for several alarms.
    alarms = [("P001", "CARDIAC_ARREST"), ("P002", "HEMORRHAGE"), ("P004", "STROKE_SUSPECTED"),
              ("P005", "SEPSIS_SUSPECTED"), ("P008", "APNEA_DETECTED")]
    ids = insert_alerts(db, [alarm for alarm in alarms for _ in range(2)])  # two alerts of each
    pairs = [ids[n:n + 2] for n in range(0, len(ids), 2)]
    consumers = [Database(db.url, maxconn=1) for _ in range(2)]
    barrier, failures = threading.Barrier(2), []

    def consume(n):
        try:
            for pair in pairs:
                barrier.wait(10)
                open_incident_for_alert({"alert_id": pair[n]}, db=consumers[n], oncall=NobodyOnCall())
        except Exception as exc:  # reported below: an exception in a thread fails nothing by itself
            failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=consume, args=(n,)) for n in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for database in consumers:
            database.close()
    assert not failures, failures
    with db.transaction() as cur:
        cur.execute("""
            SELECT patient_id, alert_type, count(*) AS incidents, sum(alert_count) AS alerts,
                   sum((SELECT count(*) FROM incident_history h
                        WHERE h.incident_id = i.incident_id AND h.action = 'ALERT_CORRELATED')) AS correlated
            FROM incidents i GROUP BY patient_id, alert_type""")
        rows = {(r["patient_id"], r["alert_type"]): (r["incidents"], r["alerts"], r["correlated"])
                for r in cur.fetchall()}
    assert rows == {alarm: (1, 2, 1) for alarm in alarms}


def test_the_unresolved_incidents_table_follows_every_change_of_an_incident(api, doctors, db):
    """The repeat lookup and the workload count read unresolved_incidents (db/migrations/0013),
    kept by triggers on incidents: it holds exactly the incidents not resolved, each with its
    patient, alert type, last alarm and assignee as they are now."""
    def kept_and_actual():
        with db.transaction() as cur:
            cur.execute("""SELECT incident_id, patient_id, alert_type, last_alert_at, assigned_to
                           FROM unresolved_incidents ORDER BY incident_id""")
            kept = cur.fetchall()
            cur.execute("""SELECT incident_id, patient_id, alert_type, last_alert_at, assigned_to
                           FROM incidents WHERE status <> 'RESOLVED' ORDER BY incident_id""")
            return kept, cur.fetchall()

    arrest = api.incident_of(api.post_alert("P001", "CARDIAC_ARREST"))
    other = api.incident_of(api.post_alert("P002", "CARDIAC_ARREST"))
    api.post_alert("P001", "CARDIAC_ARREST")  # a repeat: the alarm's last sounding moves on
    repeated = api.wait_until(arrest["incident_id"], lambda i: i["alert_count"] == 2, "the repeat")
    kept, actual = kept_and_actual()
    assert kept == actual and len(kept) == 2
    assert kept[0]["last_alert_at"].isoformat() == repeated["last_alert_at"]

    # Whoever takes it over must be on duty (routing.py's rules for a claim).
    taker = next(doctor for doctor in api.on_duty("EMERGENCY_DOCTOR") if doctor != other["assigned_to"])
    assert api.act(doctors[taker], other["incident_id"], "claim").status_code == 200
    token = doctors[arrest["assigned_to"]]
    for action, body in (("acknowledge", None), ("start", None), ("resolve", {"resolution_notes": "ROSC"})):
        assert api.act(token, arrest["incident_id"], action, body).status_code == 200
    kept, actual = kept_and_actual()
    assert kept == actual
    assert [(row["incident_id"], row["assigned_to"]) for row in kept] == [(other["incident_id"], taker)]
