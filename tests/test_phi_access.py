"""The PHI access log (issue 24): every answer with a patient's identifying data writes one entry
per patient (a list, one batched insert), and so does every WebSocket frame with a patient's data
(written in batches, off the push path); the services' database role may only append to it;
only a privacy officer reads it. Real gunicorn services, sockets, RabbitMQ and PostgreSQL, the
test clock."""
import contextlib
import csv
import datetime as dt
import io

import psycopg2
import psycopg2.errors
import pytest
import requests

from healthguard import audit, phi_access
from tests.support import as_app_role, wait_for
from tests.test_websocket import (
    SERVICE_ENV,
    clients,
    incident,
    incident_event,
    publish,
    publisher,
    sockets_open,
)

# test_websocket's fixtures (open sockets closed after the test, a publisher, an incident row),
# imported so that pytest finds them here too.
__all__ = ["clients", "incident", "publisher"]

PATIENTS = ("P001", "P002", "P003", "P004", "P005", "P006", "P007", "P008")


@pytest.fixture
def incident_service(start_service):
    return start_service("incident-management")


@pytest.fixture
def ingestion(start_service):
    return start_service("alert-ingestion")


def access_log(db, **where) -> list[dict]:
    conditions = " AND ".join(f"{column} = %({column})s" for column in where) or "true"
    with db.transaction() as cur:
        cur.execute(f"SELECT * FROM phi_access_log WHERE {conditions} ORDER BY access_id", where)  # noqa: S608
        return cur.fetchall()


def test_one_incident_a_list_of_50_and_one_patient_each_log_one_entry_per_patient(
        incident_service, ingestion, make_incident, login_as, db, clock):
    clock.pin_rota()
    incidents = [make_incident(patient_id=PATIENTS[n % len(PATIENTS)], severity="HIGH",
                               alert_type="HEART_RATE_HIGH") for n in range(50)]
    nurse = {"Authorization": f"Bearer {login_as('N01')}"}

    one = requests.get(f"{incident_service.url}/api/v1/incidents/{incidents[0]}", headers=nurse, timeout=10)
    assert one.status_code == 200, one.text
    (entry,) = access_log(db, route="GET /api/v1/incidents/<int:incident_id>")
    assert (entry["patient_id"], entry["employee_id"], entry["accessor_kind"]) == ("P001", "N01", "EMPLOYEE")
    assert entry["purpose"] == "treatment" and entry["reason"] is None
    # At the test clock's time (pinned to the rota's day, months from the wall clock).
    assert abs(entry["accessed_at"] - clock.now()) < dt.timedelta(minutes=5)
    assert entry["address"] is not None

    page = requests.get(f"{incident_service.url}/api/v1/incidents", params={"limit": 50},
                        headers=nurse, timeout=10)
    assert page.status_code == 200 and len(page.json()["incidents"]) == 50
    listed = access_log(db, route="GET /api/v1/incidents")
    assert sorted(e["patient_id"] for e in listed) == sorted(PATIENTS)  # one per patient, not per row
    assert len({e["accessed_at"] for e in listed}) == 1  # one insert for the whole answer

    patient = requests.get(f"{ingestion.url}/api/v1/patients/P004", headers=nurse, timeout=10)
    assert patient.status_code == 200 and patient.json()["name"] == "Harold Jensen"
    (read,) = access_log(db, route="GET /api/v1/patients/<patient_id>")
    assert read["patient_id"] == "P004" and read["employee_id"] == "N01"

    # Break-glass: the declared purpose and its typed reason are kept; no reason is refused.
    glass = {**nurse, "X-Access-Purpose": "break-glass"}
    refused = requests.get(f"{ingestion.url}/api/v1/patients/P005", headers=glass, timeout=10)
    assert refused.status_code == 400 and "X-Access-Reason" in refused.json()["message"]
    broken = requests.get(f"{ingestion.url}/api/v1/patients/P005",
                          headers={**glass, "X-Access-Reason": "covering ward 5, patient deteriorating"},
                          timeout=10)
    assert broken.status_code == 200
    (glass_entry,) = access_log(db, patient_id="P005", route="GET /api/v1/patients/<patient_id>")
    assert glass_entry["purpose"] == "break-glass" and glass_entry["reason"].startswith("covering ward 5")


def test_with_break_glass_required_a_clinician_not_caring_for_the_patient_must_break_the_glass(
        start_service, make_incident, login_as, db, clock):
    """PHI_BREAK_GLASS_REQUIRED=1: an incident's (or an alert's) record is served for treatment to
    its assignee and to the patient's care team this shift; anyone else signed in is refused,
    told how to break the glass, and served once they do, the reason logged."""
    clock.pin_rota()
    strict = {"PHI_BREAK_GLASS_REQUIRED": "1"}
    incident_service = start_service("incident-management", env=strict)
    ingestion = start_service("alert-ingestion", env=strict)
    incident_id = make_incident(patient_id="P002", severity="HIGH", alert_type="HEART_RATE_HIGH",
                                assigned_to="N01")
    with db.transaction() as cur:
        cur.execute("SELECT alert_id FROM incidents WHERE incident_id = %s", (incident_id,))
        alert_id = cur.fetchone()["alert_id"]
        cur.execute("SELECT ward FROM patients WHERE patient_id = 'P002'")
        ward = cur.fetchone()["ward"]
        # N03 is the patient's nurse this shift.
        cur.execute("""
            INSERT INTO care_team_assignments (patient_id, ward, employee_id, care_role, assigned_by,
                                               starts_at, ends_at)
            VALUES ('P002', %s, 'N03', 'NURSE', 'D01', %s, %s)""",
                    (ward, clock.now() - dt.timedelta(hours=1), clock.now() + dt.timedelta(hours=8)))
    records = [
        (incident_service, f"/api/v1/incidents/{incident_id}", "GET /api/v1/incidents/<int:incident_id>"),
        (ingestion, f"/api/v1/alerts/{alert_id}", "GET /api/v1/alerts/<int(min=1):alert_id>")]

    for carer in ("N01", "N03"):  # the assignee, the patient's nurse
        headers = {"Authorization": f"Bearer {login_as(carer)}"}
        for service, path, route in records:
            answer = requests.get(f"{service.url}{path}", headers=headers, timeout=10)
            assert answer.status_code == 200, (carer, path, answer.text)
            (entry,) = access_log(db, employee_id=carer, route=route)
            assert (entry["patient_id"], entry["purpose"], entry["reason"]) == ("P002", "treatment", None)

    # N02, signed in, but neither assigned nor on P002's care team.
    stranger = {"Authorization": f"Bearer {login_as('N02')}"}
    for service, path, route in records:
        refused = requests.get(f"{service.url}{path}", headers=stranger, timeout=10)
        assert refused.status_code == 403, (path, refused.text)
        message = refused.json()["message"]
        assert "not caring for patient P002" in message
        assert "X-Access-Purpose: break-glass" in message and "X-Access-Reason" in message
        # A declared break-glass without its reason is a bad request, not a read.
        bare = requests.get(f"{service.url}{path}", headers={**stranger, "X-Access-Purpose": "break-glass"},
                            timeout=10)
        assert bare.status_code == 400 and "X-Access-Reason" in bare.json()["message"]
        assert access_log(db, employee_id="N02", route=route) == []

        glass = {**stranger, "X-Access-Purpose": "break-glass",
                 "X-Access-Reason": "rapid response team, patient deteriorating"}
        served = requests.get(f"{service.url}{path}", headers=glass, timeout=10)
        assert served.status_code == 200 and served.json()["patient_id"] == "P002", served.text
        (entry,) = access_log(db, employee_id="N02", route=route)
        assert (entry["patient_id"], entry["purpose"], entry["reason"]) == (
            "P002", "break-glass", "rapid response team, patient deteriorating")


@contextlib.contextmanager
def as_services_role(database_url):
    conn = psycopg2.connect(as_app_role(database_url))
    try:
        yield conn
    finally:
        conn.close()


def test_the_services_role_can_append_to_the_log_but_not_update_or_delete_it(database_url, db, clock):
    with as_services_role(database_url) as conn, conn.cursor() as cur:
        cur.execute("""
            INSERT INTO phi_access_log (accessed_at, patient_id, employee_id, accessor_kind, route, purpose)
            VALUES (%s, 'P001', 'N01', 'EMPLOYEE', 'GET /test', 'treatment')""", (clock.now(),))
        conn.commit()
        cur.execute("SELECT relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'phi_access_log'::regclass")
        partitions = [row[0] for row in cur.fetchall()]
        conn.rollback()
        for table in ["phi_access_log", *partitions]:
            for statement in (f"UPDATE {table} SET purpose = 'break-glass', reason = 'x'",  # noqa: S608
                              f"DELETE FROM {table}",  # noqa: S608
                              f"TRUNCATE {table}"):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(statement)
                conn.rollback()
        # The audit trail of incidents is append-only for it too.
        for statement in ("UPDATE incident_history SET note = 'edited'", "DELETE FROM incident_history"):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(statement)
            conn.rollback()
    assert len(access_log(db, route="GET /test")) == 1


def test_only_a_privacy_officer_reads_and_exports_the_log(start_service, ingestion, login_as, db, clock):
    oncall = start_service("oncall")
    nurse = {"Authorization": f"Bearer {login_as('N01')}"}
    assert requests.get(f"{ingestion.url}/api/v1/patients", headers=nurse, timeout=10).status_code == 200

    for who in ("N01", "D01"):  # a nurse; a supervisor and account administrator
        headers = {"Authorization": f"Bearer {login_as(who)}"}
        for path in ("/api/v1/privacy/access-log", "/api/v1/privacy/access-log/export"):
            answer = requests.get(oncall.url + path, headers=headers, timeout=10)
            assert answer.status_code == 403, (who, path, answer.text)

    officer = {"Authorization": f"Bearer {login_as('PRV01')}"}
    found = requests.get(f"{oncall.url}/api/v1/privacy/access-log",
                         params={"patient_id": "P003", "employee_id": "N01"}, headers=officer, timeout=10)
    assert found.status_code == 200, found.text
    (entry,) = found.json()["entries"]
    assert entry["route"] == "GET /api/v1/patients" and entry["purpose"] == "treatment"
    exported = requests.get(f"{oncall.url}/api/v1/privacy/access-log/export", params={"employee_id": "N01"},
                            headers=officer, timeout=10)
    assert exported.status_code == 200 and exported.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted(row["patient_id"] for row in rows) == sorted(PATIENTS)

    # A privacy officer is in no list of clinicians.
    employees = requests.get(f"{oncall.url}/api/v1/employees", headers=nurse, timeout=10)
    assert employees.status_code == 200
    assert "PRV01" not in {e["employee_id"] for e in employees.json()["employees"]}


def socket_entries(db, employee_id: str) -> list[dict]:
    with db.transaction() as cur:
        cur.execute("""SELECT * FROM phi_access_log WHERE employee_id = %s AND route LIKE 'ws:%%'
                       ORDER BY access_id""", (employee_id,))
        return cur.fetchall()


def written(db, employee_id: str, route: str, patient_id: str, count: int = 1) -> list[dict]:
    """Wait (the frames' entries are written in batches) until the clinician has `count` entries
    for the patient by the route; all their socket entries then. Entries are written in the
    order the frames were sent, so every earlier frame's are written too."""
    def found():
        entries = socket_entries(db, employee_id)
        mine = [e for e in entries if (e["route"], e["patient_id"]) == (route, patient_id)]
        return entries if len(mine) >= count else None
    return wait_for(found, 15, what=f"{employee_id}'s {route} entry for {patient_id}")


def test_every_websocket_frame_with_a_patient_logs_one_entry_per_patient_for_its_clinician(
        start_service, login_as, clients, publisher, incident, db, clock):
    service = start_service("notification", env=SERVICE_ENV)
    n01 = clients(service, login_as("N01"))  # the assignee: notifications and the dashboard
    d02 = clients(service, login_as("D02"))  # another dashboard: incident_updated frames only
    wait_for(lambda: sockets_open(service) == 2, 10, what="two sockets registered")
    p007, p003 = incident(patient_id="P007"), incident(patient_id="P003")

    event = publish(publisher, incident_event(["N01"], p007, patient_id="P007", room="507"))
    n01.read_until(lambda frames: n01.has_event(event["event_id"])(frames)
                   and n01.has_event(event["event_id"], "incident_updated")(frames))
    assert next(f for f in n01.frames if f["type"] == "notification")["data"]["patient_id"] == "P007"
    # A frame that names no patient (a password reset's notification): sent, and logged nowhere.
    reset = publish(publisher, {**incident_event(["N01"], None, event_type="PASSWORD_RESET",
                                                 title="Your password was reset"), "data": {}})
    n01.read_until(n01.has_event(reset["event_id"]))
    # Then P003's frames: once their entries are written, everything sent before them is too.
    later = publish(publisher, incident_event(["N01"], p003, patient_id="P003",
                                              event_type="INCIDENT_ESCALATED"))
    n01.read_until(n01.has_event(later["event_id"], "incident_updated"))

    written(db, "N01", "ws:incident_updated", "P003")
    entries = written(db, "N01", "ws:notification", "P003")
    # One entry per patient per frame, under the frame's route; the password reset wrote nothing.
    assert sorted((e["patient_id"], e["route"]) for e in entries) == [
        ("P003", "ws:incident_updated"), ("P003", "ws:notification"),
        ("P007", "ws:incident_updated"), ("P007", "ws:notification")]
    for entry in entries:
        assert (entry["accessor_kind"], entry["device_id"]) == ("EMPLOYEE", None)
        assert (entry["purpose"], entry["reason"]) == ("treatment", None)
        assert entry["address"] == "127.0.0.1"  # as the HTTP log takes it (no trusted proxy)
        assert abs(entry["accessed_at"] - clock.now()) < dt.timedelta(minutes=5)  # the test clock
    # The other dashboard saw both incidents change, and none of N01's notifications.
    d02.read_until(d02.has_event(later["event_id"], "incident_updated"))
    others = written(db, "D02", "ws:incident_updated", "P003")
    assert sorted((e["patient_id"], e["route"]) for e in others) == [
        ("P003", "ws:incident_updated"), ("P007", "ws:incident_updated")]

    # A replay on reconnect: what was stored while away is logged as replayed, once.
    last_id = n01.notification_ids()[-1]
    n01.close()
    wait_for(lambda: sockets_open(service) == 1, 10, what="the socket gone")
    away = publish(publisher, incident_event(["N01"], p007, patient_id="P007", event_type="INCIDENT_REPAGED"))
    d02.read_until(d02.has_event(away["event_id"], "incident_updated"))  # stored and announced
    again = clients(service, login_as("N01"), last_id=last_id)
    again.read_until(again.has_event(away["event_id"]))
    assert [f.get("replay") for f in again.notifications()] == [True]
    after = publish(publisher, incident_event(["N01"], p003, patient_id="P003",
                                              event_type="INCIDENT_NOTE_ADDED"))
    again.read_until(again.has_event(after["event_id"]))
    written(db, "N01", "ws:notification", "P003", count=2)
    replayed = [e for e in socket_entries(db, "N01") if e["route"] == "ws:replay"]
    assert [e["patient_id"] for e in replayed] == ["P007"]

    # The frames' entries join the hash chain like every other entry.
    with db.transaction() as cur:
        assert audit.seal(cur)["phi_access_log"] >= 9
        walked, broken = audit.verify(cur)
    assert broken == [] and walked["phi_access_log"] >= 9


def test_the_frames_log_writes_what_it_holds_when_it_stops(db, clock):
    """Shutdown (gunicorn's worker_exit stops it): the entries held since the last batch are
    written, not lost, even long before the next batch was due."""
    log = phi_access.BatchedAccessLog(db, seconds=3600).start()
    reader = phi_access.Accessor("EMPLOYEE", "N02", None, "10.1.2.3", "treatment", None)
    assert log.add(reader, "ws:incident_updated", ["P002", "P002", None, "P006"]) == 2
    assert log.add(reader, "ws:notification", []) == 0
    log.stop()
    entries = access_log(db, employee_id="N02")
    assert sorted((e["patient_id"], e["route"], e["address"]) for e in entries) == [
        ("P002", "ws:incident_updated", "10.1.2.3"), ("P006", "ws:incident_updated", "10.1.2.3")]
    assert len({e["accessed_at"] for e in entries}) == 1
