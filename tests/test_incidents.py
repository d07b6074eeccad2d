"""Incident management (:8002) end to end: a device alert posted to alert ingestion becomes an
incident assigned through the on-call service, and clinicians take it through its lifecycle."""
import concurrent.futures
import datetime as dt
import statistics
from zoneinfo import ZoneInfo

import pytest
import requests

from healthguard.clock import now as clock_now
from healthguard.domain import INCIDENT_STATUSES, SEVERITIES
from incident_management.performance import bucket_starts
from tests.api_contract import checked_document, fuzz
from tests.support import ServiceProcess, metric_value, publish_to_lanes, queue_idle, wait_for

EVENT_KEYS = ["schema_version", "event_id", "type", "recipients", "incident_id", "title", "message",
              "severity", "data", "occurred_at"]
pytestmark = pytest.mark.module_database  # the pipeline runs once for the module
APP_SERVICE = "incident-management"  # the in-process `app` (conftest)


@pytest.fixture(scope="module")
def pipeline_settings():
    return {"incident_env": {"ASSIGNMENT_RETRY_SECONDS": "0.5"}, "incident_workers": 2}


def events_about(notification_events, incident_id, wanted: int) -> list[dict]:
    """The notification events about this incident, once there are `wanted` of them."""
    def about(events):
        return [e for e in events if e["incident_id"] == incident_id]
    return about(notification_events(lambda events: len(about(events)) >= wanted,
                                     f"{wanted} notification events for incident {incident_id}"))


def test_device_alert_becomes_an_assigned_incident_for_the_right_role(api, login_as, notification_events):
    for doctor in ("D01", "D02", "D03", "D04", "S01", "S02", "S05"):
        login_as(doctor)
    created_before = api.metric("incidents_total", severity="CRITICAL")
    alert_id = api.post_alert("P001", "CARDIAC_ARREST", value=None, device_id="MON-312",
                              source_alarm_id="arrest-1")
    incident = api.incident_of(alert_id)
    # CARDIAC_ARREST routes to EMERGENCY_DOCTOR first; two of the four are on shift at any time.
    assert incident["assignee"]["role"] == "EMERGENCY_DOCTOR"
    assert incident["title"] == "CRITICAL: Cardiac arrest, room 312"
    assert (incident["patient_id"], incident["room"], incident["severity"]) == ("P001", "312", "CRITICAL")
    assert incident["assigned_at"] and incident["alert"]["alert_id"] == alert_id
    assert [h["action"] for h in incident["history"]] == ["CREATED", "ASSIGNED"]
    assert incident["history"][1]["actor_id"] is None  # the system assigned it
    assert incident["assignments"][0]["reason"] == "AUTO"
    # Counted after the commit that the API already shows: wait for it rather than read at once.
    wait_for(lambda: api.metric("incidents_total", severity="CRITICAL") == created_before + 1, 10, 0.1,
             "the incident to be counted")

    [event] = events_about(notification_events, incident["incident_id"], 1)
    assert sorted(event) == sorted(EVENT_KEYS)
    assert event["type"] == "INCIDENT_ASSIGNED" and event["recipients"] == [incident["assigned_to"]]
    assert event["event_id"].startswith(f"incident-{incident['incident_id']}-assigned-")
    assert event["title"] == incident["title"] and event["severity"] == "CRITICAL"
    assert event["data"] == {"status": "ASSIGNED", "patient_id": "P001", "room": "312",
                             "alert_type": "CARDIAC_ARREST", "assigned_to": incident["assigned_to"],
                             "alert_count": 1, "reason": "ASSIGNED", "paged": [incident["assigned_to"]],
                             "unowned_since": None, "assignment_reason": "AUTO", "silenced_by": None,
                             "previous_assignee": None, "actor_id": None}
    assert incident["assignment_reason"] == "AUTO" and incident["paged"] == [incident["assigned_to"]]
    assert incident["unowned"] is False and incident["unowned_since"] is None
    assert incident["history"][0]["note"] == f"from alert {alert_id} (Cardiac arrest)"  # words, not codes

    # The next roles in the route, then anyone available, when the first role has nobody.
    neuro = api.incident_of(api.post_alert("P004", "STROKE_SUSPECTED"))
    assert neuro["assignee"]["role"] == "EMERGENCY_DOCTOR"
    equipment = api.incident_of(api.post_alert("P002", "EQUIPMENT_MALFUNCTION"))
    # No biomedical engineer or nurse is signed in: any available clinician takes it.
    assert equipment["assigned_to"] in {"D01", "D02", "D03", "D04", "S01", "S02", "S05"}


def test_route_falls_back_role_by_role_and_assigns_the_least_busy(api, login_as):
    for specialist in ("S05", "S06"):
        login_as(specialist)  # neurologists, on call around the clock; no emergency doctor signed in
    # Four patients: repeats for one patient would join one incident (tests/test_correlation.py).
    alert_ids = [api.post_alert(patient, "STROKE_SUSPECTED") for patient in ("P004", "P005", "P006", "P007")]
    assignees = [api.incident_of(alert_id)["assigned_to"] for alert_id in alert_ids]
    assert sorted(assignees) == ["S05", "S05", "S06", "S06"]  # least busy first, so two each


def test_nobody_available_leaves_the_incident_open_until_someone_is(api, login_as):
    alert_id = api.post_alert("P008", "APNEA_DETECTED")
    incident = api.incident_of(alert_id, status="OPEN")
    assert incident["assigned_to"] is None
    assert incident["allowed_actions"] == []  # asked by a service, which may take none
    # Nobody owns it: the API says so, and since when (its creation).
    assert incident["unowned"] is True and incident["unowned_since"] == incident["created_at"]
    login_as("S03")  # a pulmonologist signs in; the retry task offers the incident again
    assigned = api.incident_of(alert_id, status="ASSIGNED")
    assert assigned["assigned_to"] == "S03"
    assert [h["action"] for h in assigned["history"]] == ["CREATED", "ASSIGNED"]


def test_lifecycle_end_to_end_with_timings_audit_trail_403_and_409(api, db, login_as, notification_events):
    s01 = login_as("S01")
    incident_id = api.incident_of(api.post_alert("P001", "ST_ELEVATION_DETECTED"))["incident_id"]
    assert api.get(incident_id)["assigned_to"] == "S01"
    s02, n02, d01 = login_as("S02"), login_as("N02"), login_as("D01")
    mtta_before = api.metric("incident_mtta_seconds_count", severity="CRITICAL")
    mttr_before = api.metric("incident_mttr_seconds_count", severity="CRITICAL")

    # Only the assignee acts; an illegal step says what is allowed instead.
    denied = api.act(s02, incident_id, "acknowledge")
    assert denied.status_code == 403 and "assigned to S01" in denied.json()["message"]
    early = api.act(s01, incident_id, "start")
    assert early.status_code == 409
    assert early.json()["incident_status"] == "ASSIGNED"
    assert early.json()["allowed_actions"] == ["acknowledge", "decline", "claim", "reassign", "note"]
    no_notes = api.act(s01, incident_id, "resolve", {})
    assert no_notes.status_code == 400 and no_notes.json()["field"] == "resolution_notes"
    as_service = api.act(api.service_token, incident_id, "acknowledge")
    assert as_service.status_code == 403
    assert api.act("not-a-session", incident_id, "acknowledge").status_code == 401
    assert api.act(s01, 999999, "acknowledge").status_code == 404

    acknowledged = api.act(s01, incident_id, "acknowledge", {"employee_id": "S02"})  # body ids ignored
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["status"] == "ACKNOWLEDGED" and acknowledged.json()["assigned_to"] == "S01"
    assert acknowledged.json()["response_seconds"] >= 0
    again = api.act(s01, incident_id, "acknowledge")
    assert again.status_code == 409 and again.json()["incident_status"] == "ACKNOWLEDGED"

    assert api.note(s01, incident_id, "Amiodarone given").status_code == 201
    assert api.note(n02, incident_id, "I am not on it").status_code == 403
    assert api.note(s01, incident_id, "").status_code == 400

    # S01 acknowledged it and is signed in: only a supervisor may take it from them.
    refused = api.act(s02, incident_id, "claim")
    assert refused.status_code == 403 and "only a supervisor" in refused.json()["message"]
    with db.transaction() as cur:  # S01 signs out (every workstation): the alarm may be taken
        cur.execute("UPDATE sessions SET revoked_at = now() WHERE employee_id = 'S01'")
    claimed = api.act(s02, incident_id, "claim", {"note": "I am in the cath lab next door"})
    assert claimed.status_code == 200 and claimed.json()["status"] == "REASSIGNED"
    assert claimed.json()["assigned_to"] == "S02"
    s01 = login_as("S01")
    assert api.act(s02, incident_id, "claim").status_code == 409  # already theirs
    assert api.act(s01, incident_id, "start").status_code == 403  # no longer S01's
    assert api.act(s02, incident_id, "start").json()["status"] == "IN_PROGRESS"

    assert api.act(n02, incident_id, "reassign", {"employee_id": "S01"}).status_code == 403
    unknown = api.act(d01, incident_id, "reassign", {"employee_id": "X99"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "employee_id"
    reassigned = api.act(d01, incident_id, "reassign", {"employee_id": "S01"})
    assert reassigned.status_code == 200 and reassigned.json()["assigned_to"] == "S01"
    assert api.act(s01, incident_id, "start").json()["status"] == "IN_PROGRESS"
    resolved = api.act(s01, incident_id, "resolve", {"resolution_notes": "Stented, stable"})
    assert resolved.status_code == 200 and resolved.json()["status"] == "RESOLVED"
    after = api.act(s02, incident_id, "claim")
    assert after.status_code == 409 and after.json()["allowed_actions"] == ["note"]

    incident = api.get(incident_id, token=n02)
    assert incident["response_seconds"] == acknowledged.json()["response_seconds"]  # the first ack's
    assert incident["resolution_seconds"] >= incident["response_seconds"]
    assert incident["resolution_notes"] == "Stented, stable"
    trail = [(h["action"], h["actor_id"], h["previous_status"], h["new_status"]) for h in incident["history"]]
    assert trail == [
        ("CREATED", None, None, "OPEN"),
        ("ASSIGNED", None, "OPEN", "ASSIGNED"),
        ("ACKNOWLEDGED", "S01", "ASSIGNED", "ACKNOWLEDGED"),
        ("NOTE_ADDED", "S01", "ACKNOWLEDGED", "ACKNOWLEDGED"),
        ("CLAIMED", "S02", "ACKNOWLEDGED", "REASSIGNED"),
        ("STARTED", "S02", "REASSIGNED", "IN_PROGRESS"),
        ("REASSIGNED", "D01", "IN_PROGRESS", "REASSIGNED"),
        ("STARTED", "S01", "REASSIGNED", "IN_PROGRESS"),
        ("RESOLVED", "S01", "IN_PROGRESS", "RESOLVED"),
    ]
    assert [n["body"] for n in incident["notes"]] == ["Amiodarone given"]
    assert [(a["employee_id"], a["reason"]) for a in incident["assignments"]] == [
        ("S01", "AUTO"), ("S02", "CLAIM"), ("S01", "REASSIGN")]
    assert all(a["ended_at"] for a in incident["assignments"])

    assert api.metric("incident_mtta_seconds_count", severity="CRITICAL") == mtta_before + 1
    assert api.metric("incident_mttr_seconds_count", severity="CRITICAL") == mttr_before + 1
    events = events_about(notification_events, incident_id, 8)
    assert [e["type"] for e in events] == [
        "INCIDENT_ASSIGNED", "INCIDENT_ACKNOWLEDGED", "INCIDENT_NOTE_ADDED", "INCIDENT_REASSIGNED",
        "INCIDENT_STARTED", "INCIDENT_REASSIGNED", "INCIDENT_STARTED", "INCIDENT_RESOLVED"]
    assert len({e["event_id"] for e in events}) == 8
    assert events[3]["recipients"] == ["S02", "S01"]  # the new assignee and the one taken off it
    assert events[-1]["data"]["status"] == "RESOLVED"

    figures = requests.get(api.url + "/api/v1/incidents/metrics", headers=api.auth(n02), timeout=5).json()
    assert figures["counts"]["by_status"]["RESOLVED"] == 1
    assert figures["mtta_seconds"]["count"] == 1 and figures["mttr_seconds"]["count"] == 1
    assert figures["mttr_seconds"]["p50"] == pytest.approx(incident["resolution_seconds"], abs=0.01)
    assert {c["employee_id"] for c in figures["clinicians"]} == {"S01"}


def test_figures_and_gauges_equal_a_full_recount_after_a_mix_of_lifecycle_actions(api, db, login_as,
                                                                                  make_incident):
    """The figures read indexes sized by the window and the active set (migration 0011): after
    incidents move through every status, they still say what counting every incident says."""
    s01, d01 = login_as("S01"), login_as("D01")
    login_as("S02")
    ids = [api.incident_of(api.post_alert(patient, alert_type))["incident_id"] for patient, alert_type in
           [("P001", "ST_ELEVATION_DETECTED"), ("P002", "ST_ELEVATION_DETECTED"),
            ("P003", "ST_ELEVATION_DETECTED"), ("P005", "ST_ELEVATION_DETECTED")]]
    mine = [i for i in ids if api.get(i)["assigned_to"] == "S01"]
    for incident_id in ids:  # whoever has it: a supervisor gives each to S01
        if incident_id not in mine:
            assert api.act(d01, incident_id, "reassign", {"employee_id": "S01"}).status_code == 200
    for incident_id in ids[:3]:
        assert api.act(s01, incident_id, "acknowledge").status_code == 200
    for incident_id in ids[:2]:
        assert api.act(s01, incident_id, "start").status_code == 200
    assert api.act(s01, ids[0], "resolve", {"resolution_notes": "PCI done"}).status_code == 200
    # Active incidents raised before the window, and a resolved one from then.
    old = [make_incident(severity="HIGH", patient_id="P006", alert_type="HEART_RATE_HIGH",
                         assigned_to="S02", status=status) for status in ("ACKNOWLEDGED", "RESOLVED")]
    old.append(make_incident(severity="LOW", patient_id="P007", alert_type="SENSOR_DISCONNECTED",
                             assigned_to="S01", status="IN_PROGRESS"))
    with db.transaction() as cur:
        cur.execute("UPDATE incidents SET created_at = now() - interval '3 days' WHERE incident_id = ANY(%s)",
                    (old,))
        cur.execute("SELECT * FROM incidents")
        every = cur.fetchall()

    figures = requests.get(api.url + "/api/v1/incidents/metrics", headers=api.auth(d01), timeout=5).json()
    since = dt.datetime.fromisoformat(figures["window"]["since"])
    in_window = [i for i in every if i["created_at"] >= since]
    active = [i for i in every if i["status"] != "RESOLVED"]
    assert figures["counts"]["by_status"] == {s: sum(i["status"] == s for i in in_window)
                                              for s in INCIDENT_STATUSES}
    assert figures["counts"]["by_severity"] == {s: sum(i["severity"] == s for i in in_window)
                                                for s in SEVERITIES}
    assert figures["active_by_status"] == {s: sum(i["status"] == s for i in active)
                                           for s in INCIDENT_STATUSES if s != "RESOLVED"}
    assert figures["active_by_severity"] == {s: sum(i["severity"] == s for i in active) for s in SEVERITIES}
    assert figures["active_now"] == len(active) and figures["unassigned_now"] == sum(
        i["status"] == "OPEN" for i in active)
    for key, column in (("mtta_seconds", "response_seconds"), ("mttr_seconds", "resolution_seconds")):
        samples = sorted(i[column] for i in in_window if i[column] is not None)
        assert figures[key]["count"] == len(samples)
        if samples:
            assert figures[key]["avg"] == pytest.approx(statistics.fmean(samples), abs=0.001)
            assert figures[key]["p50"] == pytest.approx(statistics.median(samples), abs=0.001)
    considered = [i for i in every
                  if i["assigned_to"] and (i["created_at"] >= since or i["status"] != "RESOLVED")]
    assert {c["employee_id"]: (c["active"], c["resolved"]) for c in figures["clinicians"]} == {
        who: (sum(i["status"] != "RESOLVED" for i in considered if i["assigned_to"] == who),
              sum(i["status"] == "RESOLVED" for i in considered if i["assigned_to"] == who))
        for who in {i["assigned_to"] for i in considered}}
    # The scrape-time gauges say the same.
    for status in INCIDENT_STATUSES[:-1]:
        for severity in SEVERITIES:
            gauge = metric_value(api.url, "incidents_active", status=status, severity=severity)
            assert (gauge or 0) == sum(i["status"] == status and i["severity"] == severity for i in active)


def test_concurrent_acknowledge_has_exactly_one_winner(api, login_as):
    s01 = login_as("S01")
    incident_id = api.incident_of(api.post_alert("P001", "HEART_RATE_HIGH", value=170))["incident_id"]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: api.act(s01, incident_id, "acknowledge"), range(8)))
    assert sorted(r.status_code for r in answers) == [200] + [409] * 7
    history = api.get(incident_id)["history"]
    assert [h["action"] for h in history].count("ACKNOWLEDGED") == 1


def test_incident_list_filters_and_pagination(api, login_as):
    s05 = login_as("S05")
    login_as("S06")
    ids = [api.incident_of(api.post_alert(patient, alert_type))["incident_id"] for patient, alert_type in
           [("P004", "STROKE_SUSPECTED"), ("P004", "SEIZURE_DETECTED"), ("P001", "STROKE_SUSPECTED"),
            ("P004", "GCS_DROP"), ("P002", "STROKE_SUSPECTED")]]
    mine = api.list(s05, mine="true").json()["incidents"]
    assert mine and {i["assigned_to"] for i in mine} == {"S05"}
    assert api.act(s05, mine[0]["incident_id"], "acknowledge").status_code == 200

    pages, cursor = [], None
    while True:
        page = api.list(limit=2, order="newest", **({"cursor": cursor} if cursor else {})).json()
        pages.append([i["incident_id"] for i in page["incidents"]])
        cursor = page["next"]
        if not cursor:
            break
    assert [i for p in pages for i in p] == sorted(ids, reverse=True) and len(pages) == 3
    assert {i["patient_id"] for i in api.list(patient_id="P004").json()["incidents"]} == {"P004"}
    assert len(api.list(patient_id="P004").json()["incidents"]) == 3
    assert len(api.list(severity="HIGH").json()["incidents"]) == 2
    assert len(api.list(status="ACKNOWLEDGED").json()["incidents"]) == 1
    assert len(api.list(status="ASSIGNED,ACKNOWLEDGED").json()["incidents"]) == 5
    assert len(api.list(status=["ASSIGNED", "RESOLVED"]).json()["incidents"]) == 4
    assert api.list(since="2999-01-01T00:00:00Z").json()["incidents"] == []
    assert {i["patient_id"] for i in api.list(ward="Neurology").json()["incidents"]} == {"P004"}
    assert api.list(ward="Maternity").json()["incidents"] == []
    # Search: a room, a patient's id (any case), or part of a name; LIKE's wildcards are literal.
    assert {i["patient_id"] for i in api.list(q="418").json()["incidents"]} == {"P004"}
    assert {i["patient_id"] for i in api.list(q="p002").json()["incidents"]} == {"P002"}
    assert {i["patient_id"] for i in api.list(q="whitf").json()["incidents"]} == {"P001"}
    assert api.list(q="%").json()["incidents"] == [] and api.list(q="_").json()["incidents"] == []
    for params, field in [({"status": "DONE"}, "status.0"), ({"status": "OPEN,DONE"}, "status.1"),
                          ({"limit": 0}, "limit"), ({"since": "x"}, "since")]:
        bad = api.list(**params)
        assert bad.status_code == 400 and bad.json()["field"] == field, bad.text
    nobodys = api.list(mine="true")  # well-formed, but the service token is nobody
    assert nobodys.status_code == 422 and nobodys.json()["field"] == "mine"
    assert requests.get(api.url + "/api/v1/incidents", timeout=5).status_code == 401
    assert requests.get(api.url + "/api/v1/incidents/metrics", params={"hours": "0"},
                        headers=api.auth(s05), timeout=5).status_code == 400


def test_the_list_is_most_severe_first_then_oldest_unacknowledged_and_pages_in_that_order(
        api, db, login_as, make_incident):
    token = login_as("D01")
    made = {name: make_incident(severity=severity, assigned_to=assignee, status=status,
                                patient_id=patient, alert_type=alert_type)
            for name, severity, assignee, status, patient, alert_type in [
                ("high waiting", "HIGH", "S01", "ASSIGNED", "P001", "HEART_RATE_HIGH"),
                ("critical taken on", "CRITICAL", "D01", "ACKNOWLEDGED", "P002", "CARDIAC_ARREST"),
                ("critical waiting, newer", "CRITICAL", "D01", "ASSIGNED", "P003", "CARDIAC_ARREST"),
                ("critical waiting, older", "CRITICAL", "D01", "REASSIGNED", "P004", "STROKE_SUSPECTED"),
                ("low nobody's", "LOW", None, "OPEN", "P005", "SENSOR_DISCONNECTED"),
                ("critical resolved, newer", "CRITICAL", "D01", "RESOLVED", "P006", "CARDIAC_ARREST"),
                ("high resolved, older", "HIGH", "S01", "RESOLVED", "P007", "HEART_RATE_HIGH")]}
    ages = {"high waiting": 50, "critical taken on": 40, "critical waiting, newer": 10,
            "critical waiting, older": 30, "low nobody's": 60, "critical resolved, newer": 5,
            "high resolved, older": 70}
    with db.transaction() as cur:
        for name, minutes in ages.items():
            cur.execute("UPDATE incidents SET created_at = %s WHERE incident_id = %s",
                        (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes), made[name]))
    expected = [made[name] for name in (
        "critical waiting, older", "critical waiting, newer", "critical taken on", "high waiting",
        "low nobody's", "critical resolved, newer", "high resolved, older")]
    listed = api.list(token).json()
    assert [i["incident_id"] for i in listed["incidents"]] == expected
    pages, cursor = [], None
    while True:  # the same order a page at a time, with opaque cursors
        page = api.list(token, limit=3, **({"cursor": cursor} if cursor else {})).json()
        pages.append([i["incident_id"] for i in page["incidents"]])
        cursor = page["next"]
        if not cursor:
            break
    assert [i for p in pages for i in p] == expected and len(pages) == 3
    assert [i["incident_id"] for i in api.list(token, order="newest").json()["incidents"]] == sorted(
        made.values(), reverse=True)
    mine = api.list(token, mine="true", status="ASSIGNED,REASSIGNED,ACKNOWLEDGED").json()["incidents"]
    assert [i["incident_id"] for i in mine] == expected[:3]


def test_redelivered_alert_makes_no_second_incident_and_bad_messages_are_dead_lettered(
        api, login_as, rabbitmq_url, db, queued):
    login_as("S01")
    alert_id = api.post_alert("P001", "HEART_RATE_LOW", value=38)
    incident = api.incident_of(alert_id)
    dead_before = api.metric("messages_dead_lettered_total", queue="alerts.high")
    publish_to_lanes(rabbitmq_url, [("alerts.high", body) for body in (
        {"alert_id": alert_id}, {"alert_id": 99999999}, {"alert": "nope"}, "not json")])
    dead = []

    def three_dead_letters():
        dead.extend(queued("alerts.high.dead"))
        return len(dead) >= 3
    wait_for(three_dead_letters, 15, 0.1, "three dead letters")
    reasons = sorted(properties.headers["x-dead-letter-reason"] for _, properties in dead)
    assert reasons[0].startswith("invalid alert message: alert_id")
    assert reasons[1] == "unknown alert 99999999"
    assert reasons[2].startswith("unparseable message")
    # Counted once the dead letter is published: it may be on the queue before it is counted.
    wait_for(lambda: api.metric("messages_dead_lettered_total", queue="alerts.high") == dead_before + 3,
             10, 0.1, "the dead letters to be counted")
    # The redelivered alert may still be in a consumer's hands: only once every message sent to
    # `alerts.high` has been acknowledged can "no second incident" be told from "not yet".
    wait_for(lambda: queue_idle(rabbitmq_url, "alerts.high"), 30, 0.5, "the redelivered alert to be handled")
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM incidents")
        assert cur.fetchone()["n"] == 1
    assert [h["action"] for h in api.get(incident["incident_id"])["history"]] == ["CREATED", "ASSIGNED"]


def test_service_needs_the_oncall_url(service_env):
    proc = ServiceProcess("incident-management", {**service_env, "ONCALL_URL": ""})
    with pytest.raises(RuntimeError, match="missing required setting.*ONCALL_URL"):
        proc.start(timeout=20)
    proc.stop()


@pytest.fixture
def app_env(service_env, alert_pipeline):
    """The in-process `app` asks the module's on-call service who is on duty (claims and
    reassignments need it)."""
    return {**service_env, "ONCALL_URL": alert_pipeline["oncall"].url}


def test_an_incident_carries_the_patients_context_the_readings_range_and_whether_it_is_a_test(api, login_as):
    token = login_as("S01")  # an emergency doctor on duty
    incident = api.get(api.incident_of(api.post_alert("P001", "HEART_RATE_LOW", value=0))["incident_id"])
    # Born 1951-03-14: 74 at the platform's clock (the pinned rota, 2026-03-11), whatever the wall says.
    assert incident["ward"] == "Cardiology" and incident["patient_age"] == 74 and incident["room"] == "312"
    assert (incident["unit"], incident["normal_min"], incident["normal_max"]) == ("bpm", 60, 100)
    assert incident["alert"]["value"] == 0 and incident["is_test"] is False
    manual = requests.post(api.ingestion + "/api/v1/alerts/manual", headers=api.auth(token), timeout=5,
                           json={"patient_id": "P002", "alert_type": "CARDIAC_ARREST"})
    assert manual.status_code == 201, manual.text
    drill = api.get(api.incident_of(manual.json()["alert_id"])["incident_id"])
    assert drill["is_test"] is True and drill["unit"] is None and drill["normal_min"] is None
    assert [i["is_test"] for i in api.list(q="P002").json()["incidents"]] == [True]


def test_trends_per_hospital_hour_and_day_count_alarms_by_severity_and_time_to_acknowledge(api, login_as):
    d01 = login_as("S01")
    api.incident_of(api.post_alert("P001", "CARDIAC_ARREST"))
    api.post_alert("P007", "GLUCOSE_LOW")
    hourly = requests.get(api.url + "/api/v1/incidents/trends", params={"hours": 6}, headers=api.auth(d01),
                          timeout=5).json()
    assert hourly["bucket"] == "hour" and len(hourly["points"]) in (6, 7)
    last = hourly["points"][-1]
    assert last["alarms_by_severity"]["CRITICAL"] >= 1 and last["alarms_by_severity"]["HIGH"] >= 1
    assert last["incidents"] >= 1 and all(p["incidents"] == 0 for p in hourly["points"][:-2])
    daily = requests.get(api.url + "/api/v1/incidents/trends", params={"hours": 72, "bucket": "day"},
                         headers=api.auth(d01), timeout=5).json()
    assert len(daily["points"]) in (3, 4) and daily["points"][-1]["incidents"] >= 1
    assert daily["points"][0]["start"].endswith(("T00:00:00+00:00", "T00:00:00Z"))  # HOSPITAL_TZ is UTC here
    too_long = requests.get(api.url + "/api/v1/incidents/trends", params={"hours": 24 * 8},
                            headers=api.auth(d01), timeout=5)
    assert too_long.status_code == 422 and too_long.json()["field"] == "hours"


def test_trend_buckets_are_the_hospitals_own_hours_and_days_across_a_clock_change():
    utc = dt.UTC
    london, kolkata = ZoneInfo("Europe/London"), ZoneInfo("Asia/Kolkata")
    # British Summer Time starts at 01:00 UTC on 29 March 2026: that day has 23 hours.
    days = bucket_starts(since=dt.datetime(2026, 3, 28, 12, tzinfo=utc),
                         until=dt.datetime(2026, 3, 30, 12, tzinfo=utc), bucket="day", tz=london)
    assert days == [dt.datetime(2026, 3, 28, 0, tzinfo=utc), dt.datetime(2026, 3, 29, 0, tzinfo=utc),
                    dt.datetime(2026, 3, 29, 23, tzinfo=utc)]
    hours = bucket_starts(since=dt.datetime(2026, 1, 5, 12, 10, tzinfo=utc),
                          until=dt.datetime(2026, 1, 5, 14, 0, tzinfo=utc), bucket="hour", tz=kolkata)
    assert hours == [dt.datetime(2026, 1, 5, 11, 30, tzinfo=utc), dt.datetime(2026, 1, 5, 12, 30, tzinfo=utc),
                     dt.datetime(2026, 1, 5, 13, 30, tzinfo=utc)]


def test_openapi_document_is_valid_and_names_every_route(app, alert_pipeline):
    document = checked_document(app)
    served = requests.get(alert_pipeline["incidents"].url + "/api/v1/openapi.json", timeout=5).json()
    assert served == document


def test_schema_valid_requests_are_accepted_and_answers_match_the_document(app, api, db, login_as,
                                                                          make_incident):
    # Incidents in every status: the caller's, someone else's and nobody's. The caller is an
    # emergency doctor on duty (a supervisor); the other one on duty is signed in, so a decline
    # has someone to go to.
    doctor, colleague = api.on_duty("EMERGENCY_DOCTOR")  # api pins the rota
    login_as(colleague)
    statuses = ["ASSIGNED", "ACKNOWLEDGED", "IN_PROGRESS", "REASSIGNED", "RESOLVED"]
    ids = [make_incident(assigned_to=doctor, status=status) for status in statuses]
    ids += [make_incident(assigned_to="N01", status=status) for status in statuses]
    ids.append(make_incident(status="OPEN"))
    ids += [make_incident(assigned_to=doctor) for _ in range(6)]  # for decline, after acknowledge's run
    silence_ids = [_running_silence(db, patient_id) for patient_id in ("P001", "P005", "P007")]
    answered = fuzz(app, headers={"Authorization": f"Bearer {login_as(doctor)}"},  # a supervisor
                    known_ids={"incident_id": ids, "severity": ["CRITICAL", "HIGH", "MEDIUM", "LOW"],
                               "silence_id": silence_ids, "patient_id": ["P001", "P007"],
                               "ward": ["Internal Medicine"]})
    assert len(answered) == 26
    # The run reached past the refusals: every operation succeeded at least once, but reassign,
    # whose generated employee_id names nobody (422; the lifecycle test reassigns for real), and
    # replacing a policy, whose generated roles name nobody (422; test_claims.py puts one for real).
    # Care teams and silences name people and times the generator hardly ever gets right (someone
    # on duty, an end within 8 hours): tests/test_care_teams.py and test_silences.py do them for real.
    succeeded = {label for label, statuses in answered.items() if any(200 <= s < 300 for s in statuses)}
    refused = {"PATCH /api/v1/incidents/{incident_id}/reassign", "PUT /api/v1/escalation-policies/{severity}"}
    may_be_refused = {"PUT /api/v1/care-teams/patients/{patient_id}", "POST /api/v1/care-teams/handover",
                      "PUT /api/v1/care-teams/wards/{ward}/charge-nurse", "POST /api/v1/silences",
                      "PATCH /api/v1/silences/{silence_id}"}
    assert refused <= set(answered) - succeeded <= refused | may_be_refused, answered


def _running_silence(db, patient_id: str) -> int:
    now = clock_now()
    with db.transaction() as cur:
        cur.execute("""INSERT INTO silences (patient_id, reason, created_by, starts_at, ends_at)
                       VALUES (%s, 'OTHER', 'D01', %s, %s) RETURNING silence_id""",
                    (patient_id, now, now + dt.timedelta(hours=1)))
        return cur.fetchone()["silence_id"]


def test_malformed_requests_get_a_json_4xx_never_a_500(api, login_as):
    s01 = login_as("S01")
    incident_id = api.incident_of(api.post_alert("P001", "CARDIAC_ARREST"))["incident_id"]
    auth = api.auth(s01)
    base = f"{api.url}/api/v1/incidents"
    cases = [
        ("PATCH", f"{base}/{incident_id}/acknowledge", {"data": "{not json", "headers": {
            **auth, "Content-Type": "application/json"}}, 400),
        ("PATCH", f"{base}/{incident_id}/acknowledge", {"json": ["a"], "headers": auth}, 400),
        ("PATCH", f"{base}/{incident_id}/acknowledge", {"json": {"note": 5}, "headers": auth}, 400),
        ("PATCH", f"{base}/{incident_id}/resolve", {"json": {"resolution_notes": "x" * 5000},
                                                    "headers": auth}, 400),
        ("PATCH", f"{base}/{incident_id}/reassign", {"json": {"employee_id": 7}, "headers": auth}, 403),
        ("POST", f"{base}/{incident_id}/notes", {"json": {"text": "wrong field"}, "headers": auth}, 400),
        ("POST", f"{base}/{incident_id}/notes", {"data": "x" * 70_000, "headers": {
            **auth, "Content-Type": "application/json"}}, 413),
        ("PATCH", f"{base}/{'9' * 25}/acknowledge", {"headers": auth}, 404),
        ("GET", f"{base}/{'9' * 25}", {"headers": auth}, 404),
        ("GET", f"{base}/abc", {"headers": auth}, 404),
        ("GET", base, {"params": {"cursor": "9" * 81}, "headers": auth}, 400),
        ("GET", base, {"params": {"cursor": "12.5"}, "headers": auth}, 400),
        ("GET", base, {"params": {"order": "severity"}, "headers": auth}, 400),
        ("GET", base, {"params": {"limit": "-1"}, "headers": auth}, 400),
        ("GET", base, {"params": {"since": "2026-02-30T00:00:00Z"}, "headers": auth}, 400),
        ("GET", base, {"params": {"mine": "maybe"}, "headers": auth}, 400),
        ("GET", f"{base}/metrics", {"params": {"hours": "1e3"}, "headers": auth}, 400),
        ("DELETE", f"{base}/{incident_id}", {"headers": auth}, 405),
    ]
    for method, url, kwargs, status in cases:
        response = requests.request(method, url, timeout=10, **kwargs)
        assert response.status_code == status, (method, url, response.text)
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json()["status"] == status
