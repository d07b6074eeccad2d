"""Incidents: creation from an alert (once per alert, however often it is delivered; repeats of an
alarm correlated into the incident already open for it), reading and listing."""
import datetime
import decimal
from dataclasses import dataclass

from healthguard import clock
from healthguard.domain import ACTIONS, SEVERITIES
from healthguard.incident_events import paged_now, unowned_since

from . import history, routing

TIMESTAMPS = ("created_at", "assigned_at", "acknowledged_at", "started_at", "resolved_at", "escalated_at",
              "ack_deadline", "updated_at", "last_alert_at", "unowned_since")

def actions_in_status(status: str) -> list[str]:
    """What the lifecycle allows anyone in `status` (domain.ACTIONS), as a 409 says it; what one
    caller may do is lifecycle.CallerActions'."""
    return [action for action, statuses in ACTIONS.items() if status in statuses]


def alert_to_open(cur, *, alert_id: int) -> dict | None:
    """The alert, with what its incident needs from the alert type, and its incident if any
    (the one opened for it, or the one it was correlated into as a repeat)."""
    return alerts_to_open(cur, alert_ids=[alert_id]).get(alert_id)


def alerts_to_open(cur, *, alert_ids) -> dict[int, dict]:
    """alert_to_open() of several alerts at once: alert_id -> row, for those that exist."""
    cur.execute(f"""
        SELECT a.alert_id, a.patient_id, a.alert_type, a.severity, a.category, a.room, a.ward,
               a.device_name, coalesce(i.incident_id, r.incident_id) AS incident_id,
               coalesce(i.status, r.status) AS incident_status, {routing.ROUTE_COLUMNS}
        FROM alerts a
        JOIN alert_types t ON t.alert_type = a.alert_type
        LEFT JOIN escalation_policies p ON p.severity = a.severity
        LEFT JOIN incidents i ON i.alert_id = a.alert_id
        LEFT JOIN incident_alerts l ON l.alert_id = a.alert_id
        LEFT JOIN incidents r ON r.incident_id = l.incident_id
        WHERE a.alert_id = ANY(%s)
    """, (list(alert_ids),))  # noqa: S608 (a constant column list)
    return {row["alert_id"]: row for row in cur.fetchall()}


def incident_title(*, severity: str, alert_name: str, room: str | None, device_name: str | None = None,
                   ward: str | None = None) -> str:
    """Where the alarm is: the patient's room, or for a device's own alarm (no patient) the device
    and its ward."""
    if room is not None:
        return f"{severity}: {alert_name}, room {room}"
    return f"{severity}: {alert_name}, {device_name}" + (f" ({ward})" if ward else " (hospital-wide)")


# Two consumers (threads, worker processes, instances) handling repeats of one alarm at the same
# moment queue on this lock, keyed by patient and alert type, so exactly one opens the incident
# and the other finds it. A lock rather than a unique index on unresolved incidents: a repeat
# after the window has closed must be able to open a second one while the first is unresolved.
CORRELATION_LOCK_ID = 0x4847_0005


@dataclass(frozen=True)
class Opened:
    """What open_incidents did for an alert: the incident (locked until the transaction ends),
    its CREATED history row if this call created it, its ALERT_CORRELATED row if the alert was
    attached to it as a repeat, and whether that repeat raised its severity."""
    incident: dict
    created: dict | None = None
    correlated: dict | None = None
    raised_from: str | None = None


def _alarm(alert: dict) -> str:
    """The correlation key of an alert (or of the incident it opened). A device's own alarm (no
    patient) is never a repeat: its device has one open silence at a time, which its incident
    ends (0022), so it keys by its own alert."""
    if alert["patient_id"] is None:
        return f"alert/{alert['alert_id']}"
    return f"{alert['patient_id']}/{alert['alert_type']}"


def lock_alarms(cur, alerts) -> None:
    """Take the correlation locks of several alarms (a batch) in one order, the order of the
    lock keys, so two batches holding some of the same alarms queue instead of deadlocking."""
    cur.execute("""
        SELECT count(pg_advisory_xact_lock(%s, key)) FROM (
            SELECT DISTINCT hashtext(alarm) AS key FROM unnest(%s::text[]) alarm ORDER BY 1) keys
    """, (CORRELATION_LOCK_ID, sorted({_alarm(alert) for alert in alerts})))


def open_incidents(cur, alerts: list[dict], *, now: datetime.datetime,
                   window: datetime.timedelta) -> list[Opened]:
    """The incident of each alert (a batch, in arrival order): the one already opened for it or
    correlated with it (a redelivery), else an unresolved incident of the same patient and alert
    type whose alarm last sounded within `window`, opened before or earlier in this batch (the
    alert is attached to it as a repeat), else a new OPEN one. In a few statements for the whole
    batch, under the alarms' correlation locks; every incident returned is locked until the
    transaction ends."""
    lock_alarms(cur, alerts)
    ids = [alert["alert_id"] for alert in alerts]
    cur.execute("""
        SELECT x.for_alert, i.* FROM incidents i
        JOIN (SELECT alert_id AS for_alert, incident_id FROM incidents WHERE alert_id = ANY(%(ids)s)
              UNION ALL
              SELECT alert_id, incident_id FROM incident_alerts WHERE alert_id = ANY(%(ids)s)) x
          ON x.incident_id = i.incident_id
        FOR UPDATE OF i
    """, {"ids": ids})
    existing = {row.pop("for_alert"): row for row in cur.fetchall()}
    fresh = [alert for alert in alerts if alert["alert_id"] not in existing]
    # The newest unresolved incident of each alarm, looked up in unresolved_incidents (kept by
    # triggers, db/migrations/0013): its plan does not depend on how stale the statistics of a
    # year of history are. An incident resolved meanwhile is seen resolved once it is locked.
    cur.execute("""
        SELECT * FROM incidents WHERE incident_id IN (
            SELECT DISTINCT ON (patient_id, alert_type) incident_id FROM unresolved_incidents
            WHERE (patient_id, alert_type) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
              AND last_alert_at >= %s
            ORDER BY patient_id, alert_type, last_alert_at DESC)
        FOR UPDATE
    """, ([a["patient_id"] for a in fresh], [a["alert_type"] for a in fresh], now - window))
    sounding = {_alarm(row): row for row in cur.fetchall() if row["status"] != "RESOLVED"}
    # Which alert opens a new incident: the first of its alarm with nothing sounding; the later
    # ones of that alarm in the batch are its repeats.
    opening = {}
    for alert in fresh:
        if _alarm(alert) not in sounding and _alarm(alert) not in opening:
            opening[_alarm(alert)] = alert
    created = _create(cur, list(opening.values()), now=now)
    sounding.update({_alarm(incident): incident for incident, _ in created.values()})
    opened = []
    for alert in alerts:
        if alert["alert_id"] in existing:
            opened.append(Opened(existing[alert["alert_id"]]))
        elif alert["alert_id"] in created:
            incident, entry = created[alert["alert_id"]]
            opened.append(Opened(incident, created=entry))
        else:
            repeat = _correlate(cur, sounding[_alarm(alert)], alert, now=now)
            sounding[_alarm(alert)] = repeat.incident
            opened.append(repeat)
    return opened


def _create(cur, alerts: list[dict], *, now: datetime.datetime) -> dict[int, tuple[dict, dict]]:
    """New OPEN incidents for these alerts, with their CREATED history rows:
    alert_id -> (incident, history row)."""
    if not alerts:
        return {}
    cur.execute("""
        INSERT INTO incidents (alert_id, patient_id, alert_type, severity, category, room, title,
                               created_at, updated_at, last_alert_at)
        SELECT alert_id, patient_id, alert_type, severity, category, room, title, %s, %s, %s
        FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])
             WITH ORDINALITY AS a(alert_id, patient_id, alert_type, severity, category, room, title, n)
        ORDER BY n
        RETURNING *
    """, (now, now, now, *([a[key] for a in alerts] for key in (
        "alert_id", "patient_id", "alert_type", "severity", "category", "room")),
        [incident_title(severity=a["severity"], alert_name=a["alert_name"], room=a["room"],
                        device_name=a["device_name"], ward=a["ward"]) for a in alerts]))
    incidents = {row["alert_id"]: row for row in cur.fetchall()}
    entries = history.record_many(cur, action="CREATED", changes=[
        (incidents[a["alert_id"]], None, f"from alert {a['alert_id']} ({a['alert_name']})") for a in alerts])
    return {alert_id: (incident, entries[incident["incident_id"]])
            for alert_id, incident in incidents.items()}


def _correlate(cur, incident: dict, alert: dict, *, now: datetime.datetime) -> Opened:
    """Attach a repeat to the incident: linked, counted, and its severity raised if the repeat is
    more severe."""
    raised = SEVERITIES.index(alert["severity"]) < SEVERITIES.index(incident["severity"])
    severity = alert["severity"] if raised else incident["severity"]
    cur.execute("INSERT INTO incident_alerts (alert_id, incident_id, correlated_at) VALUES (%s, %s, %s)",
                (alert["alert_id"], incident["incident_id"], now))
    cur.execute("""
        UPDATE incidents
        SET alert_count = alert_count + 1, last_alert_at = %(now)s, severity = %(severity)s,
            title = %(title)s, updated_at = %(now)s
        WHERE incident_id = %(incident_id)s
        RETURNING *
    """, {"now": now, "severity": severity, "incident_id": incident["incident_id"],
          "title": incident_title(severity=severity, alert_name=alert["alert_name"], room=incident["room"])
          if raised else incident["title"]})
    updated = cur.fetchone()
    note = f"alert {alert['alert_id']} repeated the alarm ({updated['alert_count']} in all)"
    if raised:
        note += f"; severity raised from {incident['severity']} to {severity}"
    entry = history.record(cur, incident=updated, actor_id=None, action="ALERT_CORRELATED",
                           previous_status=incident["status"], note=note)
    return Opened(updated, correlated=entry, raised_from=incident["severity"] if raised else None)


def lock_incident(cur, *, incident_id: int, skip_locked: bool = False) -> dict | None:
    """The incident, locked until the transaction ends: changes of one incident queue here, so
    each sees the status the previous one left."""
    if skip_locked:
        cur.execute("SELECT * FROM incidents WHERE incident_id = %s FOR UPDATE SKIP LOCKED", (incident_id,))
    else:
        cur.execute("SELECT * FROM incidents WHERE incident_id = %s FOR UPDATE", (incident_id,))
    return cur.fetchone()


def open_unassigned(cur, *, limit: int) -> list[dict]:
    """The OPEN incidents to offer again, most severe first (a CRITICAL one must not wait behind
    a backlog of LOW ones nobody could take), oldest first within a severity; not those a
    silence holds (silences.py releases them when it ends)."""
    cur.execute(f"""
        SELECT i.incident_id, i.severity, i.patient_id, {routing.ROUTE_COLUMNS}
        FROM incidents i JOIN alert_types t ON t.alert_type = i.alert_type
        LEFT JOIN escalation_policies p ON p.severity = i.severity
        WHERE i.status = 'OPEN' AND i.silenced_by IS NULL
        ORDER BY array_position(%s::text[], i.severity), i.incident_id
        LIMIT %s
    """, (list(SEVERITIES), limit))  # noqa: S608 (a constant column list)
    return cur.fetchall()


# With the patient's context (ward, age), the reading's unit and normal range, and whether the
# alert was a manual test (a drill must never look like a real alarm). A device's own alarm has
# no patient: its ward and device name are its alert's (0022).
INCIDENT_SELECT = """
    SELECT i.*, p.name AS patient_name, coalesce(p.ward, a.ward) AS ward, a.device_name,
           extract(year FROM age(%(now)s, p.date_of_birth))::int AS patient_age,
           t.name AS alert_name, t.unit, t.normal_min::float AS normal_min,
           t.normal_max::float AS normal_max, a.source = 'MANUAL' AS is_test,
           e.name AS assignee_name, e.role AS assignee_role, e.tier AS assignee_tier
    FROM incidents i
    LEFT JOIN patients p ON p.patient_id = i.patient_id
    JOIN alert_types t ON t.alert_type = i.alert_type
    JOIN alerts a ON a.alert_id = i.alert_id
    LEFT JOIN employees e ON e.employee_id = i.assigned_to
"""


def get_incident(cur, *, incident_id: int) -> dict | None:
    cur.execute(INCIDENT_SELECT + " WHERE i.incident_id = %(incident_id)s",
                {"incident_id": incident_id, "now": clock.now()})
    return cur.fetchone()


def _like(text: str) -> str:
    """`text` anywhere in a value, its LIKE wildcards taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# The list's orders. priority (the default): active before resolved, most severe first, those
# waiting for an acknowledgement before those taken on, oldest first; resolved newest first
# (incident_list_priority(), 0014_ownership_rules.sql, with its index). newest: newest first.
LIST_ORDERS = ("priority", "newest")
PRIORITY_KEY = "incident_list_priority(i.status, i.severity, i.created_at)"


def list_incidents(cur, *, limit: int, order: str = "priority", after=None, statuses=(), severities=(),
                   assigned_to: str | None = None, patient_id: str | None = None, since=None,
                   ward: str | None = None, search: str | None = None) -> list[dict]:
    """A page in `order`, at most limit + 1 rows (the extra one says another page exists).
    `after`: where the previous page ended (list_cursor()'s value, parsed by parse_cursor()).
    `search`: the room, the patient's id, or part of the patient's name (or of a device's, for
    its own alarm)."""
    if order == "priority":
        position = (f"(%(after_key)s::numeric IS NULL"
                    f" OR ({PRIORITY_KEY}, i.incident_id) > (%(after_key)s, %(after_id)s))")
        ordering = f"{PRIORITY_KEY}, i.incident_id"
        after_key, after_id = after or (None, None)
    else:
        position = "(%(after_id)s::bigint IS NULL OR i.incident_id < %(after_id)s)"
        ordering = "i.incident_id DESC"
        after_key, after_id = None, after
    cur.execute(INCIDENT_SELECT.replace("SELECT i.*", f"SELECT i.*, {PRIORITY_KEY} AS list_key", 1) + f"""
        WHERE {position}
          AND (cardinality(%(statuses)s::text[]) = 0 OR i.status = ANY(%(statuses)s))
          AND (cardinality(%(severities)s::text[]) = 0 OR i.severity = ANY(%(severities)s))
          AND (%(assigned_to)s::text IS NULL OR i.assigned_to = %(assigned_to)s)
          AND (%(patient_id)s::text IS NULL OR i.patient_id = %(patient_id)s)
          AND (%(since)s::timestamptz IS NULL OR i.created_at >= %(since)s)
          AND (%(ward)s::text IS NULL OR coalesce(p.ward, a.ward) = %(ward)s)
          AND (%(search)s::text IS NULL OR i.room = %(search)s OR upper(i.patient_id) = upper(%(search)s)
               OR p.name ILIKE %(like)s OR a.device_name ILIKE %(like)s)
        ORDER BY {ordering}
        LIMIT %(limit)s
    """, {"after_key": after_key, "after_id": after_id, "statuses": list(statuses),  # noqa: S608 (constants)
          "severities": list(severities), "assigned_to": assigned_to, "patient_id": patient_id,
          "since": since, "ward": ward, "search": search, "like": _like(search or ""), "limit": limit + 1,
          "now": clock.now()})
    return cur.fetchall()


def list_cursor(rows: list[dict], limit: int, order: str) -> str | None:
    """The opaque cursor of the page after `rows` (None on the last page): the last row's place
    in the order."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return f"{last['list_key']}_{last['incident_id']}" if order == "priority" else str(last["incident_id"])


def parse_cursor(cursor: str | None, order: str):
    """list_cursor()'s value back, or None: a place in the order, "<key>_<incident id>" for
    priority, "<incident id>" for newest. Any cursor of the documented shape names a place (a
    priority key alone is before any id of that key; newest takes the id after "_")."""
    if cursor is None:
        return None
    key, _, incident_id = cursor.rpartition("_") if "_" in cursor else (cursor, "", "")
    if order == "priority":
        return decimal.Decimal(key), int(incident_id or 0)
    return int(incident_id or key)


def incident_detail(cur, incident: dict, *, allowed_actions: list[str]) -> dict:
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
               a.override_reason, a.assigned_at, a.ended_at, a.routed_as, a.why
        FROM incident_assignments a JOIN employees e ON e.employee_id = a.employee_id
        WHERE a.incident_id = %s ORDER BY a.assignment_id
    """, (incident_id,))
    assignments = cur.fetchall()
    # Told, not owner (the patient's nurse of an alarm a nurse may not own): routing.told_of.
    cur.execute("""
        SELECT t.employee_id, e.name, e.role, t.reason, t.told_at
        FROM incident_told t JOIN employees e ON e.employee_id = t.employee_id
        WHERE t.incident_id = %s ORDER BY t.told_at, t.employee_id
    """, (incident_id,))
    told = cur.fetchall()
    current = next((a for a in reversed(assignments)
                    if a["ended_at"] is None and a["employee_id"] == incident["assigned_to"]), None)
    return {**incident_json(incident, allowed_actions=allowed_actions),
            "alert": _iso(alert, ("occurred_at", "received_at")),
            "why": None if current is None else {"routed_as": current["routed_as"], "why": current["why"]},
            "told": [_iso(t, ("told_at",)) for t in told],
            "notes": [_iso(n, ("created_at",)) for n in notes],
            "assignments": [_iso(a, ("assigned_at", "ended_at")) for a in assignments],
            "history": [_iso(h, ("created_at",)) for h in history.for_incident(cur, incident_id=incident_id)]}


def _iso(row: dict | None, keys) -> dict | None:
    if row is None:
        return None
    return {**row, **{k: row[k].isoformat() if row[k] is not None else None for k in keys}}


def incident_json(incident: dict, *, allowed_actions: list[str]) -> dict:
    """The incident as the API answers it, with the actions its caller may take now
    (lifecycle.CallerActions)."""
    body = {key: value for key, value in incident.items()
            if key not in ("assignee_name", "assignee_role", "assignee_tier", "last_resort_paged",
                           "list_key")}
    body["unowned_since"] = unowned_since(incident)
    body["unowned"] = body["unowned_since"] is not None
    body["paged"] = paged_now(incident)
    body = _iso(body, [key for key in TIMESTAMPS if key in body])
    body["assignee"] = None if incident["assigned_to"] is None else {
        "employee_id": incident["assigned_to"], "name": incident.get("assignee_name"),
        "role": incident.get("assignee_role"), "tier": incident.get("assignee_tier")}
    body["allowed_actions"] = allowed_actions
    return body
