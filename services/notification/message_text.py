"""What an off-tab channel says about an alarm, written once for push, email (and issue 23's
badge, SMS and voice): the minimum necessary. Severity, alarm type, room and ward, the incident
number; never the patient's name or id unless NOTIFY_IDENTIFYING_DATA=true allows identifying
data to leave the hospital network (a push service, a mail relay and a phone are outside it).

The incident's own title is not reused: what it holds is incident management's choice, and a
title naming the patient one day must not leak through here.
"""
import html

from .channels.base import Alarm, Attempt


def alarm_for(cur, *, incident_id: int, identifying: bool) -> Alarm | None:
    """The Alarm of an incident, or None when it is gone."""
    cur.execute("""
        SELECT i.incident_id, i.severity, i.room, t.name AS alert_name, coalesce(p.ward, a.ward) AS ward,
               p.name AS patient_name, a.device_name
        FROM incidents i
        JOIN alert_types t ON t.alert_type = i.alert_type
        JOIN alerts a ON a.alert_id = i.alert_id
        LEFT JOIN patients p ON p.patient_id = i.patient_id
        WHERE i.incident_id = %s""", (incident_id,))
    row = cur.fetchone()
    if row is None:
        return None
    # A device's own alarm (no patient, migration 0022) is at the device, not in a room.
    room = (f"room {row['room']}" if row["room"] else
            f"device {row['device_name']}" if row["device_name"] else "room unknown")
    title = f"{row['severity']}: {row['alert_name']}, {room}"
    label = row["patient_name"] if identifying else None
    where = f"{room}, ward {row['ward']}" if row["ward"] else room
    patient = f" Patient: {label}." if label else ""
    summary = (f"{row['alert_name']} ({row['severity'].lower()}) in {where}. "
               f"Incident {row['incident_id']}.{patient}")
    return Alarm(incident_id=row["incident_id"], severity=row["severity"], alert_name=row["alert_name"],
                 room=row["room"], ward=row["ward"], patient_label=label, title=title, summary=summary)


def push_payload(alarm: Alarm, attempt: Attempt) -> dict:
    """The JSON the service worker receives (web-ui's service worker reads these names):
    `attempt_id` is the notification's tag, `ack_token` goes to POST /api/v1/channel-ack."""
    payload = {"v": 1, "type": "alarm", "incident_id": alarm.incident_id, "attempt_id": attempt.id,
               "severity": alarm.severity, "alert_name": alarm.alert_name, "room": alarm.room,
               "title": alarm.title, "body": alarm.summary, "ack_token": attempt.ack_token,
               "url": f"/incidents/{alarm.incident_id}"}
    if alarm.patient_label:
        payload["patient"] = alarm.patient_label
    return payload


def email_text(alarm: Alarm, *, ack_url: str) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of the alarm email, with its one-time acknowledge link."""
    subject = f"[HealthGuard] {alarm.title}"
    text = (f"{alarm.summary}\n\n"
            f"Acknowledge (one-time link, valid for a short while):\n{ack_url}\n\n"
            f"Open HealthGuard for the details. This message carries no patient data by design.\n")
    if alarm.patient_label:
        text = text.replace(" This message carries no patient data by design.", "")
    body = (f"<p>{html.escape(alarm.summary)}</p>"
            f'<p><a href="{html.escape(ack_url, quote=True)}">Acknowledge</a> (one-time link, valid '
            f"for a short while)</p><p>Open HealthGuard for the details.</p>")
    return subject, text, f"<!doctype html><html><body>{body}</body></html>"
