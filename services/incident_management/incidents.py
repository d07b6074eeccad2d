"""Incidents: creation from an alert (once per alert, however often it is delivered), reading
and listing."""
from healthguard.domain import (
    ACTIVE_INCIDENT_STATUSES,
    INCIDENT_STATUSES,
    SEVERITIES,
    UNACKNOWLEDGED_STATUSES,
)

from . import history

TIMESTAMPS = ("created_at", "assigned_at", "acknowledged_at", "started_at", "resolved_at", "escalated_at",
              "ack_deadline", "updated_at")

# The lifecycle (ARCHITECTURE.md): action -> the statuses it may be taken from.
#   OPEN -> ASSIGNED -> ACKNOWLEDGED -> IN_PROGRESS -> RESOLVED; a claim or a reassignment makes
#   it REASSIGNED, from where the new assignee acknowledges or starts work.
ACTIONS = {
    "acknowledge": UNACKNOWLEDGED_STATUSES,
    "start": ("ACKNOWLEDGED", "REASSIGNED"),
    "resolve": ("IN_PROGRESS",),
    "claim": ACTIVE_INCIDENT_STATUSES,
    "reassign": ACTIVE_INCIDENT_STATUSES,
    "note": INCIDENT_STATUSES,
}


def allowed_actions(status: str) -> list[str]:
    return [action for action, statuses in ACTIONS.items() if status in statuses]


def alert_to_open(cur, *, alert_id: int) -> dict | None:
    """The alert, with what its incident needs from the alert type, and its incident if any."""
    cur.execute("""
        SELECT a.alert_id, a.patient_id, a.alert_type, a.severity, a.category, a.room,
               t.name AS alert_name, t.routes_to, i.incident_id, i.status AS incident_status
        FROM alerts a
        JOIN alert_types t ON t.alert_type = a.alert_type
        LEFT JOIN incidents i ON i.alert_id = a.alert_id
        WHERE a.alert_id = %s
    """, (alert_id,))
    return cur.fetchone()


def incident_title(*, severity: str, alert_name: str, room: str) -> str:
    return f"{severity}: {alert_name}, room {room}"


def open_incident(cur, alert: dict) -> tuple[dict, dict | None]:
    """The incident of this alert, created OPEN if it does not exist yet, locked FOR UPDATE
    until the caller's transaction ends. Returns (incident, its CREATED history row if this
    call created it, else None).

    The unique key on incidents.alert_id decides between two consumers handling the same
    alert at once: the second insert waits for the first to commit, then does nothing.
    """
    cur.execute("""
        INSERT INTO incidents (alert_id, patient_id, alert_type, severity, category, room, title)
        VALUES (%(alert_id)s, %(patient_id)s, %(alert_type)s, %(severity)s, %(category)s, %(room)s,
                %(title)s)
        ON CONFLICT (alert_id) DO NOTHING
        RETURNING *
    """, {**alert, "title": incident_title(severity=alert["severity"], alert_name=alert["alert_name"],
                                           room=alert["room"])})
    created = cur.fetchone()
    if created is not None:
        entry = history.record(cur, incident=created, actor_id=None, action="CREATED", previous_status=None,
                               note=f"from alert {alert['alert_id']} ({alert['alert_type']})")
        return created, entry
    cur.execute("SELECT * FROM incidents WHERE alert_id = %s FOR UPDATE", (alert["alert_id"],))
    return cur.fetchone(), None


def lock_incident(cur, *, incident_id: int, skip_locked: bool = False) -> dict | None:
    """The incident, locked until the transaction ends: changes of one incident queue here, so
    each sees the status the previous one left."""
    if skip_locked:
        cur.execute("SELECT * FROM incidents WHERE incident_id = %s FOR UPDATE SKIP LOCKED", (incident_id,))
    else:
        cur.execute("SELECT * FROM incidents WHERE incident_id = %s FOR UPDATE", (incident_id,))
    return cur.fetchone()


def open_unassigned(cur, *, limit: int) -> list[dict]:
    cur.execute("""
        SELECT i.incident_id, t.routes_to
        FROM incidents i JOIN alert_types t ON t.alert_type = i.alert_type
        WHERE i.status = 'OPEN'
        ORDER BY array_position(%s::text[], i.severity), i.incident_id
        LIMIT %s
    """, (list(SEVERITIES), limit))
    return cur.fetchall()


INCIDENT_SELECT = """
    SELECT i.*, p.name AS patient_name, t.name AS alert_name,
           e.name AS assignee_name, e.role AS assignee_role, e.tier AS assignee_tier
    FROM incidents i
    JOIN patients p ON p.patient_id = i.patient_id
    JOIN alert_types t ON t.alert_type = i.alert_type
    LEFT JOIN employees e ON e.employee_id = i.assigned_to
"""


def get_incident(cur, *, incident_id: int) -> dict | None:
    cur.execute(INCIDENT_SELECT + " WHERE i.incident_id = %s", (incident_id,))
    return cur.fetchone()


def list_incidents(cur, *, limit: int, before_id: int | None = None, statuses=(), severities=(),
                   assigned_to: str | None = None, patient_id: str | None = None, since=None) -> list[dict]:
    """Newest first, at most limit + 1 rows (the extra one says another page exists)."""
    cur.execute(INCIDENT_SELECT + """
        WHERE (%(before_id)s::bigint IS NULL OR i.incident_id < %(before_id)s)
          AND (cardinality(%(statuses)s::text[]) = 0 OR i.status = ANY(%(statuses)s))
          AND (cardinality(%(severities)s::text[]) = 0 OR i.severity = ANY(%(severities)s))
          AND (%(assigned_to)s::text IS NULL OR i.assigned_to = %(assigned_to)s)
          AND (%(patient_id)s::text IS NULL OR i.patient_id = %(patient_id)s)
          AND (%(since)s::timestamptz IS NULL OR i.created_at >= %(since)s)
        ORDER BY i.incident_id DESC
        LIMIT %(limit)s
    """, {"before_id": before_id, "statuses": list(statuses), "severities": list(severities),
          "assigned_to": assigned_to, "patient_id": patient_id, "since": since, "limit": limit + 1})
    return cur.fetchall()


def incident_detail(cur, incident: dict) -> dict:
    """The incident with its alert, assignee, notes, assignments and history (the audit trail)."""
    incident_id = incident["incident_id"]
    cur.execute("""
        SELECT alert_id, patient_id, alert_type, severity, category, room, value::float AS value,
               device_id, source_alarm_id, source, triggered_by, occurred_at, received_at
        FROM alerts WHERE alert_id = %s
    """, (incident["alert_id"],))
    alert = cur.fetchone()
    cur.execute("""
        SELECT n.note_id, n.author_id, e.name AS author_name, n.body, n.created_at
        FROM incident_notes n JOIN employees e ON e.employee_id = n.author_id
        WHERE n.incident_id = %s ORDER BY n.note_id
    """, (incident_id,))
    notes = cur.fetchall()
    cur.execute("""
        SELECT a.assignment_id, a.employee_id, e.name, e.role, a.assigned_by, a.reason,
               a.assigned_at, a.ended_at
        FROM incident_assignments a JOIN employees e ON e.employee_id = a.employee_id
        WHERE a.incident_id = %s ORDER BY a.assignment_id
    """, (incident_id,))
    assignments = cur.fetchall()
    return {**incident_json(incident), "alert": _iso(alert, ("occurred_at", "received_at")),
            "notes": [_iso(n, ("created_at",)) for n in notes],
            "assignments": [_iso(a, ("assigned_at", "ended_at")) for a in assignments],
            "history": [_iso(h, ("created_at",)) for h in history.for_incident(cur, incident_id=incident_id)]}


def _iso(row: dict | None, keys) -> dict | None:
    if row is None:
        return None
    return {**row, **{k: row[k].isoformat() if row[k] is not None else None for k in keys}}


def incident_json(incident: dict) -> dict:
    body = {key: value for key, value in incident.items()
            if key not in ("assignee_name", "assignee_role", "assignee_tier")}
    body = _iso(body, [key for key in TIMESTAMPS if key in body])
    body["assignee"] = None if incident["assigned_to"] is None else {
        "employee_id": incident["assigned_to"], "name": incident.get("assignee_name"),
        "role": incident.get("assignee_role"), "tier": incident.get("assignee_tier")}
    body["allowed_actions"] = allowed_actions(incident["status"])
    return body
