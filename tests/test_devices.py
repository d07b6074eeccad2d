"""The device registry (alert ingestion :8001): supervisors register, rotate and revoke device
keys; a key is stored hashed, posts alarms only within its scope, and never reads patient records.
A real gunicorn service and PostgreSQL."""

import pytest
import requests

from tests.support import DEVICE_KEY, run_simulator

pytestmark = pytest.mark.module_database  # one alert ingestion service for the module

ALARM = {"alert_type": "HEART_RATE_HIGH", "value": 170}


@pytest.fixture(scope="module")
def ingestion(start_module_service):
    return start_module_service("alert-ingestion")


@pytest.fixture
def supervisor(login_as):
    return {"Authorization": f"Bearer {login_as('D01')}"}  # D01 supervises


def call(ingestion, method, path, **kwargs) -> requests.Response:
    return requests.request(method, ingestion.url + path, timeout=5, **kwargs)


def register(ingestion, supervisor, **body) -> dict:
    answer = call(ingestion, "POST", "/api/v1/devices", json={"name": "monitor", **body},
                           headers=supervisor)
    assert answer.status_code == 201, answer.text
    return answer.json()


def post_alarm(ingestion, key, patient_id):
    return call(ingestion, "POST", "/api/v1/alerts", json={**ALARM, "patient_id": patient_id},
                         headers={"X-API-Key": key})


def test_a_registered_key_is_shown_once_stored_hashed_and_marks_the_device_seen(ingestion, supervisor, db):
    created = register(ingestion, supervisor, name="Bed 312 monitor")
    key, device = created["key"], created["device"]
    assert key.startswith("hgd_") and len(key) > 40
    assert device["created_by"] == "D01" and device["last_seen_at"] is None
    with db.transaction() as cur:
        cur.execute("SELECT key_hash FROM devices WHERE device_id = %s", (device["device_id"],))
        stored = cur.fetchone()["key_hash"]
        cur.execute("SELECT encode(sha256(%s), 'hex') AS h", (key.encode(),))
        assert stored == cur.fetchone()["h"] and key not in stored

    assert post_alarm(ingestion, key, "P004").status_code == 201
    listed = call(ingestion, "GET", "/api/v1/devices", headers=supervisor).json()["devices"]
    (mine,) = [d for d in listed if d["device_id"] == device["device_id"]]
    assert mine["last_seen_at"] is not None
    assert all("key" not in d and "key_hash" not in d for d in listed)


def test_a_ward_key_posts_only_for_its_ward_and_a_patient_key_only_for_its_patient(ingestion, supervisor):
    ward_key = register(ingestion, supervisor, ward="Cardiology")["key"]
    patient_key = register(ingestion, supervisor, patient_id="P002")["key"]
    assert post_alarm(ingestion, ward_key, "P001").status_code == 201  # P001 is on Cardiology
    assert post_alarm(ingestion, patient_key, "P002").status_code == 201
    for key, patient in ((ward_key, "P002"), (ward_key, "P999"), (patient_key, "P001")):
        answer = post_alarm(ingestion, key, patient)
        assert answer.status_code == 403, (patient, answer.text)
        assert answer.json()["error"] == "Forbidden"
    # What the scoped device sees of itself: its beds, no names or dates of birth.
    me = call(ingestion, "GET", "/api/v1/devices/me", headers={"X-API-Key": ward_key})
    assert me.status_code == 200
    assert me.json()["ward"] == "Cardiology"
    assert me.json()["patients"] == [{"patient_id": "P001", "room": "312", "ward": "Cardiology"}]


def test_a_device_key_reads_no_patient_records(ingestion, supervisor):
    key = register(ingestion, supervisor)["key"]
    for device_key in (key, DEVICE_KEY):
        answer = call(ingestion, "GET", "/api/v1/patients", headers={"X-API-Key": device_key})
        assert answer.status_code == 401
        catalogue = call(ingestion, "GET", "/api/v1/alert-types", headers={"X-API-Key": device_key})
        assert catalogue.status_code == 200
    # Nor the alert list, nor the registry.
    assert call(ingestion, "GET", "/api/v1/alerts", headers={"X-API-Key": key}).status_code == 401
    assert call(ingestion, "GET", "/api/v1/devices", headers={"X-API-Key": key}).status_code == 401


def test_rotation_and_revocation_take_effect_at_once(ingestion, supervisor):
    created = register(ingestion, supervisor, name="gateway ward 4")
    device_id, old_key = created["device"]["device_id"], created["key"]
    rotated = call(ingestion, "POST", f"/api/v1/devices/{device_id}/rotate", headers=supervisor)
    assert rotated.status_code == 200 and rotated.json()["device"]["rotated_at"] is not None
    new_key = rotated.json()["key"]
    assert new_key != old_key
    assert post_alarm(ingestion, old_key, "P004").status_code == 401
    assert post_alarm(ingestion, new_key, "P004").status_code == 201

    revoked = call(ingestion, "DELETE", f"/api/v1/devices/{device_id}", headers=supervisor)
    assert revoked.status_code == 200 and revoked.json()["device"]["revoked_at"] is not None
    assert post_alarm(ingestion, new_key, "P004").status_code == 401
    again = call(ingestion, "DELETE", f"/api/v1/devices/{device_id}", headers=supervisor)
    assert again.json()["device"]["revoked_at"] == revoked.json()["device"]["revoked_at"]
    refused = call(ingestion, "POST", f"/api/v1/devices/{device_id}/rotate", headers=supervisor)
    assert refused.status_code == 409
    for method, path in (("POST", "/api/v1/devices/999999/rotate"), ("DELETE", "/api/v1/devices/999999"),
                         ("DELETE", f"/api/v1/devices/{2**64}")):
        assert call(ingestion, method, path, headers=supervisor).status_code == 404


def test_only_supervisors_manage_keys_and_a_bad_registration_is_refused(ingestion, supervisor, login_as,
                                                                        service_env):
    nurse = {"Authorization": f"Bearer {login_as('N02')}"}
    service = {"Authorization": f"Bearer {service_env['SERVICE_TOKEN']}"}
    for headers in (nurse, service):
        assert call(ingestion, "GET", "/api/v1/devices", headers=headers).status_code == 403
        refused = call(ingestion, "POST", "/api/v1/devices", json={"name": "x"}, headers=headers)
        assert refused.status_code == 403
    assert call(ingestion, "GET", "/api/v1/devices").status_code == 401
    both = {"name": "x", "ward": "Cardiology", "patient_id": "P001"}
    for body, status, field in ((both, 422, "patient_id"),
                                ({"name": "x", "ward": "Nowhere"}, 422, "ward"),
                                ({"name": "x", "patient_id": "P999"}, 422, "patient_id"),
                                ({"name": ""}, 400, "name"), ({"name": "x", "key": "mine"}, 400, None)):
        answer = call(ingestion, "POST", "/api/v1/devices", json=body, headers=supervisor)
        assert answer.status_code == status, (body, answer.text)
        if field:
            assert answer.json()["field"] == field


def test_the_simulator_runs_with_a_registered_ward_key(ingestion, supervisor, db):
    key = register(ingestion, supervisor, ward="ICU")["key"]
    result = run_simulator(ingestion.url, key, "--rate", "50", "--count", "3", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert "sent 3, accepted 3, failed 0" in result.stdout
    with db.transaction() as cur:
        cur.execute("SELECT DISTINCT patient_id FROM alerts WHERE source = 'SIMULATOR'")
        assert [row["patient_id"] for row in cur.fetchall()] == ["P002"]  # the ICU's only patient
