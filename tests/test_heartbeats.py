"""Heartbeats (issue 24): a device with an expected interval that stops is alarmed DEVICE_SILENT
after two intervals of test-clock time, the alarm ends when it is heard again, a silent gateway is
one alarm, and an MLLP keep-alive is a beat. The real alert ingestion service (web and worker,
the checker in the worker), PostgreSQL and the test clock."""
import datetime as dt
import uuid

import hl7
import pytest
import requests

from alert_ingestion import hl7_gateways, hl7_messages
from alert_ingestion.heartbeats import check_silent_devices
from alert_ingestion.mllp_client import MllpClient
from alert_ingestion.settings import GatewayRuleSettings
from tests.support import free_port, port_open, wait_for

DEVICE_NETWORKS = "127.0.0.0/8"
RULES = GatewayRuleSettings.load({"HL7_DEVICE_NETWORKS": DEVICE_NETWORKS}).gateway_rules


@pytest.fixture
def mllp_port():
    return free_port()


@pytest.fixture
def ingestion(start_service, mllp_port):
    service = start_service("alert-ingestion", env={
        "HL7_MLLP_PORT": str(mllp_port), "HL7_MLLP_BIND": "127.0.0.1",
        "HL7_DEVICE_NETWORKS": DEVICE_NETWORKS})
    wait_for(lambda: port_open(mllp_port), 30, what="the MLLP listener")
    return service


@pytest.fixture
def supervisor(login_as):
    return {"Authorization": f"Bearer {login_as('D01')}"}


def register(ingestion, supervisor, *, interval: int, **scope) -> tuple[int, str]:
    created = requests.post(f"{ingestion.url}/api/v1/devices", json={"name": "monitor", **scope},
                            headers=supervisor, timeout=10)
    assert created.status_code == 201, created.text
    device_id = created.json()["device"]["device_id"]
    answer = requests.put(f"{ingestion.url}/api/v1/devices/{device_id}/heartbeat",
                          json={"interval_seconds": interval}, headers=supervisor, timeout=10)
    assert answer.status_code == 200 and answer.json()["heartbeat_interval_seconds"] == interval, answer.text
    return device_id, created.json()["key"]


def heartbeat(ingestion, key) -> dict:
    answer = requests.post(f"{ingestion.url}/api/v1/devices/me/heartbeat", headers={"X-API-Key": key},
                           timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def silences(db, device_id=None) -> list[dict]:
    with db.transaction() as cur:
        cur.execute("SELECT * FROM device_silences WHERE %(d)s::bigint IS NULL OR device_id = %(d)s "
                    "ORDER BY silence_id", {"d": device_id})
        return cur.fetchall()


def hold_clock_until(clock, instant: dt.datetime, predicate, what: str):
    """Wait for predicate() while keeping the test clock at `instant` (it would run on with the
    wall clock): whenever the worker looks, it is that time."""
    def held():
        clock.set(instant)
        return predicate()
    return wait_for(held, 30, 0.1, what)


def test_a_silent_device_is_alarmed_at_two_intervals_and_resolves_when_heard(ingestion, supervisor, login_as,
                                                                             db, clock):
    clock.pin_rota()
    device_id, key = register(ingestion, supervisor, interval=60, patient_id="P001")
    beat = dt.datetime.fromisoformat(heartbeat(ingestion, key)["last_beat_at"])

    # 118 s later (two intervals less 2 s): nothing is due; the checker's own question says so.
    clock.set(beat + dt.timedelta(seconds=118))
    with db.transaction() as cur:
        assert check_silent_devices(cur)["alarmed"] == []
    assert silences(db, device_id) == []

    # Two intervals: alarmed, by the worker.
    (silence,) = hold_clock_until(clock, beat + dt.timedelta(seconds=120.5), lambda: silences(db, device_id),
                                  "the device to be alarmed silent")
    late = (silence["alarmed_at"] - beat).total_seconds()
    assert 118 <= late <= 122, late
    assert silence["severity"] == "HIGH" and silence["silent_since"] == beat
    assert silence["patient_id"] == "P001"
    with db.transaction() as cur:
        cur.execute("SELECT alert_type, patient_id, severity, occurred_at FROM alerts WHERE alert_id = %s",
                    (silence["alert_id"],))
        alert = cur.fetchone()
        cur.execute("SELECT routes_to FROM alert_types WHERE alert_type = 'DEVICE_SILENT'")
        routes = cur.fetchone()["routes_to"]
    assert (alert["alert_type"], alert["patient_id"], alert["severity"]) == ("DEVICE_SILENT", "P001", "HIGH")
    assert set(routes) == {"BIOMEDICAL_ENGINEER", "NURSE"}

    # The patient's record says since when its monitor is silent; the devices page shows the beat.
    nurse = {"Authorization": f"Bearer {login_as('N01')}"}
    patient = requests.get(f"{ingestion.url}/api/v1/patients/P001", headers=nurse, timeout=10).json()
    assert dt.datetime.fromisoformat(patient["monitor_silent_since"]) == beat

    # Heard again 5 minutes on: the alarm ends, with the silent period recorded.
    clock.set(beat + dt.timedelta(seconds=300))
    again = dt.datetime.fromisoformat(heartbeat(ingestion, key)["last_beat_at"])
    (ended,) = wait_for(lambda: [s for s in silences(db, device_id) if s["heard_at"] is not None], 30, 0.1,
                        "the silence to end")
    assert ended["heard_at"] == again
    assert ended["silent_seconds"] == pytest.approx((again - beat).total_seconds())
    with db.transaction() as cur:
        cur.execute("SELECT device_cleared_at FROM alerts WHERE alert_id = %s", (silence["alert_id"],))
        assert cur.fetchone()["device_cleared_at"] == again
    listed = requests.get(f"{ingestion.url}/api/v1/devices", headers=supervisor, timeout=10).json()["devices"]
    (mine,) = [d for d in listed if d["device_id"] == device_id]
    assert dt.datetime.fromisoformat(mine["last_beat_at"]) == again and mine["silent_since"] is None


def put_on_duty(db, clock, employee_id: str) -> None:
    """An override puts the clinician on duty for the hours around now (the rota's own engineers
    may be off)."""
    with db.transaction() as cur:
        cur.execute("INSERT INTO oncall_overrides (employee_id, starts_at, ends_at, reason) "
                    "VALUES (%s, %s, %s, 'test: on duty')",
                    (employee_id, clock.now() - dt.timedelta(hours=2), clock.now() + dt.timedelta(hours=6)))


def test_a_silent_ward_monitor_is_a_medium_incident_of_its_ward_owned_by_an_engineer_and_resolved_when_heard(
        start_service, supervisor, login_as, db, clock):
    """A device that monitors no patient (a ward's central station; one of the whole hospital)
    pages someone too: its own DEVICE_SILENT incident, MEDIUM, routed like any alarm to a
    biomedical engineer on duty, and resolved when the device is heard again."""
    clock.pin_rota()
    oncall = start_service("oncall")
    ingestion = start_service("alert-ingestion")
    incidents = start_service("incident-management", env={"ONCALL_URL": oncall.url})
    put_on_duty(db, clock, "E01")
    engineer = {"Authorization": f"Bearer {login_as('E01')}"}
    ward_device, ward_key = register(ingestion, supervisor, interval=60, name="ICU central station",
                                     ward="ICU")
    hospital_device, hospital_key = register(ingestion, supervisor, interval=60, name="Transport monitor 2")
    beat = dt.datetime.fromisoformat(heartbeat(ingestion, ward_key)["last_beat_at"])
    heartbeat(ingestion, hospital_key)

    clock.set(beat + dt.timedelta(seconds=118))
    with db.transaction() as cur:
        assert check_silent_devices(cur)["alarmed"] == []
    (silence,) = hold_clock_until(clock, beat + dt.timedelta(seconds=120.5),
                                  lambda: silences(db, ward_device), "the ward monitor to be alarmed silent")
    assert 118 <= (silence["alarmed_at"] - beat).total_seconds() <= 122
    assert (silence["severity"], silence["ward"], silence["patient_id"]) == ("MEDIUM", "ICU", None)

    def mine():
        answer = requests.get(f"{incidents.url}/api/v1/incidents", params={"assigned_to": "E01"},
                              headers=engineer, timeout=10)
        assert answer.status_code == 200, answer.text
        return {i["alert_type"] + "/" + (i["ward"] or "-"): i for i in answer.json()["incidents"]
                if i["status"] == "ASSIGNED"}
    owned = wait_for(lambda: len(mine()) == 2 and mine(), 30, 0.2, "both silences assigned to the engineer")
    ward, hospital = owned["DEVICE_SILENT/ICU"], owned["DEVICE_SILENT/-"]
    assert ward["alert_id"] == silence["alert_id"]
    assert (ward["severity"], ward["patient_id"], ward["device_name"]) == (
        "MEDIUM", None, "ICU central station")
    assert ward["title"] == "MEDIUM: Device silent, ICU central station (ICU)"
    assert ward["assignee"]["role"] == "BIOMEDICAL_ENGINEER"
    assert hospital["title"] == "MEDIUM: Device silent, Transport monitor 2 (hospital-wide)"
    detail = requests.get(f"{incidents.url}/api/v1/incidents/{ward['incident_id']}", headers=engineer,
                          timeout=10)
    assert detail.status_code == 200 and detail.json()["alert"]["patient_id"] is None
    acknowledged = requests.patch(f"{incidents.url}/api/v1/incidents/{ward['incident_id']}/acknowledge",
                                  json={}, headers=engineer, timeout=10)
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["status"] == "ACKNOWLEDGED"

    # Heard again: the silence ends and its incident is resolved by itself.
    clock.set(beat + dt.timedelta(seconds=300))
    heartbeat(ingestion, ward_key)

    def resolved():
        answer = requests.get(f"{incidents.url}/api/v1/incidents/{ward['incident_id']}", headers=engineer,
                              timeout=10).json()
        return answer if answer["status"] == "RESOLVED" else None
    done = wait_for(resolved, 30, 0.2, "the ward monitor's incident to be resolved")
    assert "the device was heard again" in done["resolution_notes"]
    assert (done["history"][-1]["action"], done["history"][-1]["actor_id"]) == ("RESOLVED", None)
    # The hospital-wide monitor, still silent, is still the engineer's.
    assert list(mine()) == ["DEVICE_SILENT/-"]


def gateway_connection(mllp_port):
    return MllpClient("127.0.0.1", mllp_port, 30)


def exchange(client, text: str) -> hl7.Message:
    return hl7.parse(client.send_message(text).strip(b"\x0b\x1c\r").decode())


def register_gateway(db, ingestion, supervisor, application: str, *, interval: int) -> tuple[int, str]:
    device_id, key = register(ingestion, supervisor, interval=interval)
    with db.transaction() as cur:
        hl7_gateways.register_gateway(cur, device_id=device_id, sending_application=application,
                                      sending_facility="ICU", reassign=True, rules=RULES)
    return device_id, key


def test_a_silent_gateway_is_one_alarm_not_one_per_bed(ingestion, supervisor, db, clock, mllp_port):
    clock.pin_rota()
    device_id, key = register_gateway(db, ingestion, supervisor, "GW_SILENT", interval=30)
    client = gateway_connection(mllp_port)
    try:
        for n, bed in enumerate(("P001", "P002", "P003")):
            ack = exchange(client, hl7_messages.report_alert(
                control_id=uuid.uuid4().hex[:20], alert_id=f"A{n}", patient_id=bed, occurred_at=clock.now(),
                application="GW_SILENT", facility="ICU", security=key))
            assert str(ack.segment("MSA")(1)) == "AA", str(ack)
    finally:
        client.close()
    with db.transaction() as cur:
        cur.execute("SELECT last_beat_at FROM devices WHERE device_id = %s", (device_id,))
        beat = cur.fetchone()["last_beat_at"]

    (silence,) = hold_clock_until(clock, beat + dt.timedelta(seconds=61), lambda: silences(db, device_id),
                                  "the gateway to be alarmed silent")
    assert silence["is_gateway"] and silence["severity"] == "MEDIUM" and silence["patient_id"] is None
    # Another tick later, still that one alarm, the gateway's own: none per bed, none twice.
    clock.set(beat + dt.timedelta(seconds=200))
    with db.transaction() as cur:
        check_silent_devices(cur)
        cur.execute("SELECT alert_id, patient_id, ward, severity FROM alerts "
                    "WHERE alert_type = 'DEVICE_SILENT'")
        assert cur.fetchall() == [{"alert_id": silence["alert_id"], "patient_id": None, "ward": None,
                                   "severity": "MEDIUM"}]
    assert len(silences(db)) == 1


def test_an_mllp_keep_alive_is_a_beat(ingestion, supervisor, db, clock, mllp_port):
    clock.pin_rota()
    device_id, key = register_gateway(db, ingestion, supervisor, "GW_KEEPALIVE", interval=60)
    clock.set(clock.now() + dt.timedelta(seconds=100))  # heard of never since registration: due at 120
    client = gateway_connection(mllp_port)
    try:
        ack = exchange(client, hl7_messages.keep_alive(
            control_id="KA1", now=clock.now(), application="GW_KEEPALIVE", facility="ICU", security=key))
        assert str(ack.segment("MSA")(1)) == "AA", str(ack)
        heard_at = clock.now()
        with db.transaction() as cur:
            cur.execute("SELECT last_beat_at, silent_after FROM devices WHERE device_id = %s", (device_id,))
            device = cur.fetchone()
        assert device["last_beat_at"] == pytest.approx(heard_at, abs=dt.timedelta(seconds=5))
        assert device["silent_after"] == device["last_beat_at"] + dt.timedelta(seconds=120)
        # An unknown sender's keep-alive is refused, and beats nothing.
        refused = exchange(client, hl7_messages.keep_alive(control_id="KA2", now=clock.now(),
                                                           application="NOBODY", facility="ICU"))
        assert str(refused.segment("MSA")(1)) == "AE"
    finally:
        client.close()
    # 130 s after registration the keep-alive (at 100 s) keeps it from being alarmed.
    clock.set(device["last_beat_at"] + dt.timedelta(seconds=30))
    with db.transaction() as cur:
        assert check_silent_devices(cur)["alarmed"] == []
