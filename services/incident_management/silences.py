"""Silences: alarms a ward already knows about (a patient in surgery or in transfer, a monitor
being cleaned, a known-artefact lead) are stored and shown, marked silenced, and page nobody,
until the silence ends. Then every alarm it held that is still OPEN is offered at once.

The limits that keep a silence safe (alarm fatigue is a Joint Commission NPSG, unsafe silencing
is how it kills):
- a CRITICAL (life-threatening) alert type only by device (a monitor under maintenance), never by
  ward or type alone: 422;
- any silence that may hold a CRITICAL alarm (of a CRITICAL type, or a device's every alarm)
  needs a supervisor: 403;
- a silence without an alert type and without a device never holds a CRITICAL alarm;
- at most 8 hours; IN_SURGERY and TRANSFER name a patient and also end when the patient returns;
- a silence never hides an incident already open: only an alarm that would open a new incident
  is held (a repeat joins its open incident and pages as before).

Its deadline is in the database (silences.ends_at); end_expired_silences.py ends it by the
platform's clock. Creating, editing and ending is audited (silence_audit).
"""
import datetime
import json

from healthguard import clock
from healthguard.errors import ApiError
from healthguard.incident_events import silence_ended_message, silenced_message

from . import history
from .events import Announcement, announce_many

MAX_DURATION = datetime.timedelta(hours=8)
REASONS = ("IN_SURGERY", "TRANSFER", "DEVICE_CLEANING", "DEVICE_MAINTENANCE", "KNOWN_ARTEFACT", "OTHER")
UNTIL_RETURN = ("IN_SURGERY", "TRANSFER")  # end when the patient returns
MATCHERS = ("patient_id", "device_id", "alert_type", "ward")
# The NOTIFY channel the retrier of OPEN incidents wakes on (assign_open_incidents.py).
RELEASED_CHANNEL = "clinician_available"

RUNNING = "s.ended_at IS NULL AND s.starts_at <= %(at)s AND s.ends_at > %(at)s"


def _critical_types(cur) -> set[str]:
    cur.execute("SELECT alert_type FROM alert_types WHERE severity = 'CRITICAL'")
    return {row["alert_type"] for row in cur.fetchall()}


def silences_for(cur, *, alerts: list[dict], at: datetime.datetime) -> dict[int, int]:
    """alert_id -> the running silence that holds it, for a batch of alerts (one query). A
    silence without a device and without an alert type never holds a CRITICAL alarm."""
    if not alerts:
        return {}
    cur.execute(f"""
        SELECT DISTINCT ON (a.alert_id) a.alert_id, s.silence_id
        FROM alerts a
        LEFT JOIN patients p ON p.patient_id = a.patient_id  -- none: a device's own alarm (0022)
        JOIN silences s ON {RUNNING}
          AND (s.patient_id IS NULL OR s.patient_id = a.patient_id)
          AND (s.device_id IS NULL OR s.device_id = a.device_id)
          AND (s.alert_type IS NULL OR s.alert_type = a.alert_type)
          AND (s.ward IS NULL OR s.ward = coalesce(p.ward, a.ward))
          AND (a.severity <> 'CRITICAL' OR s.device_id IS NOT NULL OR s.alert_type IS NOT NULL)
        WHERE a.alert_id = ANY(%(ids)s)
        ORDER BY a.alert_id, s.silence_id
    """, {"ids": [a["alert_id"] for a in alerts], "at": at})  # noqa: S608 (a constant condition)
    return {row["alert_id"]: row["silence_id"] for row in cur.fetchall()}


def hold(cur, *, incidents: list[tuple[dict, int]]) -> None:
    """Mark new OPEN incidents as held by their silence ((incident, silence_id)), with a history
    row; every dashboard sees each appear at once, marked silenced (an INCIDENT_CREATED event
    that tells and pages nobody: only its incident_updated frame goes out)."""
    if not incidents:
        return
    cur.execute("""
        UPDATE incidents i SET silenced_by = h.silence_id
        FROM unnest(%s::bigint[], %s::bigint[]) AS h(incident_id, silence_id)
        WHERE i.incident_id = h.incident_id AND i.status = 'OPEN'
    """, ([i["incident_id"] for i, _ in incidents], [s for _, s in incidents]))
    entries = history.record_many(cur, action="SILENCED", changes=[
        (incident, incident["status"], f"held by silence {silence_id}: nobody paged")
        for incident, silence_id in incidents])
    for incident, silence_id in incidents:
        incident["silenced_by"] = silence_id
    announce_many(cur, [Announcement(incident, "INCIDENT_CREATED", entries[incident["incident_id"]], [],
                                     silenced_message(incident), {"reason": "SILENCED", "paged": []})
                        for incident, _ in incidents])


def _check(cur, *, fields: dict, clinician, at: datetime.datetime) -> None:
    """The limits (see the module's docstring) of a silence as it would be."""
    if not any(fields.get(m) for m in MATCHERS):
        raise ApiError(422, "a silence matches at least a patient, a device, an alert type or a ward",
                       field="patient_id")
    if fields["reason"] in UNTIL_RETURN and not fields.get("patient_id"):
        raise ApiError(422, f"a {fields['reason']} silence names the patient", field="patient_id")
    if fields["ends_at"] <= at:
        raise ApiError(422, "ends_at is in the past", field="ends_at")
    if fields["ends_at"] - fields["starts_at"] > MAX_DURATION:
        raise ApiError(422, "a silence lasts at most 8 hours", field="ends_at")
    if fields.get("patient_id"):
        cur.execute("SELECT 1 FROM patients WHERE patient_id = %s", (fields["patient_id"],))
        if cur.fetchone() is None:
            raise ApiError(422, f"unknown patient {fields['patient_id']!r}", field="patient_id")
    critical = _critical_types(cur)
    alert_type = fields.get("alert_type")
    if alert_type:
        cur.execute("SELECT 1 FROM alert_types WHERE alert_type = %s", (alert_type,))
        if cur.fetchone() is None:
            raise ApiError(422, f"unknown alert type {alert_type!r}", field="alert_type")
    if alert_type in critical and (not fields.get("device_id") or fields.get("ward")):
        raise ApiError(422, f"{alert_type} is life-threatening: it may be silenced only for one device "
                            "(a monitor under maintenance), never by ward or type", field="alert_type",
                       rule="critical_only_by_device")
    covers_critical = alert_type in critical or (fields.get("device_id") and not alert_type)
    if covers_critical and not clinician.is_supervisor:
        raise ApiError(403, "a silence that may hold a life-threatening (CRITICAL) alarm needs a supervisor",
                       rule="critical_needs_supervisor")


COLUMNS = ("silence_id", "patient_id", "device_id", "alert_type", "ward", "reason", "note", "created_by",
           "starts_at", "ends_at", "ended_at", "ended_by", "end_reason")


def _json(row: dict) -> dict:
    body = {k: row[k] for k in COLUMNS}
    for key in ("starts_at", "ends_at", "ended_at"):
        body[key] = body[key].isoformat() if body[key] else None
    body["active"] = row["ended_at"] is None and row["ends_at"] > clock.now()
    body["held_incidents"] = row.get("held_incidents", [])
    body["alert_name"] = row.get("alert_name")
    return body


def _audit(cur, silence: dict, *, action: str, actor_id: str | None, at) -> None:
    cur.execute("""
        INSERT INTO silence_audit (silence_id, action, actor_id, at, silence) VALUES (%s, %s, %s, %s, %s)
    """, (silence["silence_id"], action, actor_id, at, json.dumps(_json(silence))))


def create_silence(cur, *, fields: dict, clinician) -> dict:
    at = clock.now()
    fields = {**fields, "starts_at": at}
    _check(cur, fields=fields, clinician=clinician, at=at)
    cur.execute("""
        INSERT INTO silences (patient_id, device_id, alert_type, ward, reason, note, created_by,
                              starts_at, ends_at)
        VALUES (%(patient_id)s, %(device_id)s, %(alert_type)s, %(ward)s, %(reason)s, %(note)s, %(by)s,
                %(starts_at)s, %(ends_at)s)
        RETURNING *
    """, {**{m: fields.get(m) for m in MATCHERS}, "reason": fields["reason"], "note": fields.get("note"),
          "by": clinician.employee_id, "starts_at": at, "ends_at": fields["ends_at"]})
    silence = cur.fetchone()
    _audit(cur, silence, action="CREATED", actor_id=clinician.employee_id, at=at)
    return _json(silence)


def _lock(cur, silence_id: int) -> dict:
    cur.execute("SELECT * FROM silences WHERE silence_id = %s FOR UPDATE", (silence_id,))
    silence = cur.fetchone()
    if silence is None:
        raise ApiError(404, f"no silence {silence_id}")
    if silence["ended_at"] is not None or silence["ends_at"] <= clock.now():
        raise ApiError(409, f"silence {silence_id} has ended")
    return silence


def edit_silence(cur, *, silence_id: int, changes: dict, clinician) -> dict:
    """Change a running silence's end time or note, under the same limits (8 h from its start)."""
    at = clock.now()
    silence = _lock(cur, silence_id)
    fields = {**silence, **changes}
    _check(cur, fields=fields, clinician=clinician, at=at)
    cur.execute("UPDATE silences SET ends_at = %s, note = %s WHERE silence_id = %s RETURNING *",
                (fields["ends_at"], fields.get("note"), silence_id))
    silence = cur.fetchone()
    _audit(cur, silence, action="EDITED", actor_id=clinician.employee_id, at=at)
    return _json(silence)


def end_silence(cur, *, silence_id: int, clinician) -> dict:
    silence = _lock(cur, silence_id)
    if silence_covers_critical(cur, silence) and not clinician.is_supervisor:
        raise ApiError(403, "only a supervisor ends a silence that may hold a CRITICAL alarm")
    [ended] = _end(cur, [silence_id], action="ENDED", actor_id=clinician.employee_id, at=clock.now())
    return ended


def silence_covers_critical(cur, silence: dict) -> bool:
    critical = silence["alert_type"] in _critical_types(cur)
    return critical or bool(silence["device_id"] and not silence["alert_type"])


def patient_returned(cur, *, patient_id: str, clinician) -> list[dict]:
    """The patient is back from surgery or transfer: their IN_SURGERY and TRANSFER silences end."""
    cur.execute(f"""
        SELECT s.silence_id FROM silences s
        WHERE s.patient_id = %(patient_id)s AND s.reason = ANY(%(reasons)s) AND {RUNNING}
        ORDER BY s.silence_id FOR UPDATE
    """, {"patient_id": patient_id, "reasons": list(UNTIL_RETURN), "at": clock.now()})  # noqa: S608
    ids = [row["silence_id"] for row in cur.fetchall()]
    return _end(cur, ids, action="PATIENT_RETURNED", actor_id=clinician.employee_id, at=clock.now())


def end_expired(cur, *, at: datetime.datetime) -> list[dict]:
    """Silences whose end time has come (by the platform's clock): ended, their alarms released."""
    cur.execute("""
        SELECT silence_id FROM silences WHERE ended_at IS NULL AND ends_at <= %s
        ORDER BY silence_id FOR UPDATE SKIP LOCKED
    """, (at,))
    return _end(cur, [row["silence_id"] for row in cur.fetchall()], action="EXPIRED", actor_id=None, at=at)


def _end(cur, silence_ids: list[int], *, action: str, actor_id: str | None, at) -> list[dict]:
    """End these silences; every OPEN incident they held is released and the retrier woken at
    commit, so a still-active alarm is paged at once. The dashboards drop its mark at once (an
    INCIDENT_SILENCE_ENDED event paging nobody: the retrier's assignment pages)."""
    if not silence_ids:
        return []
    end_reason = {"ENDED": "ENDED", "EXPIRED": "EXPIRED", "PATIENT_RETURNED": "PATIENT_RETURNED"}[action]
    cur.execute("""
        UPDATE silences SET ended_at = least(ends_at, %s), ended_by = %s, end_reason = %s
        WHERE silence_id = ANY(%s) RETURNING *
    """, (at, actor_id, end_reason, silence_ids))
    ended = cur.fetchall()
    cur.execute("""
        UPDATE incidents SET silenced_by = NULL, updated_at = %s
        WHERE silenced_by = ANY(%s) AND status = 'OPEN' RETURNING *
    """, (at, silence_ids))
    released = cur.fetchall()
    if released:
        entries = history.record_many(cur, action="SILENCE_ENDED", changes=[
            (incident, "OPEN", "its silence ended: offered for assignment now") for incident in released])
        announce_many(cur, [Announcement(incident, "INCIDENT_SILENCE_ENDED", entries[incident["incident_id"]],
                                         [], silence_ended_message(incident), {"paged": []})
                            for incident in released])
        cur.execute("SELECT pg_notify(%s, 'silence-ended')", (RELEASED_CHANNEL,))
    for silence in ended:
        _audit(cur, silence, action=action, actor_id=actor_id, at=at)
    return [_json(s) for s in ended]


def list_silences(cur, *, ward: str | None, active_only: bool) -> list[dict]:
    """Silences (running ones first), with the incidents each holds now."""
    at = clock.now()
    cur.execute(f"""
        SELECT s.*, array(SELECT i.incident_id FROM incidents i
                          WHERE i.silenced_by = s.silence_id AND i.status = 'OPEN'
                          ORDER BY i.incident_id) AS held_incidents, t.name AS alert_name
        FROM silences s
        LEFT JOIN alert_types t ON t.alert_type = s.alert_type
        LEFT JOIN patients p ON p.patient_id = s.patient_id
        WHERE (%(ward)s::text IS NULL OR s.ward = %(ward)s OR p.ward = %(ward)s)
          AND (NOT %(active)s OR ({RUNNING}))
        ORDER BY ({RUNNING}) DESC, s.silence_id DESC
        LIMIT 200
    """, {"ward": ward, "active": active_only, "at": at})  # noqa: S608
    return [_json(row) for row in cur.fetchall()]


def silence_audit(cur, *, silence_id: int) -> list[dict]:
    cur.execute("SELECT audit_id, action, actor_id, at, silence FROM silence_audit WHERE silence_id = %s "
                "ORDER BY audit_id", (silence_id,))
    return [{**row, "at": row["at"].isoformat()} for row in cur.fetchall()]
