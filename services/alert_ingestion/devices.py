"""The device registry: every bedside device or gateway has its own key, shown once and stored
only as its SHA-256, with an optional scope (one ward, or one patient) and the time it was last
seen. Supervisors register, rotate and revoke keys; the key itself is checked by
healthguard.auth.device_api_key, and a key's scope here, before an alarm is stored.

DEVICE_API_KEYS in the environment are bootstrap keys (the demo profile, the simulator): each
is an unscoped device without a registry row."""
import datetime
import secrets

from healthguard import clock
from healthguard.auth import Device, token_hash
from healthguard.errors import ApiError

DEVICE_COLUMNS = """device_id, name, ward, patient_id, created_by, created_at, rotated_at,
    revoked_at, last_seen_at, extract(epoch FROM heartbeat_interval)::int AS heartbeat_interval_seconds,
    last_beat_at,
    (SELECT s.silent_since FROM device_silences s
     WHERE s.device_id = devices.device_id AND s.heard_at IS NULL) AS silent_since"""
KEY_PREFIX = "hgd_"  # recognisable in a config file or a leak report


def device_json(row: dict) -> dict:
    return {key: value.isoformat() if isinstance(value, datetime.datetime) else value
            for key, value in row.items()}


def new_device_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def list_devices(cur) -> list[dict]:
    cur.execute(f"SELECT {DEVICE_COLUMNS} FROM devices ORDER BY device_id")  # noqa: S608 (constant columns)
    return cur.fetchall()


def get_device(cur, *, device_id: int) -> dict | None:
    cur.execute(f"SELECT {DEVICE_COLUMNS} FROM devices WHERE device_id = %s", (device_id,))  # noqa: S608
    return cur.fetchone()


def register_device(cur, *, name: str, ward: str | None, patient_id: str | None,
                    created_by: str) -> tuple[dict, str]:
    """A new device and its key (the only time the key is seen). 422: an unknown ward or patient,
    or both scopes at once."""
    if ward is not None and patient_id is not None:
        raise ApiError(422, "a device is scoped to a ward or to a patient, not both", field="patient_id")
    if patient_id is not None:
        cur.execute("SELECT 1 FROM patients WHERE patient_id = %s", (patient_id,))
        if cur.fetchone() is None:
            raise ApiError(422, f"no patient {patient_id}", field="patient_id")
    if ward is not None:
        cur.execute("SELECT 1 FROM patients WHERE ward = %s LIMIT 1", (ward,))
        if cur.fetchone() is None:
            raise ApiError(422, f"no ward {ward}", field="ward")
    key = new_device_key()
    cur.execute(f"""
        INSERT INTO devices (name, key_hash, ward, patient_id, created_by, created_at)
        VALUES (%s, %s, %s, %s, %s, %s)
        RETURNING {DEVICE_COLUMNS}
    """, (name, token_hash(key), ward, patient_id, created_by, clock.now()))  # noqa: S608
    return cur.fetchone(), key


def rotate_key(cur, *, device_id: int) -> tuple[dict, str]:
    """A new key for the device; the old one stops working at once. 404 unknown, 409 revoked."""
    key = new_device_key()
    cur.execute(f"""
        UPDATE devices SET key_hash = %s, rotated_at = %s
        WHERE device_id = %s AND revoked_at IS NULL
        RETURNING {DEVICE_COLUMNS}
    """, (token_hash(key), clock.now(), device_id))  # noqa: S608
    row = cur.fetchone()
    if row is None:
        _raise_missing_or_revoked(cur, device_id)
    return row, key


def revoke_device(cur, *, device_id: int) -> dict:
    """Revoked at once; revoking again changes nothing. 404 unknown."""
    cur.execute(f"""
        UPDATE devices SET revoked_at = coalesce(revoked_at, %s)
        WHERE device_id = %s
        RETURNING {DEVICE_COLUMNS}
    """, (clock.now(), device_id))  # noqa: S608
    row = cur.fetchone()
    if row is None:
        raise ApiError(404, f"no device {device_id}")
    return row


def _raise_missing_or_revoked(cur, device_id: int):
    cur.execute("SELECT revoked_at FROM devices WHERE device_id = %s", (device_id,))
    if cur.fetchone() is None:
        raise ApiError(404, f"no device {device_id}")
    raise ApiError(409, f"device {device_id} is revoked: register a new one")


def check_scope(cur, device: Device, *, patient_id: str) -> None:
    """403 when the patient is outside the device's scope (an unknown patient is outside any
    scope: a scoped key learns nothing about other wards)."""
    if device.patient_id is not None and device.patient_id != patient_id:
        raise ApiError(403, "this device may only report alarms of its own patient")
    if device.ward is not None:
        cur.execute("SELECT 1 FROM patients WHERE patient_id = %s AND ward = %s", (patient_id, device.ward))
        if cur.fetchone() is None:
            raise ApiError(403, "this device may only report alarms of patients on its ward")


def patients_in_scope(cur, device: Device) -> list[dict]:
    """The admitted patients a device may report for: ids, rooms and wards only (which bed is
    whose), never names or dates of birth."""
    cur.execute("""
        SELECT patient_id, room, ward FROM patients
        WHERE status = 'ADMITTED'
          AND (%(patient)s::text IS NULL OR patient_id = %(patient)s)
          AND (%(ward)s::text IS NULL OR ward = %(ward)s)
        ORDER BY patient_id
    """, {"patient": device.patient_id, "ward": device.ward})
    return cur.fetchall()
