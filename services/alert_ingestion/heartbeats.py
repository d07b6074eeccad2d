"""Heartbeats: a device (or the HL7 gateway it is) with an expected interval that misses two of
them raises the technical alarm DEVICE_SILENT, and the alarm ends when the device is heard again.

A beat is any request with the device's key (an alarm, GET /devices/me), POST
/api/v1/devices/me/heartbeat, or any HL7 message on its gateway's connection, MSH-only keep-alives
included: all go through the database's device_heard() (migration 0020), which moves the
device's deadline (devices.silent_after). The checker (watch_device_heartbeats.py) asks the
database which deadlines have passed, so a restart loses nothing and any number of checkers agree.

A gateway is one device: its silence is one alarm for the gateway (its ward), never one per bed
behind it. A device monitoring a patient raises DEVICE_SILENT as an alert of that patient (HIGH,
routed by alert_types.routes_to to the biomedical engineers and the nurse). Any other device (a
ward's, a gateway, or one of the whole hospital, or one whose patient left) raises it as an alert
of the device itself (MEDIUM, migration 0022): no patient, so no care team, and routing offers it
to the biomedical engineers on duty (the ward's when it has one, else the hospital's), then the
type's other roles, like any alarm. Either way the silence is a device_silences row too (the
devices page, the patient page). When the device is heard again the alert is marked cleared; a
device's own incident is then resolved by incident management (resolve_heard_devices.py), while
a patient's is left to a clinician, who must see the patient.
"""
import datetime

from healthguard import clock

from . import alerts

SILENT_ALERT_TYPE = "DEVICE_SILENT"
# A silent device that monitors no patient: nobody's readings are known lost, but every alarm
# behind it may be (issue 24: "HIGH when the device monitors a patient, MEDIUM otherwise").
DEVICE_SEVERITY = "MEDIUM"


def beat(cur, *, device_id: int) -> dict:
    """An explicit heartbeat: the device heard now, whatever the write resolution."""
    now = clock.now()
    cur.execute("""
        UPDATE devices SET last_seen_at = %(now)s, last_beat_at = %(now)s,
                           silent_after = %(now)s + 2 * heartbeat_interval
        WHERE device_id = %(device)s
        RETURNING device_id, last_beat_at, silent_after, heartbeat_interval
    """, {"now": now, "device": device_id})
    return cur.fetchone()


def set_interval(cur, *, device_id: int, seconds: int | None) -> dict | None:
    """The expected interval (None: no heartbeat expected); the deadline counts from the last
    beat, or from now for a device never heard."""
    cur.execute("""
        UPDATE devices SET heartbeat_interval = make_interval(secs => %(seconds)s),
                           silent_after = coalesce(last_beat_at, %(now)s)
                                          + 2 * make_interval(secs => %(seconds)s)
        WHERE device_id = %(device)s
        RETURNING device_id
    """, {"seconds": seconds, "now": clock.now(), "device": device_id})
    return cur.fetchone()


def check_silent_devices(cur) -> dict:
    """End the silences of devices heard again, then alarm the devices whose deadline passed.
    Returns {"alarmed": [device ids], "heard": [device ids]}."""
    now = clock.now()
    cur.execute("""
        UPDATE device_silences s
        SET heard_at = d.last_beat_at,
            silent_seconds = extract(epoch FROM d.last_beat_at - s.silent_since)
        FROM devices d
        WHERE s.device_id = d.device_id AND s.heard_at IS NULL AND d.last_beat_at > s.silent_since
        RETURNING s.device_id, s.alert_id, s.heard_at
    """)
    heard = cur.fetchall()
    for row in heard:
        if row["alert_id"] is not None:
            # The device says the condition ended (as an HL7 alarm's end does); a clinician
            # still resolves the incident.
            cur.execute("UPDATE alerts SET device_cleared_at = %s WHERE alert_id = %s",
                        (row["heard_at"], row["alert_id"]))
    cur.execute("""
        SELECT d.device_id, d.name, d.ward, d.patient_id, d.silent_after,
               coalesce(d.last_beat_at, d.silent_after - 2 * d.heartbeat_interval) AS silent_since,
               EXISTS (SELECT 1 FROM hl7_gateways g WHERE g.device_id = d.device_id) AS is_gateway,
               p.status AS patient_status
        FROM devices d LEFT JOIN patients p ON p.patient_id = d.patient_id
        WHERE d.silent_after <= %(now)s AND d.heartbeat_interval IS NOT NULL AND d.revoked_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM device_silences s
                          WHERE s.device_id = d.device_id AND s.heard_at IS NULL)
        ORDER BY d.silent_after
        FOR UPDATE OF d SKIP LOCKED
    """, {"now": now})
    alarmed = []
    for device in cur.fetchall():
        monitors_patient = device["patient_id"] is not None and device["patient_status"] == "ADMITTED"
        # One alarm per silence: a redelivered or concurrent check finds it by this key.
        key = {"device_id": f"registry-{device['device_id']}",
               "source_alarm_id": f"{SILENT_ALERT_TYPE}-{_epoch(device['silent_since'])}"}
        if monitors_patient:
            alert, _ = alerts.record_alert(cur, alerts.Alarm(
                patient_id=device["patient_id"], alert_type=SILENT_ALERT_TYPE,
                occurred_at=device["silent_after"], **key))
            alert_id = alert["alert_id"]
        else:
            alert_id = alerts.record_device_alert(
                cur, alert_type=SILENT_ALERT_TYPE, severity=DEVICE_SEVERITY, device_name=device["name"],
                ward=device["ward"], occurred_at=device["silent_after"], **key)
        cur.execute("""
            INSERT INTO device_silences (device_id, is_gateway, ward, patient_id, severity, silent_since,
                                         alarmed_at, alert_id)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT DO NOTHING
        """, (device["device_id"], device["is_gateway"], device["ward"], device["patient_id"],
              "HIGH" if monitors_patient else DEVICE_SEVERITY, device["silent_since"], now, alert_id))
        alarmed.append(device["device_id"])
    return {"alarmed": alarmed, "heard": [row["device_id"] for row in heard]}


def _epoch(moment: datetime.datetime) -> int:
    return int(moment.timestamp())


def open_silences(cur, *, patient_id: str | None = None) -> list[dict]:
    cur.execute("""
        SELECT s.silence_id, s.device_id, d.name AS device_name, s.is_gateway, s.ward, s.patient_id,
               s.severity, s.silent_since, s.alarmed_at, s.alert_id
        FROM device_silences s JOIN devices d USING (device_id)
        WHERE s.heard_at IS NULL AND (%(patient)s::text IS NULL OR s.patient_id = %(patient)s)
        ORDER BY s.silent_since
    """, {"patient": patient_id})
    return cur.fetchall()
