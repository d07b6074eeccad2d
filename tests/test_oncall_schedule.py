"""On-call: rotations in the hospital's time zone (across clock changes), overrides, who is on
duty now, who can take an incident (signed in, not away, least busy first), schedules, employees."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import requests

from oncall.schedule import on_duty_at
from tests.support import ServiceProcess

LONDON = ZoneInfo("Europe/London")
UTC = dt.UTC


@pytest.fixture(scope="module")
def oncall(service_env):
    """The on-call service under gunicorn, shared by this module's tests."""
    service = ServiceProcess("oncall", service_env, workers=1).start()
    yield service
    service.stop()


@pytest.fixture
def api(oncall, clean_state, login_as):
    """Calls to the on-call service as a given clinician (or the service token)."""

    class Api:
        def __init__(self):
            self.tokens = {}

        def token(self, who):
            if who not in self.tokens:
                self.tokens[who] = login_as(who)
            return self.tokens[who]

        def call(self, method, path, *, who="N02", token=None, **kwargs):
            headers = {"Authorization": f"Bearer {token or self.token(who)}"}
            return requests.request(method, oncall.url + path, headers=headers, timeout=10, **kwargs)

    return Api()


def make_incident(db, *, assigned_to, status="ASSIGNED", assigned_ago="1 hour"):
    """An incident (and the alert it comes from) assigned to a clinician `assigned_ago`."""
    with db.transaction() as cur:
        cur.execute("""
            INSERT INTO alerts (patient_id, alert_type, severity, category, room, occurred_at)
            VALUES ('P001', 'HEART_RATE_HIGH', 'HIGH', 'CARDIAC', '312', now()) RETURNING alert_id""")
        alert_id = cur.fetchone()["alert_id"]
        cur.execute("""
            INSERT INTO incidents (alert_id, patient_id, alert_type, severity, category, room, title,
                                   status, assigned_to, assigned_at)
            VALUES (%s, 'P001', 'HEART_RATE_HIGH', 'HIGH', 'CARDIAC', '312', 'Tachycardia', %s, %s,
                    now() - %s::interval)
            RETURNING incident_id""", (alert_id, status, assigned_to, assigned_ago))
        incident_id = cur.fetchone()["incident_id"]
        cur.execute("""
            INSERT INTO incident_assignments (incident_id, employee_id, reason, assigned_at)
            VALUES (%s, %s, 'AUTO', now() - %s::interval)""", (incident_id, assigned_to, assigned_ago))
    return incident_id


# --- The contract with the incident service -----------------------------------------------------

def test_available_orders_least_busy_then_longest_idle(api, db, login_as):
    # Specialists are on call around the clock, so these four are on duty whenever the test runs.
    for who in ("S01", "S02", "S05", "S06"):
        api.token(who)
    make_incident(db, assigned_to="S01")
    make_incident(db, assigned_to="S01", status="IN_PROGRESS")
    make_incident(db, assigned_to="S01", status="RESOLVED")
    make_incident(db, assigned_to="S02", status="ACKNOWLEDGED")
    make_incident(db, assigned_to="S05", status="RESOLVED", assigned_ago="10 minutes")
    make_incident(db, assigned_to="S06", status="RESOLVED", assigned_ago="2 hours")

    response = api.call("GET", "/api/v1/oncall/available?roles=CARDIOLOGIST,NEUROLOGIST", who="D01")
    assert response.status_code == 200, response.text
    clinicians = response.json()["clinicians"]
    # Workload counts only unresolved incidents; among the idle, the longest idle comes first.
    assert [(c["employee_id"], c["active_incidents"]) for c in clinicians] == [
        ("S06", 0), ("S05", 0), ("S02", 1), ("S01", 2)]
    assert set(clinicians[0]) == {"employee_id", "name", "role", "tier", "active_incidents",
                                  "last_assigned_at"}
    assert clinicians[0]["role"] == "NEUROLOGIST" and clinicians[0]["tier"] == 3
    assert dt.datetime.fromisoformat(clinicians[0]["last_assigned_at"]).tzinfo is not None


def test_available_never_assigned_first_and_with_service_token(api, service_env, db):
    api.token("S01")
    api.token("S02")
    make_incident(db, assigned_to="S01", status="RESOLVED")
    response = api.call("GET", "/api/v1/oncall/available?roles=CARDIOLOGIST",
                        token=service_env["SERVICE_TOKEN"])
    assert response.status_code == 200
    assert [(c["employee_id"], c["last_assigned_at"] is None)
            for c in response.json()["clinicians"]] == [("S02", True), ("S01", False)]


def test_available_excludes_signed_out_and_away_clinicians(api):
    for who in ("S01", "S02", "S05"):
        api.token(who)
    away = api.call("PATCH", "/api/v1/employees/me/availability", who="S02", json={"availability": "AWAY"})
    assert away.status_code == 200 and away.json()["availability"] == "AWAY"
    assert api.call("POST", "/api/v1/auth/logout", who="S05").status_code == 204

    response = api.call("GET", "/api/v1/oncall/available?roles=CARDIOLOGIST,NEUROLOGIST", who="D01")
    ids = [c["employee_id"] for c in response.json()["clinicians"]]
    assert ids == ["S01"]  # S02 away, S05 signed out, S06 never signed in

    back = api.call("PATCH", "/api/v1/employees/me/availability", who="S02",
                    json={"availability": "AVAILABLE"})
    assert back.status_code == 200
    ids = [c["employee_id"] for c in api.call(
        "GET", "/api/v1/oncall/available?roles=CARDIOLOGIST", who="D01").json()["clinicians"]]
    assert ids == ["S01", "S02"]


def test_available_without_roles_means_any_role_on_duty(api, db):
    for who in ("S01", "S09", "S12"):
        api.token(who)
    ids = {c["employee_id"] for c in api.call("GET", "/api/v1/oncall/available").json()["clinicians"]}
    assert {"S01", "S09", "S12"} <= ids
    with db.transaction() as cur:
        on_duty = on_duty_at(cur, tz=LONDON, at=dt.datetime.now(UTC))
    assert ids <= set(on_duty)  # nobody off duty, whoever else the test signed in


def test_available_rejects_unknown_role(api):
    response = api.call("GET", "/api/v1/oncall/available?roles=CARDIOLOGIST,WIZARD")
    assert response.status_code == 422
    assert "WIZARD" in response.json()["message"]
