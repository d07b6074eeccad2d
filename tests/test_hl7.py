"""HL7 device alarms: gateways send IHE PCD-04 Report Alert (ORU^R40) over MLLP to alert
ingestion's worker and get HL7 acknowledgements; the status of each alarm's incident goes back to
the gateway as PCD-05 (ORA^R41). The sender is python-hl7's MLLPClient, the status receiver
python-hl7's asyncio MLLP server; the pipeline is real (on-call, alert ingestion and incident
management web and worker processes, PostgreSQL, RabbitMQ)."""
import asyncio
import os
import socket
import subprocess
import sys
import threading
import uuid

import hl7
import hl7.mllp
import pytest
import requests
from prometheus_client import REGISTRY

from alert_ingestion import hl7_gateways, hl7_messages
from alert_ingestion.hl7_listener import MllpListener
from alert_ingestion.mllp_client import MllpClient
from alert_ingestion.settings import GatewayRuleSettings
from healthguard.db import Database
from tests.support import REPO, free_port, metric_value, port_open, wait_for

pytestmark = pytest.mark.module_database  # the pipeline runs once for the module

APPLICATION, FACILITY = "INTELLIVUE", "ICU_GW"
ASYSTOLE = "196614^MDC_EVT_ECG_ASYSTOLE^MDC"
# Where the tests' gateways listen for PCD-05 (the receiver on loopback, the CLI's 10.20.0.5, an
# IPv6 listener); 192.168/16 is outside, as a hospital's database network would be.
DEVICE_NETWORKS = "127.0.0.0/8,10.0.0.0/8,fd00::/8"
RULES = GatewayRuleSettings.load({"HL7_DEVICE_NETWORKS": DEVICE_NETWORKS}).gateway_rules


class StatusReceiver:
    """The gateway's own MLLP listener for PCD-05: python-hl7's asyncio server in a thread,
    answering AA and keeping what it received."""

    def __init__(self):
        self.port = free_port()
        self.messages: list[hl7.Message] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _answer(self, reader, writer):
        try:
            while True:
                message = await reader.readmessage()
                self.messages.append(message)
                writer.writemessage(message.create_ack())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _shut_down(self):
        self._server.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    def __enter__(self):
        self._thread.start()
        start = hl7.mllp.start_hl7_server(self._answer, "127.0.0.1", self.port)
        self._server = asyncio.run_coroutine_threadsafe(start, self._loop).result(10)
        return self

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self._shut_down(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def statuses(self, alert_id: str) -> list[str]:
        return [str(m.segment("OBX")(5)) for m in list(self.messages)
                if str(m.segment("OBR")(3)) == alert_id]


@pytest.fixture(scope="module")
def receiver():
    with StatusReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def mllp_port():
    return free_port()


@pytest.fixture(scope="module")
def pipeline_settings(mllp_port):
    return {"env": {"HL7_MLLP_PORT": str(mllp_port), "HL7_MLLP_BIND": "127.0.0.1",
                    "HL7_DEVICE_NETWORKS": DEVICE_NETWORKS},
            "incident_env": {"ASSIGNMENT_RETRY_SECONDS": "0.5"}}


@pytest.fixture(scope="module")
def alert_pipeline(alert_pipeline, mllp_port):
    """The pipeline, once alert ingestion's MLLP listener accepts connections."""
    wait_for(lambda: port_open(mllp_port), 30, what="the MLLP listener")
    return alert_pipeline


@pytest.fixture
def gateway(api, db, login_as, receiver):
    """A registered gateway: a device of the registry (POST /api/v1/devices) tied to MSH-3/MSH-4,
    its PCD-05 endpoint the test receiver. Returns its device key."""
    created = register_device(api, login_as("D01"), "ICU gateway")
    register_gateway(db, created["device"]["device_id"], APPLICATION, FACILITY,
                     status_endpoint=f"127.0.0.1:{receiver.port}")
    return created["key"]


def register_device(api, token: str, name: str) -> dict:
    created = requests.post(api.ingestion + "/api/v1/devices", json={"name": name},
                            headers=api.auth(token), timeout=5)
    assert created.status_code == 201, created.text
    return created.json()


def register_gateway(db, device_id: int, application: str, facility: str = "", **options) -> dict:
    """What `python -m alert_ingestion.hl7_gateways register` does (its own test below), on the
    test's connection: the shared PostgreSQL has few to spare. Like the CLI, it moves the pair to
    this device (each test's gateway is a new device)."""
    with db.transaction() as cur:
        return hl7_gateways.register_gateway(cur, device_id=device_id, sending_application=application,
                                             sending_facility=facility, reassign=True, rules=RULES,
                                             **options)


def gateways_cli(database_url: str, *args) -> str:
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(REPO / "services"),
           "HL7_DEVICE_NETWORKS": DEVICE_NETWORKS}

    def run():
        done = subprocess.run([sys.executable, "-m", "alert_ingestion.hl7_gateways", *args],
                              env=env, capture_output=True, text=True, timeout=30)
        # The machine's PostgreSQL is shared: a moment without a free connection is not the CLI's fault.
        if "too many clients" in done.stderr:
            return None
        assert done.returncode == 0, done.stderr
        return done.stdout or "(no output)"
    return wait_for(run, 60, 0.5, "the gateway CLI to get a database connection")


class Gateway:
    """One MLLP connection of a gateway, through the MLLP client of our simulator and status sender."""

    def __init__(self, port: int, key: str = "", application=APPLICATION, facility=FACILITY):
        self.client = MllpClient("127.0.0.1", port, 30)
        self.key, self.application, self.facility = key, application, facility

    def exchange(self, text: str) -> hl7.Message:
        answer = self.client.send_message(text)
        return hl7.parse(answer.strip(b"\x0b\x1c\r").decode())

    def send(self, text: str) -> hl7.Message:
        """The message's acknowledgement. Like a gateway, it sends the message again while the
        answer is AR with ERR 207 (not stored now, e.g. no database connection free on this
        shared machine): retransmission is idempotent."""
        def answered():
            ack = self.exchange(text)
            return None if msa(ack)[0] == "AR" and err_code(ack) == "207" else ack
        return wait_for(answered, 60, 0.2, "an answer other than 'send it again'")

    def report(self, alert_id: str, *, clock, control_id=None, **fields) -> hl7.Message:
        fields.setdefault("patient_id", "P001")
        text = hl7_messages.report_alert(
            control_id=control_id or uuid.uuid4().hex[:20], alert_id=alert_id, occurred_at=clock.now(),
            application=self.application, facility=self.facility, security=self.key, **fields)
        return self.send(text)

    def close(self):
        self.client.close()


@pytest.fixture
def connect(mllp_port):
    opened = []

    def open_connection(key="", **kwargs) -> Gateway:
        opened.append(Gateway(mllp_port, key, **kwargs))
        return opened[-1]
    yield open_connection
    for connection in opened:
        connection.close()


def msa(ack: hl7.Message) -> tuple[str, str]:
    segment = ack.segment("MSA")
    return str(segment(1)), str(segment(2))


def err_text(ack: hl7.Message) -> str:
    """ERR-8 (why it was not accepted), '' without an ERR segment."""
    try:
        return str(ack.segment("ERR")(8))
    except KeyError:
        return ""


def err_location(ack: hl7.Message) -> str:
    """ERR-2 (where: segment^sequence^field), '' without an ERR segment."""
    try:
        return str(ack.segment("ERR")(2))
    except KeyError:
        return ""


def err_code(ack: hl7.Message) -> str:
    try:
        return str(ack.segment("ERR")(3)(1)(1))
    except KeyError:
        return ""


def alert_of(api, db, alert_id: str) -> dict:
    with db.transaction() as cur:
        cur.execute("SELECT alert_id FROM alerts WHERE source_alarm_id = %s", (alert_id,))
        row = cur.fetchone()
    answer = requests.get(f"{api.ingestion}/api/v1/alerts/{row['alert_id']}", timeout=5,
                          headers=api.auth(api.service_token))
    return answer.json()


def count(db, query: str, *args) -> int:
    with db.transaction() as cur:
        cur.execute(query, args)
        return cur.fetchone()["n"]


def test_a_pcd04_alarm_becomes_one_assigned_incident_answered_aa(api, doctors, gateway, connect, clock, db):
    accepted = metric_value(api.ingestion, "hl7_messages_total", result="accepted") or 0
    ack = connect(gateway).report("AL-1", clock=clock, control_id="MSG-0001", location="ICU^312^1")
    assert msa(ack) == ("AA", "MSG-0001")
    assert str(ack.segment("MSH")(9)) == "ACK^R40^ACK"

    alert = alert_of(api, db, "AL-1")
    incident = api.incident_of(alert["alert_id"])
    assert incident["alert_type"] == "CARDIAC_ARREST" and incident["severity"] == "CRITICAL"
    assert incident["assigned_to"] in doctors and incident["patient_id"] == "P001"
    assert alert["device_alarm"] == {
        "event_code": "196614^MDC_EVT_ECG_ASYSTOLE", "unmapped": False, "phase": "start",
        "state": "active", "priority": "PH", "unit": None, "location": "ICU/312/1",
        "equipment": "0123456789ABCDEF", "channel": "1", "cleared_at": None}
    assert metric_value(api.ingestion, "hl7_messages_total", result="accepted") == accepted + 1
    assert metric_value(api.ingestion, "hl7_ack_seconds_count") >= 1


def test_a_limit_alarm_maps_by_its_measured_value_with_the_unit(api, doctors, gateway, connect, clock, db):
    ack = connect(gateway).report("AL-SPO2", clock=clock, patient_id="P002",
                                  event="196670^MDC_EVT_LO_VAL_LT_LIM^MDC",
                                  measured="150456^MDC_PULS_OXIM_SAT_O2^MDC", value=82,
                                  unit="262688^MDC_DIM_PERCENT^MDC", priority="PM")
    assert msa(ack)[0] == "AA"
    alert = alert_of(api, db, "AL-SPO2")
    assert alert["alert_type"] == "O2_SATURATION_LOW"
    assert (alert["value"], alert["device_alarm"]["unit"]) == (82, "%")
    api.incident_of(alert["alert_id"])


def test_a_retransmission_changes_nothing_and_is_answered_aa(api, doctors, gateway, connect, clock, db):
    connection = connect(gateway)
    text = hl7_messages.report_alert(control_id="MSG-RE", alert_id="AL-RE", patient_id="P003",
                                     occurred_at=clock.now(), application=APPLICATION, facility=FACILITY,
                                     security=gateway)
    assert msa(connection.send(text)) == ("AA", "MSG-RE")
    incident = api.incident_of(alert_of(api, db, "AL-RE")["alert_id"])
    duplicates = metric_value(api.ingestion, "hl7_messages_total", result="duplicate") or 0

    assert msa(connection.send(text)) == ("AA", "MSG-RE")
    assert msa(connect(gateway).send(text)) == ("AA", "MSG-RE")  # on another connection too
    assert count(db, "SELECT count(*) AS n FROM alerts") == 1
    assert count(db, "SELECT count(*) AS n FROM incidents") == 1
    again = api.get(incident["incident_id"])
    assert again["alert_count"] == 1 and again["history"] == incident["history"]
    assert metric_value(api.ingestion, "hl7_messages_total", result="duplicate") == duplicates + 2


def test_start_continue_and_end_phases_make_one_incident_and_end_does_not_resolve_it(
        api, doctors, gateway, connect, clock, db):
    connection = connect(gateway)
    phases = [("start", "active"), ("continue", "active"), ("continue", "latched"), ("end", "inactive")]
    for phase, state in phases:
        ack = connection.report("AL-PH", clock=clock, patient_id="P004", phase=phase, state=state)
        assert msa(ack)[0] == "AA"
    alert = alert_of(api, db, "AL-PH")
    incident = api.incident_of(alert["alert_id"])
    assert count(db, "SELECT count(*) AS n FROM incidents") == 1
    assert incident["alert_count"] == 1 and incident["status"] == "ASSIGNED"
    assert (alert["device_alarm"]["phase"], alert["device_alarm"]["state"]) == ("end", "inactive")
    assert alert["device_alarm"]["cleared_at"] is not None


def test_a_malformed_message_gets_ae_with_err_and_the_connection_stays_usable(
        api, doctors, gateway, connect, clock, db):
    connection = connect(gateway)
    no_alert_id = hl7_messages.report_alert(control_id="MSG-BAD", alert_id="", patient_id="P005",
                                            occurred_at=clock.now(), application=APPLICATION,
                                            facility=FACILITY, security=gateway)
    ack = connection.send(no_alert_id)
    assert msa(ack) == ("AE", "MSG-BAD")
    assert str(ack.segment("ERR")(3)(1)(1)) == "101" and "OBR-3" in str(ack.segment("ERR")(8))

    ack = connection.send("this is not HL7")
    assert msa(ack)[0] == "AE" and str(ack.segment("ERR")(3)(1)(1)) == "100"
    ack = connection.report("AL-PAT", clock=clock, patient_id="P999")
    assert msa(ack)[0] == "AE" and "P999" in str(ack.segment("ERR")(8))

    assert msa(connection.report("AL-OK", clock=clock, patient_id="P005"))[0] == "AA"
    api.incident_of(alert_of(api, db, "AL-OK")["alert_id"])
    assert count(db, "SELECT count(*) AS n FROM alerts") == 1


def test_a_message_over_the_size_limit_gets_ae(api, gateway, connect, clock):
    connection = connect(gateway)
    huge = hl7_messages.report_alert(control_id="BIG", alert_id="AL-BIG", patient_id="P001",
                                     occurred_at=clock.now(), application=APPLICATION, facility=FACILITY,
                                     security=gateway, location="X" * 70_000)
    ack = connection.exchange(huge)
    assert msa(ack)[0] == "AE" and "longer than" in str(ack.segment("ERR")(8))


def with_field(text: str, segment: str, field: int, value: str) -> str:
    """The message with SEG-field replaced (field numbers as HL7 counts them; MSH-3 is MSH-3)."""
    lines = text.split("\r")
    index = next(i for i, line in enumerate(lines) if line.startswith(segment + "|"))
    fields = lines[index].split("|")
    fields[field - 1 if segment == "MSH" else field] = value
    lines[index] = "|".join(fields)
    return "\r".join(lines)


def test_messages_that_can_never_be_stored_get_ae_naming_the_field_and_no_traceback(
        api, doctors, gateway, connect, clock, alert_pipeline):
    """Issue 17: these were answered AR ("send it again"), with a traceback logged, and a gateway
    sent them again for ever."""
    log_file = alert_pipeline["ingestion"].log_path
    tracebacks = log_file.read_text(errors="replace").count("Traceback")
    connection = connect(gateway)
    good = hl7_messages.report_alert(control_id="MSG-NUL", alert_id="AL-NUL", patient_id="P001",
                                     occurred_at=clock.now(), application=APPLICATION, facility=FACILITY,
                                     security=gateway)
    when = hl7_messages.timestamp(clock.now())[:14]
    for text, location, named in (
            (with_field(good, "MSH", 3, APPLICATION + "\x00"), "MSH^1^3", "MSH-3"),
            (with_field(good, "PID", 3, "P0\x0001^^^HOSPITAL^PI"), "PID^1^3", "PID-3"),
            (with_field(good, "OBX", 5, "\x00"), "OBX^1^5", "OBX-5"),
            (with_field(good, "OBR", 7, when + "+9999"), "OBR^1^7", "OBR-7"),
            (with_field(good, "OBR", 7, when + "+2359"), "OBR^1^7", "OBR-7"),
            (with_field(good, "OBR", 7, when + "-1201"), "OBR^1^7", "OBR-7"),
            (with_field(good, "OBR", 7, when + "+0160"), "OBR^1^7", "OBR-7"),
            (with_field(good, "OBR", 7, "19991231235959+0000"), "OBR^1^7", "occurred_at"),
            (with_field(good, "OBR", 7, "29991231235959+0000"), "OBR^1^7", "occurred_at"),
            (with_field(good, "OBX", 3, "9" * 20 + "^MDC_EVT_ECG_ASYSTOLE^MDC"), "OBX^1^3", "OBX-3"),
            # python-hl7 would repeat a CR a billion times, or fail on a count that is no number.
            (with_field(good, "PID", 3, "P001\\.sp999999999\\^^^HOSPITAL^PI"), "PID^1^3", "PID-3"),
            (with_field(good, "OBR", 3, "AL\\.spx\\NUL"), "OBR^1^3", "OBR-3"),
            # Too long for the index of alert identifiers (random, so it does not compress).
            (with_field(good, "OBR", 3, "".join(uuid.uuid4().hex for _ in range(100))), "OBR^1^3", "OBR-3")):
        ack = connection.exchange(text)
        assert msa(ack) == ("AE", "MSG-NUL"), (text, err_text(ack))
        assert err_location(ack) == location and named in err_text(ack), (text, str(ack))
    # The connection still serves, and the message without the fault is stored.
    assert msa(connection.send(good))[0] == "AA"
    assert log_file.read_text(errors="replace").count("Traceback") == tracebacks


def test_an_unknown_sender_gets_ae_and_is_counted(api, gateway, connect, clock, db):
    """AE, not AR: sending it again cannot make the sender known."""
    rejected = metric_value(api.ingestion, "hl7_messages_total", result="rejected") or 0
    stranger = connect(gateway, application="UNKNOWN_GW")
    assert msa(stranger.report("AL-X1", clock=clock))[0] == "AE"
    wrong_key = connect("hgd_not-the-key")
    ack = wrong_key.report("AL-X2", clock=clock)
    assert msa(ack)[0] == "AE" and "unknown sender" in err_text(ack) and err_location(ack) == "MSH^1^3"
    assert msa(connect("").report("AL-X3", clock=clock))[0] == "AE"  # no key, address not allowlisted
    assert count(db, "SELECT count(*) AS n FROM alerts") == 0
    assert metric_value(api.ingestion, "hl7_messages_total", result="rejected") == rejected + 3


def test_an_allowlisted_address_needs_no_key(api, doctors, db, login_as, connect, clock):
    created = register_device(api, login_as("D01"), "Lab gateway")
    register_gateway(db, created["device"]["device_id"], "LAB_GW", allowed_addresses=["127.0.0.1/32"])
    assert msa(connect("", application="LAB_GW", facility="").report("AL-LAB", clock=clock))[0] == "AA"


def test_a_gateway_outside_its_scope_or_revoked_gets_ae(api, db, login_as, connect, clock):
    with db.transaction() as cur:
        cur.execute("SELECT patient_id, ward FROM patients WHERE status = 'ADMITTED' ORDER BY patient_id")
        patients = cur.fetchall()
    ward = patients[0]["ward"]
    elsewhere = next(p["patient_id"] for p in patients if p["ward"] != ward)
    supervisor = login_as("D01")
    created = requests.post(api.ingestion + "/api/v1/devices", json={"name": "Ward gateway", "ward": ward},
                            headers=api.auth(supervisor), timeout=5).json()
    register_gateway(db, created["device"]["device_id"], "WARD_ONLY")
    connection = connect(created["key"], application="WARD_ONLY", facility="")
    assert msa(connection.report("AL-IN", clock=clock, patient_id=patients[0]["patient_id"]))[0] == "AA"
    outside = connection.report("AL-OUT", clock=clock, patient_id=elsewhere)
    assert msa(outside)[0] == "AE" and err_location(outside) == "PID^1^3"

    revoked = requests.delete(f"{api.ingestion}/api/v1/devices/{created['device']['device_id']}",
                              headers=api.auth(supervisor), timeout=5)
    assert revoked.status_code == 200, revoked.text
    ack = connection.report("AL-AFTER-REVOKE", clock=clock, patient_id=patients[0]["patient_id"])
    assert msa(ack)[0] == "AE" and "unknown sender" in err_text(ack)
    assert count(db, "SELECT count(*) AS n FROM alerts") == 1


def test_the_cli_registers_and_lists_gateways(api, db, login_as, module_service_env):
    device = register_device(api, login_as("D01"), "Ward gateway")["device"]
    url = module_service_env["DATABASE_URL"]
    gateways_cli(url, "register", "--device-id", str(device["device_id"]), "--application", "WARD_GW",
                 "--facility", "W3", "--allow", "10.20.0.0/24", "--status-endpoint", "10.20.0.5:2576")
    listed = gateways_cli(url, "list")
    assert "WARD_GW^W3" in listed and "10.20.0.0/24" in listed and "10.20.0.5:2576" in listed
    with db.transaction() as cur:
        cur.execute("SELECT status_host, status_port FROM hl7_gateways WHERE sending_application = 'WARD_GW'")
        assert cur.fetchone() == {"status_host": "10.20.0.5", "status_port": 2576}


def put_gateway(api, token: str | None, device_id, body: dict) -> requests.Response:
    return requests.put(f"{api.ingestion}/api/v1/devices/{device_id}/hl7-gateway", json=body,
                        headers=api.auth(token) if token else {}, timeout=5)


def listed_gateways(api, token: str) -> dict[str, dict]:
    """GET /api/v1/hl7-gateways, by MSH-3^MSH-4."""
    answer = requests.get(api.ingestion + "/api/v1/hl7-gateways", headers=api.auth(token), timeout=5)
    assert answer.status_code == 200, answer.text
    return {f"{g['sending_application']}^{g['sending_facility']}": g for g in answer.json()["gateways"]}


def test_a_supervisor_registers_a_gateway_over_rest_and_its_alarms_are_answered_aa(
        api, doctors, login_as, connect, clock, receiver):
    supervisor = login_as("D01")
    created = register_device(api, supervisor, "OR IntelliVue gateway")
    device_id = created["device"]["device_id"]
    endpoint = f"127.0.0.1:{receiver.port}"
    answer = put_gateway(api, supervisor, device_id, {
        "sending_application": "OR_MONITORS", "sending_facility": "OR_GW",
        "allowed_addresses": ["10.30.0.0/24", "10.31.0.7"], "status_endpoint": endpoint})
    assert answer.status_code == 200, answer.text
    gateway = answer.json()
    assert {key: value for key, value in gateway.items() if key not in ("gateway_id", "created_at")} == {
        "device_id": device_id, "device_name": "OR IntelliVue gateway", "device_revoked": False,
        "sending_application": "OR_MONITORS", "sending_facility": "OR_GW",
        "allowed_addresses": ["10.30.0.0/24", "10.31.0.7/32"], "status_endpoint": endpoint}

    sender = connect(created["key"], application="OR_MONITORS", facility="OR_GW")
    assert msa(sender.report("AL-REST-1", clock=clock, control_id="MSG-REST-1")) == ("AA", "MSG-REST-1")

    # Sent again for the same device and pair: the same gateway, its addresses replaced.
    again = put_gateway(api, supervisor, device_id, {"sending_application": "OR_MONITORS",
                                                     "sending_facility": "OR_GW", "status_endpoint": None})
    assert again.status_code == 200, again.text
    assert again.json()["gateway_id"] == gateway["gateway_id"]
    assert (again.json()["allowed_addresses"], again.json()["status_endpoint"]) == ([], None)
    listed = listed_gateways(api, supervisor)["OR_MONITORS^OR_GW"]
    assert listed == again.json()
    assert msa(sender.report("AL-REST-2", clock=clock))[0] == "AA"  # still its key in MSH-8


def test_gateway_registration_over_rest_refuses_with_json_errors(api, login_as):
    supervisor, nurse = login_as("D01"), login_as("N02")
    owner = register_device(api, supervisor, "Owner gateway")["device"]["device_id"]
    other = register_device(api, supervisor, "Other gateway")["device"]["device_id"]
    taken = {"sending_application": "TAKEN_GW", "sending_facility": "W1"}
    assert put_gateway(api, supervisor, owner, taken).status_code == 200

    def refused(token, device_id, body, status, field=None):
        answer = put_gateway(api, token, device_id, body)
        assert answer.status_code == status, (body, answer.text)
        error = answer.json()
        assert error["status"] == status and error["message"], error
        if field is not None:
            assert error.get("field") == field, (body, error)
        return error

    refused(None, other, taken, 401)
    refused(nurse, other, taken, 403)
    nurse_list = requests.get(api.ingestion + "/api/v1/hl7-gateways", headers=api.auth(nurse), timeout=5)
    assert nurse_list.status_code == 403 and nurse_list.json()["status"] == 403
    for unknown in (999_999, 2**64):
        refused(supervisor, unknown, taken, 404)
    # Another device may not take a pair that is already a gateway's: it stays where it was.
    assert "device " + str(owner) in refused(supervisor, other, taken, 409, "sending_application")["message"]
    revoked = register_device(api, supervisor, "Revoked gateway")["device"]["device_id"]
    assert put_gateway(api, supervisor, revoked, {"sending_application": "OLD_GW"}).status_code == 200
    assert requests.delete(f"{api.ingestion}/api/v1/devices/{revoked}", headers=api.auth(supervisor),
                           timeout=5).status_code == 200
    refused(supervisor, revoked, {"sending_application": "NEW_GW"}, 409)

    for body, field in (
            ({"sending_application": ""}, "sending_application"),
            ({"sending_application": "   "}, "sending_application"),
            ({"sending_application": "OR|GW"}, "sending_application"),
            ({"sending_application": "OR^GW"}, "sending_application"),
            ({"sending_application": "OR_GW", "sending_facility": "W~1"}, "sending_facility"),
            ({"sending_application": "OR\\GW"}, "sending_application"),
            ({"sending_application": "OR&GW"}, "sending_application"),
            ({"sending_application": "OR\rMSH"}, "sending_application"),
            ({"sending_application": "OR_GW", "sending_facility": "W\x07"}, "sending_facility"),
            ({"sending_application": "OR_GW", "allowed_addresses": ["10.20.0.0/16", "10.20.0.0/33"]},
             "allowed_addresses.1"),
            # Keyless HL7 from anywhere, or from a whole hospital network: wider than a /16.
            ({"sending_application": "OR_GW", "allowed_addresses": ["0.0.0.0/0"]}, "allowed_addresses.0"),
            ({"sending_application": "OR_GW", "allowed_addresses": ["10.20.0.7", "::/0"]},
             "allowed_addresses.1"),
            ({"sending_application": "OR_GW", "allowed_addresses": ["10.0.0.0/8"]}, "allowed_addresses.0"),
            ({"sending_application": "OR_GW", "allowed_addresses": ["fd00::/48"]}, "allowed_addresses.0"),
            # The worker connects to a status endpoint: never outside the device networks.
            ({"sending_application": "OR_GW", "status_endpoint": "192.168.7.9:5432"}, "status_endpoint"),
            ({"sending_application": "OR_GW", "status_endpoint": "[2001:db8::5]:2576"}, "status_endpoint"),
            ({"sending_application": "OR_GW", "allowed_addresses": ["gateway.local"]}, "allowed_addresses.0"),
            ({"sending_application": "OR_GW", "status_endpoint": "10.20.0.5"}, "status_endpoint"),
            ({"sending_application": "OR_GW", "status_endpoint": "10.20.0.5:65536"}, "status_endpoint"),
            ({"sending_application": "OR_GW", "status_endpoint": "bad host:2576"}, "status_endpoint"),
            ({"sending_application": "OR_GW", "status_endpoint": "fd00::5:2576"}, "status_endpoint")):
        refused(supervisor, other, body, 422, field)
    # Beyond the document's limits: 400, as everywhere.
    refused(supervisor, other, {"sending_application": "A" * 65}, 400, "sending_application")
    refused(supervisor, other, {"sending_application": "OR_GW",
                                "allowed_addresses": [f"10.0.{n}.0/24" for n in range(33)]},
            400, "allowed_addresses")

    listed = listed_gateways(api, supervisor)
    assert set(listed) == {"TAKEN_GW^W1", "OLD_GW^"}  # nothing refused was stored
    assert listed["TAKEN_GW^W1"]["device_id"] == owner and not listed["TAKEN_GW^W1"]["device_revoked"]
    assert listed["OLD_GW^"]["device_revoked"] and listed["OLD_GW^"]["device_name"] == "Revoked gateway"
    # An IPv6 listener is written in brackets, and answered so.
    v6 = put_gateway(api, supervisor, other,
                     {"sending_application": "V6_GW", "status_endpoint": "[fd00::5]:2576"})
    assert v6.status_code == 200 and v6.json()["status_endpoint"] == "[fd00::5]:2576", v6.text


def test_keyless_hl7_from_anywhere_and_a_status_endpoint_at_the_database_are_refused(
        api, doctors, db, login_as, connect, clock, alert_pipeline):
    """Issue 17: a gateway was accepted with allowed_addresses ["0.0.0.0/0"], and a status
    endpoint may point at any host:port, the database's included: the worker connects there."""
    supervisor = login_as("D01")
    created = register_device(api, supervisor, "Open gateway")
    device_id = created["device"]["device_id"]
    for addresses in (["0.0.0.0/0"], ["::/0"], ["10.20.0.5", "0.0.0.0/0"]):
        anywhere = put_gateway(api, supervisor, device_id, {"sending_application": "OPEN_GW",
                                                            "allowed_addresses": addresses})
        assert anywhere.status_code == 422, anywhere.text
        error = anywhere.json()
        assert error["field"] == f"allowed_addresses.{len(addresses) - 1}", error
        assert "wider than a /" in error["message"]
    database = put_gateway(api, supervisor, device_id, {"sending_application": "OPEN_GW",
                                                        "status_endpoint": "192.168.7.9:5432"})
    assert database.status_code == 422 and database.json()["field"] == "status_endpoint", database.text
    assert "outside the device networks" in database.json()["message"]
    assert "OPEN_GW^" not in listed_gateways(api, supervisor)
    # Nothing is keyless from anywhere: a message without the key is refused.
    assert msa(connect("", application="OPEN_GW", facility="").report("AL-OPEN", clock=clock))[0] == "AE"

    # An endpoint stored before the rule (or a name that resolves elsewhere since) is never
    # contacted: the status stays unsent, saying why.
    register_gateway(db, device_id, "OLD_GW", status_endpoint="127.0.0.1:2576")
    with db.transaction() as cur:
        cur.execute("UPDATE hl7_gateways SET status_host = '192.168.7.9', status_port = 5432 "
                    "WHERE sending_application = 'OLD_GW'")
    assert msa(connect(created["key"], application="OLD_GW", facility="").report(
        "AL-OLD", clock=clock, patient_id="P008"))[0] == "AA"

    def why_unsent():
        with db.transaction() as cur:
            cur.execute("SELECT sent_at, last_error FROM hl7_status_reports")
            rows = cur.fetchall()
        return rows and rows[0]["sent_at"] is None and rows[0]["last_error"]
    assert "outside the device networks" in wait_for(why_unsent, 30, 0.2, "the status refused")


def test_an_unknown_mdc_code_is_stored_flagged_and_paged(api, doctors, gateway, connect, clock, db):
    ack = connect(gateway).report("AL-NEW", clock=clock, patient_id="P006",
                                  event="199999^MDC_EVT_SOMETHING_NEW^MDC")
    assert msa(ack)[0] == "AA"
    alert = alert_of(api, db, "AL-NEW")
    assert alert["alert_type"] == "UNMAPPED_DEVICE_ALARM"
    assert alert["device_alarm"]["unmapped"] is True
    assert alert["device_alarm"]["event_code"] == "199999^MDC_EVT_SOMETHING_NEW"
    assert api.incident_of(alert["alert_id"])["severity"] == "HIGH"


def test_pcd05_status_reaches_the_gateway_when_the_incident_is_delivered_acknowledged_resolved(
        api, doctors, gateway, connect, clock, db, receiver):
    assert msa(connect(gateway).report("AL-ST", clock=clock, patient_id="P007"))[0] == "AA"
    incident = api.incident_of(alert_of(api, db, "AL-ST")["alert_id"])
    wait_for(lambda: receiver.statuses("AL-ST") == ["delivered"], 15, what="the delivered status")

    token = doctors[incident["assigned_to"]]
    assert api.act(token, incident["incident_id"], "acknowledge").status_code == 200
    wait_for(lambda: receiver.statuses("AL-ST") == ["delivered", "accepted"], 15, what="the accepted status")
    assert api.act(token, incident["incident_id"], "start").status_code == 200
    assert api.act(token, incident["incident_id"], "resolve",
                   {"resolution_notes": "rhythm restored"}).status_code == 200
    wait_for(lambda: receiver.statuses("AL-ST") == ["delivered", "accepted", "resolved"], 15,
             what="the resolved status")
    status = [m for m in receiver.messages if str(m.segment("OBR")(3)) == "AL-ST"][1]
    assert str(status.segment("MSH")(9)) == "ORA^R41^ORA_R41"
    assert str(status.segment("MSH")(5)) == APPLICATION and str(status.segment("PID")(3)) == "P007"


def test_a_status_the_gateway_cannot_take_is_counted_and_kept_for_retry(
        api, doctors, alert_pipeline, db, connect, clock):
    created = register_device(api, doctors["D01"], "Closed gateway")
    register_gateway(db, created["device"]["device_id"], "CLOSED",
                     status_endpoint=f"127.0.0.1:{free_port()}")  # nobody listens there
    failed = metric_value(api.ingestion, "hl7_status_reports_total", result="failed") or 0
    closed = connect(created["key"], application="CLOSED", facility="")
    ack = closed.report("AL-CL", clock=clock, patient_id="P008")
    assert msa(ack)[0] == "AA"
    api.incident_of(alert_of(api, db, "AL-CL")["alert_id"])
    wait_for(lambda: (metric_value(api.ingestion, "hl7_status_reports_total", result="failed") or 0) > failed,
             15, what="the failed attempt counted")
    with db.transaction() as cur:
        cur.execute("SELECT sent_at, attempts, last_error FROM hl7_status_reports")
        (report,) = cur.fetchall()
    assert report["sent_at"] is None and report["attempts"] >= 1 and "cannot reach" in report["last_error"]


def test_the_simulator_speaks_hl7(api, gateway, mllp_port, db, clock, capsys):
    from alert_ingestion import simulator
    clock.set_offset(0)  # the simulator's monitors stamp their alarms with the wall clock
    assert simulator.main(["--protocol", "hl7", "--mllp", f"127.0.0.1:{mllp_port}", "--application",
                           APPLICATION, "--facility", FACILITY, "--url", api.ingestion, "--api-key", gateway,
                           "--count", "8", "--rate", "50", "--seed", "7"]) == 0
    assert "sent 8, accepted 8, failed 0" in capsys.readouterr().out
    assert count(db, "SELECT count(*) AS n FROM alerts WHERE hl7_gateway_id IS NOT NULL") >= 4


def test_a_thousand_messages_over_four_connections_all_become_incidents_and_no_ack_is_lost(
        api, doctors, alert_pipeline, gateway, connect, clock, db):
    with db.transaction() as cur:
        cur.execute("SELECT patient_id FROM patients WHERE status = 'ADMITTED' ORDER BY patient_id")
        patients = [row["patient_id"] for row in cur.fetchall()]
    types = [ASYSTOLE, "^MDC_EVT_APNEA^MDC", "^MDC_EVT_ECG_V_TACHY^MDC", "^MDC_EVT_DESAT^MDC",
             "^MDC_EVT_ECG_SINUS_TACHY^MDC"]
    connections = [connect(gateway) for _ in range(4)]
    answers = [[] for _ in connections]

    def send(index: int) -> None:
        for n in range(index, 1000, 4):
            control_id = f"BULK-{n:04d}"
            ack = connections[index].report(f"AL-BULK-{n:04d}", clock=clock, control_id=control_id,
                                            patient_id=patients[n % len(patients)],
                                            event=types[n // len(patients) % len(types)])
            answers[index].append((control_id, msa(ack), err_text(ack)))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)  # a bound for a hung connection, not a speed target (bench/ measures that)
    received = [answer for per_connection in answers for answer in per_connection]
    assert len(received) == 1000
    refused = [(control_id, ack, why) for control_id, ack, why in received if ack != ("AA", control_id)]
    assert refused == [], alert_pipeline["ingestion"].log()
    # Each alarm is an incident of its own, or (a repeat of a patient's alarm of that type) joins it.
    wait_for(lambda: count(db, """
        SELECT count(*) AS n FROM alerts a
        WHERE EXISTS (SELECT 1 FROM incidents i WHERE i.alert_id = a.alert_id)
           OR EXISTS (SELECT 1 FROM incident_alerts l WHERE l.alert_id = a.alert_id)""") == 1000,
             600, 0.5, "1,000 alarms in incidents")  # a bound, not a speed target
    assert count(db, "SELECT count(*) AS n FROM alerts") == 1000


@pytest.fixture
def small_listener(database_url):
    """Starts a second listener in this process, on the module's database, with small limits
    (MllpListener's settings as keywords)."""
    database = Database(database_url, maxconn=2)
    started = []

    def start(**settings) -> MllpListener:
        started.append(MllpListener(database, host="127.0.0.1", port=free_port(), max_message_bytes=65536,
                                    **settings).start())
        # Not probed with a connection: the listener would count it as open for a moment.
        assert started[-1].listening.wait(15), "the small listener did not start"
        return started[-1]
    yield start
    for listener in started:
        listener.stop()
    database.close()


def closed_by_the_listener(connection: socket.socket) -> bool:
    """True once the listener closed the connection (end of stream), waiting up to 15 s. One
    recv(): b"" is the end, never read again."""
    connection.settimeout(15)
    try:
        return connection.recv(4096) == b""
    except ConnectionResetError:
        return True


def closed_total(reason: str) -> float:
    return REGISTRY.get_sample_value("hl7_connections_closed_total", {"reason": reason}) or 0


def connect_from(address: str, port: int) -> socket.socket:
    """A plain TCP connection to the listener from a loopback address of 127/8 (any of them is
    this machine), with a timeout so that nothing waits on it for ever."""
    return socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(address, 0))


def test_one_client_cannot_hold_more_connections_than_allowed_nor_keep_an_idle_one(
        api, doctors, gateway, small_listener, clock, db):
    too_many, idle, unauthenticated = closed_total("too_many"), closed_total("idle"), \
        closed_total("unauthenticated")
    # Patient for the first part: two connections stay open while the first is answered, however
    # long this shared machine takes (a one-second limit could close the second meanwhile).
    patient = small_listener(max_connections=2, reserved_connections=0, idle_seconds=300,
                             msh_deadline_seconds=300)
    first, second = Gateway(patient.port, gateway), Gateway(patient.port, gateway)
    try:
        assert msa(first.report("AL-CAP-1", clock=clock))[0] == "AA"
        assert msa(second.report("AL-CAP-2", clock=clock, patient_id="P002"))[0] == "AA"
        # A third connection while two are open is closed as soon as it opens.
        with socket.create_connection(("127.0.0.1", patient.port), timeout=5) as third:
            assert closed_by_the_listener(third)
        assert closed_total("too_many") == too_many + 1
    finally:
        first.close()
        second.close()
    wait_for(lambda: patient.open_connections == 0, 15, 0.05, "the listener to see both closed")

    # Half a message, or nothing: a stranger's connection is closed at the MSH deadline; a
    # gateway's, once authenticated, when it has been idle.
    impatient = small_listener(max_connections=4, reserved_connections=0, idle_seconds=1,
                               msh_deadline_seconds=1)
    authenticated = Gateway(impatient.port, gateway)
    assert msa(authenticated.report("AL-CAP-IDLE", clock=clock, patient_id="P004"))[0] == "AA"
    with socket.create_connection(("127.0.0.1", impatient.port), timeout=5) as stuck, \
            socket.create_connection(("127.0.0.1", impatient.port), timeout=5) as silent:
        stuck.sendall(b"\x0bMSH|^~\\&|" + APPLICATION.encode())
        assert closed_by_the_listener(stuck)
        assert closed_by_the_listener(silent)
    assert closed_by_the_listener(authenticated.client.socket)
    authenticated.close()
    wait_for(lambda: closed_total("unauthenticated") == unauthenticated + 2, 5, 0.05,
             "both strangers' closes counted")
    wait_for(lambda: closed_total("idle") == idle + 1, 5, 0.05, "the idle gateway's close counted")
    # Their places are free again: a gateway connects and is answered.
    again = Gateway(impatient.port, gateway)
    try:
        assert msa(again.report("AL-CAP-3", clock=clock, patient_id="P003"))[0] == "AA"
    finally:
        again.close()
    assert alert_of(api, db, "AL-CAP-3")["patient_id"] == "P003"


def test_100_idle_connections_from_8_addresses_do_not_keep_a_gateway_out(
        api, doctors, alert_pipeline, gateway, connect, clock, db, mllp_port):
    """The attack of issue 17: plain TCP connections from 127.0.0.2-9 that never send anything,
    against the worker's listener with its default settings (64 connections, 4 per address not
    yet authenticated, 5 s to send an MSH)."""
    def closed(reason):
        return metric_value(api.ingestion, "hl7_connections_closed_total", reason=reason) or 0
    per_address, unauthenticated = closed("per_address"), closed("unauthenticated")
    addresses = [f"127.0.0.{n}" for n in range(2, 10)]
    idle = []
    try:
        for n in range(100):
            idle.append(connect_from(addresses[n % len(addresses)], mllp_port))
        # A registered gateway is answered as usual (its own wait for an answer, not a race).
        assert msa(connect(gateway).report("AL-STARVED", clock=clock, patient_id="P002"))[0] == "AA"
        assert alert_of(api, db, "AL-STARVED")["patient_id"] == "P002"
        # Every idle connection is closed by the listener: refused as it opened (beyond 4 from
        # one address) or at the MSH deadline; each counted by its reason.
        for connection in idle:
            assert closed_by_the_listener(connection)
    finally:
        for connection in idle:
            connection.close()
    wait_for(lambda: closed("per_address") - per_address + closed("unauthenticated") - unauthenticated
             == 100, 15, 0.2, "all 100 closes counted")
    assert closed("per_address") > per_address  # at most 4 of each address's 12 or 13 were kept


def test_gateways_allowlisted_addresses_keep_their_share_of_the_connections(
        api, doctors, db, login_as, small_listener, clock):
    """Strangers from many addresses fill every connection they may; a gateway sending from its
    allowlisted address (no key) still gets one of the reserved ones."""
    created = register_device(api, login_as("D01"), "Bedside gateway")
    register_gateway(db, created["device"]["device_id"], "BEDSIDE_GW", allowed_addresses=["127.0.0.1/32"])
    reserved_before, refused_before = closed_total("reserved"), \
        closed_total("per_address") + closed_total("reserved")
    listener = small_listener(max_connections=8, reserved_connections=2, max_connections_per_address=2,
                              idle_seconds=300, msh_deadline_seconds=300)
    strangers = []
    try:
        for n in range(24):
            strangers.append(connect_from(f"127.0.0.{2 + n % 8}", listener.port))
        # 2 from each of 8 addresses would be 16: only the 6 not reserved are kept.
        wait_for(lambda: listener.open_connections == 6
                 and closed_total("per_address") + closed_total("reserved") == refused_before + 18, 15, 0.05,
                 "the strangers' connections refused")
        with connect_from("127.0.0.10", listener.port) as one_more:
            assert closed_by_the_listener(one_more)
        wait_for(lambda: closed_total("reserved") > reserved_before, 5, 0.05, "a refusal for the reserve")
        sender = Gateway(listener.port, "", application="BEDSIDE_GW", facility="")
        try:
            assert msa(sender.report("AL-RESERVED", clock=clock, patient_id="P005"))[0] == "AA"
        finally:
            sender.close()
    finally:
        for connection in strangers:
            connection.close()
    assert alert_of(api, db, "AL-RESERVED")["patient_id"] == "P005"


def test_a_connection_that_sends_no_valid_msh_in_time_is_closed_and_a_gateways_is_not(
        api, doctors, gateway, small_listener, clock):
    listener = small_listener(idle_seconds=300, msh_deadline_seconds=1)
    unauthenticated = closed_total("unauthenticated")
    sender = Gateway(listener.port, gateway)
    try:
        assert msa(sender.report("AL-MSH-1", clock=clock))[0] == "AA"
        # Messages do not buy time: only a registered gateway's does.
        stranger = Gateway(listener.port, "", application="NOBODY")
        try:
            assert msa(stranger.report("AL-MSH-X", clock=clock))[0] == "AE"
            assert closed_by_the_listener(stranger.client.socket)
        finally:
            stranger.close()
        with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as silent:
            assert closed_by_the_listener(silent)
        wait_for(lambda: closed_total("unauthenticated") == unauthenticated + 2, 5, 0.05,
                 "both closes counted")
        # Opened before both, so past its own deadline: the gateway's connection still serves.
        assert msa(sender.report("AL-MSH-2", clock=clock, patient_id="P002"))[0] == "AA"
    finally:
        sender.close()


def test_the_worker_stops_cleanly_with_gateways_connected_and_outlives_a_taken_port(
        api, doctors, alert_pipeline, gateway, connect, clock, mllp_port):
    """Last in the module: it restarts the ingestion worker."""
    ingestion = alert_pipeline["ingestion"]
    assert msa(connect(gateway).report("AL-BEFORE", clock=clock))[0] == "AA"  # a connection left open
    assert ingestion.stop_worker() == 0

    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", mllp_port))
    blocker.listen()
    try:
        ingestion.start_worker()
        wait_for(lambda: metric_value(ingestion.url, "hl7_listener_up") == 0, 15, what="the listener down")
        # The worker runs on: its outbox relay still carries JSON alarms to incidents.
        api.incident_of(api.post_alert("P003", "APNEA_DETECTED"), timeout=60)
    finally:
        blocker.close()
    wait_for(lambda: metric_value(ingestion.url, "hl7_listener_up") == 1, 30, what="the listener back")
    assert msa(connect(gateway).report("AL-AFTER", clock=clock, patient_id="P004"))[0] == "AA"
