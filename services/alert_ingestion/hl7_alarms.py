"""Storing a PCD-04 alarm: its MDC event mapped to our alert type, then the same path as a JSON
alarm (alerts.record_alert: the alert and its outbox row in one transaction), then what HL7 says
beyond it (phase, state, priority, unit, device, channel) on the alert row.

One alert of the gateway (its OBR-3 identifier) is one alert here, whatever its phases: the
first message stores it, a retransmission or a later phase (continue, end) finds it by
(device_id, source_alarm_id) and only updates its phase and state, so it stays one incident.
An "end" phase records when the device cleared the alarm (device_cleared_at) and resolves
nothing: a clinician does that."""
from healthguard.auth import Device

from . import alerts, devices
from .hl7_messages import AlertReport

UNMAPPED_ALERT_TYPE = "UNMAPPED_DEVICE_ALARM"


def gateway_device_id(gateway: dict) -> str:
    """alerts.device_id of a gateway's alarms: its alert identifiers are unique per gateway."""
    return f"hl7-gateway-{gateway['gateway_id']}"


def alert_type_for(cur, report: AlertReport) -> str | None:
    """Our alert type for the MDC event (by numeric code when the table has it, else by name;
    a row naming the measured parameter wins over one for any), or None when unknown."""
    cur.execute("""
        SELECT alert_type FROM mdc_alert_map
        WHERE (event_code = %(code)s OR event_name = %(name)s)
          AND (parameter_name IS NULL OR parameter_name = %(parameter)s)
        ORDER BY parameter_name IS NULL, event_code = %(code)s DESC NULLS LAST
        LIMIT 1
    """, {"code": report.event_code, "name": report.event_name, "parameter": report.parameter_name})
    row = cur.fetchone()
    return row["alert_type"] if row else None


def record_device_alarm(cur, *, gateway: dict, device: Device, report: AlertReport) -> tuple[dict, bool]:
    """Store the reported alarm in the caller's transaction; (alert, created) as record_alert.
    Raises ApiError as the JSON route would (403 outside the gateway's scope, 422 unknown or
    discharged patient, 409 the alert identifier already used for another patient or type)."""
    devices.check_scope(cur, device, patient_id=report.patient_id)
    alert_type = alert_type_for(cur, report)
    alert, created = alerts.record_alert(cur, alerts.Alarm(
        patient_id=report.patient_id, alert_type=alert_type or UNMAPPED_ALERT_TYPE,
        value=report.value, device_id=gateway_device_id(gateway), source_alarm_id=report.alert_id,
        occurred_at=report.occurred_at, source="DEVICE"))
    cleared_at = (report.occurred_at or alert["received_at"]) if report.phase == "end" else None
    if created:
        cur.execute("""
            UPDATE alerts SET hl7_gateway_id = %(gateway)s, event_code = %(code)s,
                   event_unmapped = %(unmapped)s, event_phase = %(phase)s, event_state = %(state)s,
                   event_priority = %(priority)s, unit = %(unit)s, device_location = %(location)s,
                   equipment = %(equipment)s, channel = %(channel)s, device_cleared_at = %(cleared)s
            WHERE alert_id = %(alert)s
        """, {"gateway": gateway["gateway_id"], "code": _event_code(report),
              "unmapped": alert_type is None, "phase": report.phase, "state": report.state,
              "priority": report.priority, "unit": report.unit, "location": report.location,
              "equipment": report.equipment, "channel": report.channel, "cleared": cleared_at,
              "alert": alert["alert_id"]})
    else:
        # A later phase or a retransmission: the latest phase and state; the first "end" stays.
        cur.execute("""
            UPDATE alerts SET event_phase = coalesce(%(phase)s, event_phase),
                   event_state = coalesce(%(state)s, event_state),
                   event_priority = coalesce(%(priority)s, event_priority),
                   device_cleared_at = coalesce(device_cleared_at, %(cleared)s)
            WHERE alert_id = %(alert)s
              AND (event_phase, event_state, event_priority, device_cleared_at)
                  IS DISTINCT FROM (coalesce(%(phase)s, event_phase), coalesce(%(state)s, event_state),
                                    coalesce(%(priority)s, event_priority),
                                    coalesce(device_cleared_at, %(cleared)s))
        """, {"phase": report.phase, "state": report.state, "priority": report.priority,
              "cleared": cleared_at, "alert": alert["alert_id"]})
    return alert, created


def _event_code(report: AlertReport) -> str:
    """The MDC event as received, e.g. "196614^MDC_EVT_ECG_ASYSTOLE"."""
    return "^".join(str(part) for part in (report.event_code, report.event_name) if part)
