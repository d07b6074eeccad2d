"""Recording alerts: the domain checks of a reported alarm, the alert row and its outbox message in
one transaction, and reading alerts back."""
import datetime
import json
from dataclasses import dataclass

from healthguard import clock
from healthguard.broker import alert_lane
from healthguard.db import Prepared
from healthguard.domain import SEVERITIES
from healthguard.errors import ApiError
from healthguard.messages import AlertMessage
from healthguard.outbox import insert_rows, wake_relay_after_commit

# A device clock a little ahead of ours is normal; an alarm from further in the future is not.
FUTURE_TOLERANCE = datetime.timedelta(minutes=5)
# A monitor whose clock battery died reports its epoch (1970, 2000): such a time is not when the
# alarm happened.
EARLIEST_OCCURRENCE = datetime.datetime(2001, 1, 1, tzinfo=datetime.UTC)
# A device's own id of an alarm (JSON source_alarm_id, HL7 OBR-3): indexed with its device, and a
# btree index entry holds at most a few kilobytes.
MAX_SOURCE_ALARM_ID_LENGTH = 200
SOURCES = ("DEVICE", "MANUAL", "SIMULATOR")
DEVICE_SOURCES = ("DEVICE", "SIMULATOR")

ALERT_SELECT = """
    SELECT a.alert_id, a.patient_id, p.name AS patient_name, a.ward, a.device_name, a.alert_type,
           t.name AS alert_name,
           a.severity, a.category, a.room, a.value::float AS value, a.device_id, a.source_alarm_id,
           a.source, a.triggered_by, a.occurred_at, a.received_at, a.hl7_gateway_id,
           a.event_code, a.event_unmapped, a.event_phase, a.event_state, a.event_priority, a.unit,
           a.device_location, a.equipment, a.channel, a.device_cleared_at,
           coalesce(i.incident_id, r.incident_id) AS incident_id,
           coalesce(i.status, r.status) AS incident_status
    FROM alerts a
    LEFT JOIN patients p USING (patient_id)  -- none: a device's own alarm (DEVICE_SILENT)
    JOIN alert_types t ON t.alert_type = a.alert_type
    LEFT JOIN incidents i ON i.alert_id = a.alert_id
    -- a repeat of an alarm joins the incident already open for it (incident management)
    LEFT JOIN incident_alerts l ON l.alert_id = a.alert_id
    LEFT JOIN incidents r ON r.incident_id = l.incident_id
"""
# What an HL7 (PCD-04) alarm adds (hl7_alarms.py), shown as the alert's `device_alarm`.
DEVICE_ALARM_COLUMNS = ("hl7_gateway_id", "event_code", "event_unmapped", "event_phase", "event_state",
                        "event_priority", "unit", "device_location", "equipment", "channel",
                        "device_cleared_at")


LANES = json.dumps({severity: alert_lane(severity) for severity in SEVERITIES})
# The columns of ALERT_SELECT, in its order.
ALERT_COLUMNS = ("alert_id", "patient_id", "patient_name", "ward", "device_name", "alert_type", "alert_name",
                 "severity",
                 "category", "room", "value", "device_id", "source_alarm_id", "source", "triggered_by",
                 "occurred_at", "received_at", *DEVICE_ALARM_COLUMNS, "incident_id", "incident_status")

# An alert's announcement, in its severity's lane (incident management takes CRITICAL alarms
# before a flood of lower ones): its AlertMessage as an outbox row, built in the statement that
# stores the alert.
QUEUE_ALERT = insert_rows(f"""
        SELECT %(lanes)s::jsonb ->> severity, '{AlertMessage.message_id_prefix}' || alert_id,
               {AlertMessage.sql_object()}
        FROM stored""")  # noqa: S608 (constants: the message's prefix and fields)
RECORD_ALERT = Prepared("record_alert", """
    WITH patient AS (
        SELECT patient_id, name, room, status FROM patients WHERE patient_id = %(patient_id)s
    ), kind AS (
        SELECT alert_type, name, severity, category FROM alert_types WHERE alert_type = %(alert_type)s
    ), stored AS (
        INSERT INTO alerts (patient_id, alert_type, severity, category, room, value, device_id,
                            source_alarm_id, source, triggered_by, occurred_at, received_at)
        SELECT patient.patient_id, kind.alert_type, kind.severity, kind.category, patient.room,
               %(value)s::numeric, %(device_id)s::text, %(source_alarm_id)s::text, %(source)s::text,
               %(triggered_by)s::text, coalesce(%(occurred_at)s::timestamptz, %(now)s::timestamptz),
               %(now)s::timestamptz
        FROM patient, kind WHERE patient.status = 'ADMITTED'
        ON CONFLICT (device_id, source_alarm_id)
            WHERE device_id IS NOT NULL AND source_alarm_id IS NOT NULL
            DO NOTHING
        RETURNING *
    ), queued AS (""" + QUEUE_ALERT + """
    )
    SELECT (SELECT status FROM patient) AS patient_status,
           s.alert_id, s.patient_id, (SELECT name FROM patient) AS patient_name, s.ward, s.device_name,
           s.alert_type,
           (SELECT name FROM kind) AS alert_name, s.severity, s.category, s.room,
           s.value::float AS value, s.device_id, s.source_alarm_id, s.source, s.triggered_by,
           s.occurred_at, s.received_at, s.hl7_gateway_id, s.event_code, s.event_unmapped,
           s.event_phase, s.event_state, s.event_priority, s.unit, s.device_location, s.equipment,
           s.channel, s.device_cleared_at, NULL::bigint AS incident_id, NULL::text AS incident_status
    FROM (SELECT) AS one LEFT JOIN stored s ON true
""")  # noqa: S608 (QUEUE_ALERT is a constant)


@dataclass(frozen=True)
class Alarm:
    """An alarm to record, as reported (its shape checked by the request models); whether its ids
    exist and whether it is plausible are checked on record."""
    patient_id: str
    alert_type: str
    value: float | None = None
    device_id: str | None = None
    source_alarm_id: str | None = None
    occurred_at: datetime.datetime | None = None
    source: str = "DEVICE"
    triggered_by: str | None = None


def check_plausible(alarm: Alarm) -> None:
    """Rules a well-formed report can still break (422, naming the field)."""
    if alarm.source_alarm_id is not None and alarm.device_id is None:
        raise ApiError(422, "source_alarm_id identifies an alarm of one device: send device_id too",
                       field="device_id")
    if alarm.occurred_at is not None and alarm.occurred_at > clock.now() + FUTURE_TOLERANCE:
        raise ApiError(422, "occurred_at is in the future", field="occurred_at")
    if alarm.occurred_at is not None and alarm.occurred_at < EARLIEST_OCCURRENCE:
        raise ApiError(422, "occurred_at is before 2001: the device clock is not set",
                       field="occurred_at")


def record_alert(cur, report: Alarm) -> tuple[dict, bool]:
    """Store the alert and queue its announcement, in one statement: inside the caller's
    transaction, or (autocommit) a transaction of its own, which writes nothing when it raises.

    Returns (alert, created). A device retrying an alarm it already reported (same device_id
    and source_alarm_id) gets the stored alert back with created=False and nothing is written.
    """
    check_plausible(report)
    # One round trip: the patient and the alert type looked up, the alert and its outbox row
    # stored only when both are known and the patient is admitted, and the row as the API shows
    # it returned (a request used to wait for seven; the profile of POST /alerts under load was
    # mostly those waits). The relay is woken once it has committed.
    RECORD_ALERT.execute(cur, {**report.__dict__, "lanes": LANES, "now": clock.now()})
    row = cur.fetchone()
    if row["patient_status"] is None:
        raise ApiError(422, f"unknown patient_id {report.patient_id!r}", field="patient_id")
    if row["patient_status"] != "ADMITTED":
        raise ApiError(422, f"patient {report.patient_id} is not admitted", field="patient_id")
    if row["alert_name"] is None:
        raise ApiError(422, f"unknown alert_type {report.alert_type!r}", field="alert_type")
    if row["alert_id"] is None:
        # The same alarm again: a concurrent first attempt has committed by now (the insert
        # waited for it), so the row is visible.
        existing = get_alert_by_source(cur, device_id=report.device_id,
                                       source_alarm_id=report.source_alarm_id)
        if (existing["patient_id"], existing["alert_type"]) != (report.patient_id, report.alert_type):
            raise ApiError(409, f"device {report.device_id} already reported alarm "
                           f"{report.source_alarm_id} for another patient or alert type",
                           alert_id=existing["alert_id"])
        return existing, False
    wake_relay_after_commit(cur)
    return {key: row[key] for key in ALERT_COLUMNS}, True


RECORD_DEVICE_ALERT = """
    WITH stored AS (
        INSERT INTO alerts (patient_id, ward, device_name, alert_type, severity, category, room, device_id,
                            source_alarm_id, source, occurred_at, received_at)
        SELECT NULL, %(ward)s, %(device_name)s, t.alert_type, %(severity)s, t.category, NULL, %(device_id)s,
               %(source_alarm_id)s, 'DEVICE', %(occurred_at)s, %(now)s
        FROM alert_types t WHERE t.alert_type = %(alert_type)s
        ON CONFLICT (device_id, source_alarm_id)
            WHERE device_id IS NOT NULL AND source_alarm_id IS NOT NULL
            DO NOTHING
        RETURNING *
    ), queued AS (""" + QUEUE_ALERT + """
    )
    SELECT alert_id FROM stored
"""  # noqa: S608 (QUEUE_ALERT is a constant)


def record_device_alert(cur, *, alert_type: str, severity: str, device_name: str, ward: str | None,
                        device_id: str, source_alarm_id: str, occurred_at: datetime.datetime) -> int:
    """A device's own alarm, of no patient (a ward's or the hospital's device: DEVICE_SILENT), and
    its announcement, in the caller's transaction: it becomes an incident like any alert. Its
    severity is the caller's (a device watching no patient is not the alert type's default).
    Returns the alert's id: the one stored before when the device already reported that alarm."""
    cur.execute(RECORD_DEVICE_ALERT, {
        "alert_type": alert_type, "severity": severity, "device_name": device_name, "ward": ward,
        "device_id": device_id, "source_alarm_id": source_alarm_id, "occurred_at": occurred_at,
        "now": clock.now(), "lanes": LANES})
    row = cur.fetchone()
    if row is None:
        return get_alert_by_source(cur, device_id=device_id, source_alarm_id=source_alarm_id)["alert_id"]
    wake_relay_after_commit(cur)
    return row["alert_id"]


def get_alert(cur, *, alert_id: int) -> dict | None:
    cur.execute(ALERT_SELECT + " WHERE a.alert_id = %s", (alert_id,))
    return cur.fetchone()


def get_alert_by_source(cur, *, device_id: str, source_alarm_id: str) -> dict | None:
    cur.execute(ALERT_SELECT + " WHERE a.device_id = %s AND a.source_alarm_id = %s",
                (device_id, source_alarm_id))
    return cur.fetchone()


def list_alerts(cur, *, limit: int, before_id: int | None = None, severities=(), patient_id=None,
                alert_type=None, since=None, until=None) -> list[dict]:
    """Newest first, at most limit + 1 rows (the extra one says another page exists)."""
    cur.execute(ALERT_SELECT + """
        WHERE (%(before_id)s::bigint IS NULL OR a.alert_id < %(before_id)s)
          AND (cardinality(%(severities)s::text[]) = 0 OR a.severity = ANY(%(severities)s))
          AND (%(patient_id)s::text IS NULL OR a.patient_id = %(patient_id)s)
          AND (%(alert_type)s::text IS NULL OR a.alert_type = %(alert_type)s)
          AND (%(since)s::timestamptz IS NULL OR a.received_at >= %(since)s)
          AND (%(until)s::timestamptz IS NULL OR a.received_at < %(until)s)
        ORDER BY a.alert_id DESC
        LIMIT %(limit)s
    """, {"before_id": before_id, "severities": list(severities), "patient_id": patient_id,
          "alert_type": alert_type, "since": since, "until": until, "limit": limit + 1})
    return cur.fetchall()


def alert_json(alert: dict) -> dict:
    """The alert as the API shows it; `status` says whether it has become an incident yet."""
    body = {key: value for key, value in alert.items() if key not in DEVICE_ALARM_COLUMNS}
    body["status"] = "RECEIVED" if alert["incident_id"] is None else "INCIDENT_CREATED"
    for key in ("occurred_at", "received_at"):
        body[key] = alert[key].isoformat()
    body["device_alarm"] = None if alert["hl7_gateway_id"] is None else {
        "event_code": alert["event_code"], "unmapped": alert["event_unmapped"],
        "phase": alert["event_phase"], "state": alert["event_state"],
        "priority": alert["event_priority"], "unit": alert["unit"],
        "location": alert["device_location"], "equipment": alert["equipment"],
        "channel": alert["channel"],
        "cleared_at": alert["device_cleared_at"] and alert["device_cleared_at"].isoformat(),
    }
    return body
