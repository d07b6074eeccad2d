"""The alert ingestion service (:8001) as a device, a clinician and the web UI see it."""
import datetime as dt
import json
import re

import pika
import pytest
import requests

from healthguard.broker import ALERT_LANES, declare_queue
from tests.api_contract import checked_document, fuzz
from tests.support import DEVICE_KEY, ServiceProcess, metric_value, run_simulator, wait_for

pytestmark = pytest.mark.module_database  # one alert ingestion service for the module
APP_SERVICE = "alert-ingestion"  # the in-process `app` (conftest)


@pytest.fixture(scope="module")
def ingestion(start_module_service):
    """One alert ingestion service for the whole module (starting gunicorn per test is slow)."""
    return start_module_service("alert-ingestion")


def post_alert(service, body, *, key=DEVICE_KEY, **kwargs):
    headers = {"X-API-Key": key} if key else {}
    return requests.post(service.url + "/api/v1/alerts", json=body, headers=headers, timeout=10, **kwargs)


def counts(db) -> dict:
    with db.transaction() as cur:
        cur.execute("SELECT (SELECT count(*) FROM alerts) AS alerts, (SELECT count(*) FROM outbox) AS outbox")
        return cur.fetchone()


def queued_alerts(rabbitmq_url) -> list[dict]:
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = connection.channel()
    messages = []
    for lane in ALERT_LANES:  # each alert in its severity's lane (broker.alert_lane)
        declare_queue(channel, lane)
        while True:
            method, properties, body = channel.basic_get(lane, auto_ack=True)
            if method is None:
                break
            messages.append({"message_id": properties.message_id, "lane": lane, **json.loads(body)})
    connection.close()
    return messages


def received_total(service, severity: str) -> float:
    text = requests.get(service.url + "/metrics", timeout=5).text
    match = re.search(rf'^alerts_received_total{{severity="{severity}"}} ([0-9.e+]+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def test_device_alert_is_stored_with_derived_fields_and_published(ingestion, db, rabbitmq_url):
    before = received_total(ingestion, "CRITICAL")
    response = post_alert(ingestion, {
        "patient_id": "P001", "alert_type": "CARDIAC_ARREST", "device_id": "MON-312",
        "source_alarm_id": "a-1", "occurred_at": "2026-02-01T10:15:00Z",
        "severity": "LOW", "room": "999"})  # the caller's severity and room are not believed
    assert response.status_code == 201, response.text
    alert = response.json()
    assert response.headers["Location"] == f"/api/v1/alerts/{alert['alert_id']}"
    assert alert["status"] == "RECEIVED"
    assert (alert["room"], alert["severity"], alert["category"]) == ("312", "CRITICAL", "CARDIAC")
    assert alert["source"] == "DEVICE" and alert["occurred_at"] == "2026-02-01T10:15:00+00:00"
    # Durably stored before the answer; the outbox relay then publishes it and empties the outbox.
    wait_for(lambda: counts(db) == {"alerts": 1, "outbox": 0}, 10, what="the outbox to drain")
    [message] = queued_alerts(rabbitmq_url)
    assert message["message_id"] == f"alert-{alert['alert_id']}"
    assert message["alert_id"] == alert["alert_id"] and message["severity"] == "CRITICAL"
    assert message["lane"] == "alerts.critical"
    assert received_total(ingestion, "CRITICAL") == before + 1

    fetched = requests.get(ingestion.url + response.headers["Location"],
                           headers={"Authorization": f"Bearer {ingestion.env['SERVICE_TOKEN']}"}, timeout=5)
    assert fetched.status_code == 200 and fetched.json()["alert_id"] == alert["alert_id"]


def test_a_retried_device_alarm_is_stored_once(ingestion, db, rabbitmq_url):
    body = {"patient_id": "P002", "alert_type": "O2_SATURATION_LOW", "value": 84,
            "device_id": "MON-ICU2", "source_alarm_id": "alarm-77"}
    first, again = post_alert(ingestion, body), post_alert(ingestion, body)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["alert_id"] == first.json()["alert_id"]
    assert again.headers["Location"] == first.headers["Location"]
    clash = post_alert(ingestion, {**body, "patient_id": "P003"})
    assert clash.status_code == 409 and "already reported alarm alarm-77" in clash.json()["message"]
    # Another device may use the same alarm id of its own.
    other = post_alert(ingestion, {**body, "device_id": "MON-OTHER"})
    assert other.status_code == 201
    wait_for(lambda: counts(db) == {"alerts": 2, "outbox": 0}, 10, what="the outbox to drain")
    assert len(queued_alerts(rabbitmq_url)) == 2


VALID = {"patient_id": "P001", "alert_type": "HEART_RATE_HIGH", "value": 150}


@pytest.mark.parametrize("kwargs, status, message, field", [
    ({"key": None}, 401, "valid device key is required", None),
    ({"key": "wrong-key"}, 401, "valid device key is required", None),
    ({"data": "patient_id=P001", "headers": {"Content-Type": "text/plain"}}, 400, "must be JSON", None),
    ({"data": '{"patient_id": "P0', "headers": {"Content-Type": "application/json"}}, 400,
     "must be a JSON object", None),
    ({"body": [VALID]}, 400, "must be a JSON object", None),
    # Not what the document describes: 400, naming the field.
    ({"body": {"alert_type": "HEART_RATE_HIGH"}}, 400, "Field required", "patient_id"),
    ({"body": {**VALID, "patient_id": 1}}, 400, "valid string", "patient_id"),
    ({"body": {**VALID, "patient_id": "P" * 33}}, 400, "at most 32 characters", "patient_id"),
    ({"body": {**VALID, "alert_type": ""}}, 400, "at least 1 character", "alert_type"),
    ({"body": {**VALID, "alert_type": "   "}}, 400, "at least 1 character", "alert_type"),
    ({"body": {**VALID, "alert_type": "HEART\u0000"}}, 400, "pattern", "alert_type"),
    ({"body": {**VALID, "value": "high"}}, 400, "valid number", "value"),
    ({"body": {**VALID, "value": True}}, 400, "valid number", "value"),
    ({"body": {**VALID, "value": 1e12}}, 400, "less than or equal", "value"),
    ({"body": {**VALID, "occurred_at": "yesterday"}}, 400, "datetime", "occurred_at"),
    ({"body": {**VALID, "occurred_at": "2026-02-01T10:00:00"}}, 400, "timezone", "occurred_at"),
    ({"body": {**VALID, "source": "MANUAL"}}, 400, "'DEVICE' or 'SIMULATOR'", "source"),
    # Well-formed, but naming what does not exist or breaking a rule: 422, naming the field.
    ({"body": {**VALID, "occurred_at": "2999-01-01T00:00:00Z"}}, 422, "in the future", "occurred_at"),
    ({"body": {**VALID, "occurred_at": "1970-01-01T00:00:00Z"}}, 422, "clock is not set", "occurred_at"),
    ({"body": {**VALID, "source_alarm_id": "x"}}, 422, "send device_id too", "device_id"),
    ({"body": {**VALID, "patient_id": "P999"}}, 422, "unknown patient_id 'P999'", "patient_id"),
    ({"body": {**VALID, "alert_type": "ALIENS"}}, 422, "unknown alert_type 'ALIENS'", "alert_type"),
    ({"body": {**VALID, "notes": "x" * 70_000}}, 413, "", None),
])
def test_bad_alert_reports_are_refused_and_store_nothing(ingestion, db, kwargs, status,
                                                         message, field):
    kwargs = dict(kwargs)
    key = kwargs.pop("key", DEVICE_KEY)
    headers = {**({"X-API-Key": key} if key else {}), **kwargs.pop("headers", {})}
    if "body" in kwargs:
        kwargs["json"] = kwargs.pop("body")
    response = requests.post(ingestion.url + "/api/v1/alerts", headers=headers, timeout=10, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and message in body["message"]
    assert body.get("field") == field
    assert counts(db) == {"alerts": 0, "outbox": 0}


def test_manual_alert_by_a_signed_in_clinician(ingestion, db, login_as):
    token = login_as("N01")
    auth = {"Authorization": f"Bearer {token}"}
    random_alert = requests.post(ingestion.url + "/api/v1/alerts/manual", headers=auth, timeout=10)
    assert random_alert.status_code == 201, random_alert.text
    assert random_alert.json()["source"] == "MANUAL" and random_alert.json()["triggered_by"] == "N01"

    chosen = requests.post(ingestion.url + "/api/v1/alerts/manual", headers=auth, timeout=10,
                           json={"patient_id": "P004", "alert_type": "GLUCOSE_LOW"})
    assert chosen.status_code == 201
    alert = chosen.json()
    assert (alert["patient_id"], alert["alert_type"], alert["room"]) == ("P004", "GLUCOSE_LOW", "418")
    assert alert["value"] is not None  # a typical value from the definition

    # Every field may be null, as in the document: null means "pick one for me".
    nulls = requests.post(ingestion.url + "/api/v1/alerts/manual", headers=auth, timeout=10,
                          json={"patient_id": None, "alert_type": None, "value": None, "source": "MANUAL"})
    assert nulls.status_code == 201, nulls.text
    assert nulls.json()["alert_type"] and nulls.json()["patient_id"]

    unknown = requests.post(ingestion.url + "/api/v1/alerts/manual", headers=auth, timeout=10,
                            json={"alert_type": "NOPE"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "alert_type"
    for refused in ({"device_id": "MON-1"}, {"source": "DEVICE"}, {"alert_type": 7}):
        answer = requests.post(ingestion.url + "/api/v1/alerts/manual", headers=auth, timeout=10,
                               json=refused)
        assert answer.status_code == 400 and answer.json()["field"] == next(iter(refused)), answer.text
    as_service = requests.post(ingestion.url + "/api/v1/alerts/manual", timeout=10,
                               headers={"Authorization": f"Bearer {ingestion.env['SERVICE_TOKEN']}"})
    assert as_service.status_code == 403
    anonymous = requests.post(ingestion.url + "/api/v1/alerts/manual", timeout=10)
    assert anonymous.status_code == 401
    assert counts(db)["alerts"] == 3


def rate_limited_total(service, source: str) -> float:
    return metric_value(service.url, "alerts_rate_limited_total", source=source) or 0.0


def test_manual_alerts_are_limited_per_clinician_and_accepted_ones_kept(ingestion, db, login_as, clock):
    clock.set(dt.datetime(2026, 3, 11, 10, 0, 1, tzinfo=dt.UTC))  # a whole minute ahead of the test
    flooder, colleague = login_as("N02"), login_as("N03")
    before = rate_limited_total(ingestion, "manual")

    def raise_test_alert(token):
        return requests.post(ingestion.url + "/api/v1/alerts/manual", timeout=10,
                             headers={"Authorization": f"Bearer {token}"}, json={"patient_id": "P003"})
    assert [raise_test_alert(flooder).status_code for _ in range(10)] == [201] * 10
    refused = raise_test_alert(flooder)
    assert refused.status_code == 429 and refused.json()["error"] == "Too Many Requests"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["retry_after_seconds"] == int(refused.headers["Retry-After"])
    assert raise_test_alert(colleague).status_code == 201  # a limit per clinician, not for all
    wait_for(lambda: rate_limited_total(ingestion, "manual") == before + 1, 10, 0.1, "the refusal counted")
    with db.transaction() as cur:
        cur.execute("SELECT triggered_by, count(*) AS n FROM alerts GROUP BY triggered_by")
        assert {row["triggered_by"]: row["n"] for row in cur.fetchall()} == {"N02": 10, "N03": 1}
    clock.advance(120)  # two minutes on: the ten have slid out of the last minute
    assert raise_test_alert(flooder).status_code == 201


def test_the_manual_limit_slides_so_a_minute_boundary_does_not_double_it(ingestion, login_as, clock):
    """Ten test alerts at 10:00:50, then more at 10:01:30: a fixed per-minute window would take ten
    more at once, twenty within forty seconds. The sliding counter weighs the 10:00 minute by the
    half of it still within the last minute: five more are taken, the sixth is refused."""
    flooder = login_as("N04")

    def raise_test_alert():
        return requests.post(ingestion.url + "/api/v1/alerts/manual", timeout=10,
                             headers={"Authorization": f"Bearer {flooder}"}, json={"patient_id": "P002"})
    clock.set(dt.datetime(2026, 3, 11, 10, 0, 50, tzinfo=dt.UTC))
    assert [raise_test_alert().status_code for _ in range(11)] == [201] * 10 + [429]
    # At 10:01:30 plus the t seconds the requests take, the 10:00 minute weighs 10 x (30 - t) / 60:
    # five fit, and a sixth does not for as long as t < 6.
    clock.set(dt.datetime(2026, 3, 11, 10, 1, 30, tzinfo=dt.UTC))
    answers = [raise_test_alert() for _ in range(6)]
    assert [a.status_code for a in answers] == [201] * 5 + [429]
    # One more fits at 10:01:36, once 10 x (24 / 60) + 5 + 1 = 10.
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 6


def test_device_alerts_are_limited_per_device_key(start_service, db, clock):
    limited = start_service("alert-ingestion", env={"DEVICE_ALERTS_PER_SECOND": "5",
                                                    "DEVICE_API_KEYS": f"{DEVICE_KEY},second-device-key"})
    clock.set(dt.datetime(2026, 3, 11, 10, 0, 0, 20000, tzinfo=dt.UTC))  # just past a whole second
    body = {"patient_id": "P001", "alert_type": "HEART_RATE_HIGH", "value": 150}
    answers = [post_alert(limited, body) for _ in range(6)]
    other_key = post_alert(limited, body, key="second-device-key")
    assert [a.status_code for a in answers] == [201] * 5 + [429]
    assert answers[-1].headers["Retry-After"] == "1"
    assert other_key.status_code == 201
    assert rate_limited_total(limited, "device") == 1
    assert counts(db)["alerts"] == 6  # every accepted alarm stored, the refused one not
    clock.advance(2)  # the second after next: the five have slid out of the last second
    assert post_alert(limited, body).status_code == 201


def test_alert_list_filters_and_keyset_pagination(ingestion, login_as):
    for patient, alert_type in ([("P001", "CARDIAC_ARREST"), ("P002", "APNEA_DETECTED"),
                                               ("P001", "BP_ELEVATED"), ("P003", "FETAL_DISTRESS"),
                                               ("P001", "SENSOR_DISCONNECTED"), ("P005", "HEMORRHAGE"),
                                               ("P001", "TEMPERATURE_HIGH")]):
        assert post_alert(ingestion, {"patient_id": patient, "alert_type": alert_type}).status_code == 201
    auth = {"Authorization": f"Bearer {login_as('D01')}"}

    def page(**params):
        response = requests.get(ingestion.url + "/api/v1/alerts", params=params, headers=auth, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    seen, cursor = [], None
    while True:
        result = page(limit=3, **({"cursor": cursor} if cursor else {}))
        seen += [alert["alert_id"] for alert in result["alerts"]]
        cursor = result["next"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == 7  # newest first

    assert len(page(patient_id="P001")["alerts"]) == 4
    critical = page(severity="CRITICAL")["alerts"]
    assert {a["alert_type"] for a in critical} == {"CARDIAC_ARREST", "APNEA_DETECTED", "FETAL_DISTRESS",
                                                   "HEMORRHAGE"}
    assert len(page(severity="LOW,MEDIUM")["alerts"]) == 3
    assert len(page(severity=["LOW", "MEDIUM"], patient_id="P001")["alerts"]) == 3
    assert page(alert_type="HEMORRHAGE")["alerts"][0]["room"] == "226"
    assert page(since="2999-01-01T00:00:00Z")["alerts"] == []
    assert len(page(until="2999-01-01T00:00:00+01:00")["alerts"]) == 7

    for params, field in [({"limit": 501}, "limit"), ({"limit": "ten"}, "limit"),
                          ({"cursor": "abc"}, "cursor"), ({"cursor": "9" * 30}, "cursor"),
                          ({"severity": "HIGH,URGENT"}, "severity.1"), ({"since": "last week"}, "since")]:
        response = requests.get(ingestion.url + "/api/v1/alerts", params=params, headers=auth, timeout=5)
        assert response.status_code == 400 and response.json()["field"] == field, response.text
    assert requests.get(ingestion.url + "/api/v1/alerts", timeout=5).status_code == 401
    missing = requests.get(ingestion.url + "/api/v1/alerts/999999", headers=auth, timeout=5)
    assert missing.status_code == 404 and missing.json()["message"] == "no alert 999999"


def test_catalogue_for_clinicians_and_devices_patients_for_clinicians_only(ingestion, login_as):
    auth = {"Authorization": f"Bearer {login_as('N02')}"}
    for headers in (auth, {"X-API-Key": DEVICE_KEY}):
        types = requests.get(ingestion.url + "/api/v1/alert-types", headers=headers, timeout=5)
        assert types.status_code == 200
        by_type = {t["alert_type"]: t for t in types.json()["alert_types"]}
        assert len(by_type) == 35  # 33 seeded, UNMAPPED_DEVICE_ALARM (0009), DEVICE_SILENT (0020)
        assert by_type["HEART_RATE_HIGH"]["typical_min"] == 140
        assert by_type["CARDIAC_ARREST"]["routes_to"] == ["EMERGENCY_DOCTOR", "CARDIOLOGIST"]
    patients = requests.get(ingestion.url + "/api/v1/patients", headers=auth, timeout=5).json()
    assert {p["patient_id"]: p["room"] for p in patients["patients"]}["P001"] == "312"
    assert len(patients["patients"]) == 8
    # Names and dates of birth are not for devices, not even a bootstrap key.
    refused = requests.get(ingestion.url + "/api/v1/patients", headers={"X-API-Key": DEVICE_KEY}, timeout=5)
    assert refused.status_code == 401
    cardiac = requests.get(ingestion.url + "/api/v1/alert-types", params={"category": "CARDIAC"},
                           headers=auth, timeout=5).json()["alert_types"]
    assert cardiac and {t["category"] for t in cardiac} == {"CARDIAC"}
    assert requests.get(ingestion.url + "/api/v1/patients", timeout=5).status_code == 401
    wrong = requests.get(ingestion.url + "/api/v1/patients", headers={"X-API-Key": "nope"}, timeout=5)
    assert wrong.status_code == 401


def test_simulator_posts_realistic_alerts_through_the_api(ingestion, db):
    result = run_simulator(ingestion.url, DEVICE_KEY, "--rate", "50", "--count", "5", "--seed", "7")
    assert result.returncode == 0, result.stderr
    assert "sent 5, accepted 5, failed 0" in result.stdout
    with db.transaction() as cur:
        cur.execute("""
            SELECT a.source, a.device_id, a.value, t.unit, t.typical_min, t.typical_max
            FROM alerts a JOIN alert_types t USING (alert_type)""")
        rows = cur.fetchall()
    assert len(rows) == 5
    for row in rows:
        assert row["source"] == "SIMULATOR" and row["device_id"].startswith("SIM-")
        if row["unit"] is not None:
            assert row["typical_min"] <= row["value"] <= row["typical_max"]


def test_simulator_refuses_a_wrong_key(ingestion):
    result = run_simulator(ingestion.url, "wrong", "--count", "1")
    assert result.returncode != 0 and "answered 401" in result.stderr


def test_without_bootstrap_keys_only_registered_devices_post(service_env, login_as):
    """DEVICE_API_KEYS is only a bootstrap (the demo profile): without it the service starts and
    takes the registry's keys."""
    proc = ServiceProcess("alert-ingestion", {**service_env, "DEVICE_API_KEYS": ""})
    proc.start(timeout=20)
    try:
        body = {"patient_id": "P001", "alert_type": "CARDIAC_ARREST"}
        refused = requests.post(proc.url + "/api/v1/alerts", json=body, headers={"X-API-Key": DEVICE_KEY},
                                timeout=5)
        assert refused.status_code == 401
        registered = requests.post(proc.url + "/api/v1/devices", json={"name": "bed 312 monitor"},
                                   headers={"Authorization": f"Bearer {login_as('D01')}"}, timeout=5)
        assert registered.status_code == 201, registered.text
        accepted = requests.post(proc.url + "/api/v1/alerts", json=body,
                                 headers={"X-API-Key": registered.json()["key"]}, timeout=5)
        assert accepted.status_code == 201, accepted.text
    finally:
        proc.stop()


def test_openapi_document_is_valid_and_lists_every_route(app, ingestion):
    document = checked_document(app)
    served = requests.get(ingestion.url + "/api/v1/openapi.json", timeout=5).json()
    assert served == document and served["openapi"].startswith("3.1")
    # What the issue found: a manual alert's alert_type may be null, and the document says so.
    manual = document["components"]["schemas"]["ManualAlert"]["properties"]["alert_type"]
    assert {"type": "null"} in manual["anyOf"]
    assert document["paths"]["/api/v1/alerts"]["post"]["security"] == [{"deviceApiKey": []}]


def test_schema_valid_requests_are_accepted_and_answers_match_the_document(app, login_as):
    stored = post_alert_in_process(app, {"patient_id": "P001", "alert_type": "CARDIAC_ARREST"})
    supervisor = {"Authorization": f"Bearer {login_as('D01')}"}
    devices = [app.test_client().post("/api/v1/devices", json={"name": f"monitor {n}"}, headers=supervisor)
               for n in range(3)]
    # A device key and a supervising doctor's session: every route takes one of them.
    answered = fuzz(app, headers={**supervisor, "X-API-Key": DEVICE_KEY},
                    known_ids={"alert_id": [stored["alert_id"]], "patient_id": ["P001", "P002"],
                               "device_id": [d.get_json()["device"]["device_id"] for d in devices]})
    assert len(answered) == 16
    # The run reached past the refusals: every operation succeeded at least once, but a device
    # report, whose generated patient_id and alert_type name nothing (422), and a heartbeat of
    # the bootstrap key, which is no device of the registry (409; test_heartbeats beats).
    succeeded = {label for label, statuses in answered.items() if any(200 <= s < 300 for s in statuses)}
    assert set(answered) - succeeded == {"POST /api/v1/alerts", "POST /api/v1/devices/me/heartbeat"}, answered


def post_alert_in_process(app, body) -> dict:
    answer = app.test_client().post("/api/v1/alerts", json=body, headers={"X-API-Key": DEVICE_KEY})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()
