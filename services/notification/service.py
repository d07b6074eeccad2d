"""Notifications in the database: storing an event's, reading and marking a clinician's own.

Every function works inside the caller's transaction (`cur`), so the queue consumer, the REST
routes, the WebSocket replay and the tests share them.
"""
import collections
import json

from psycopg2.extras import Json

from healthguard.broker import PermanentMessageError
from healthguard.incident_events import IncidentEvent

# A stored notification, as as_json() turns it into what clients see.
NOTIFICATION_COLUMNS = """notification_id, event_id, employee_id, incident_id, type, title, message,
    severity, data, created_at, read_at"""


def as_json(row: dict) -> dict:
    """A stored notification as clients see it, in REST answers and WebSocket frames."""
    return {
        "id": row["notification_id"],
        "event_id": row["event_id"],
        "event_type": row["type"],
        "employee_id": row["employee_id"],
        "incident_id": row["incident_id"],
        "title": row["title"],
        "message": row["message"],
        "severity": row["severity"],
        "data": row["data"],
        "created_at": row["created_at"].isoformat(),
        "read_at": row["read_at"].isoformat() if row["read_at"] else None,
    }


def store_events_notifications(*, cur, events: list[IncidentEvent]) -> list[tuple[list[dict], int]]:
    """Store one notification per recipient of each event, in one insert: ids are given in the
    order of the events, then of their recipients. Returns, per event, its stored rows (new or
    stored by an earlier delivery, in id order) and how many are new: the unique key
    (event_id, employee_id) makes a redelivered event store nothing. Raises
    PermanentMessageError when an event names an unknown recipient or incident (nothing of the
    batch is then stored)."""
    pairs = [(event, recipient) for event in events for recipient in event.recipients]
    if not pairs:
        return [([], 0) for _ in events]
    recipients = sorted({recipient for _, recipient in pairs})
    cur.execute("SELECT employee_id FROM employees WHERE employee_id = ANY(%s)", (recipients,))
    known = {row["employee_id"] for row in cur.fetchall()}
    unknown = [r for r in recipients if r not in known]
    if unknown:
        raise PermanentMessageError(f"unknown recipient(s): {', '.join(unknown)}")
    incident_ids = sorted({e.incident_id for e, _ in pairs if e.incident_id is not None})
    if incident_ids:
        cur.execute("SELECT incident_id FROM incidents WHERE incident_id = ANY(%s)", (incident_ids,))
        missing = set(incident_ids) - {row["incident_id"] for row in cur.fetchall()}
        if missing:
            raise PermanentMessageError(f"unknown incident {', '.join(map(str, sorted(missing)))}")
    cur.execute("""
        INSERT INTO notifications (event_id, employee_id, incident_id, type, title, message, severity, data)
        SELECT event_id, recipient, incident_id, type, title, message, severity, data
        FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::text[], %s::text[], %s::text[],
                    %s::text[], %s::jsonb[])
             WITH ORDINALITY AS n(event_id, recipient, incident_id, type, title, message, severity,
                                  data, position)
        ORDER BY position
        ON CONFLICT (event_id, employee_id) DO NOTHING
        RETURNING event_id""", (
        [e.event_id for e, _ in pairs], [r for _, r in pairs], [e.incident_id for e, _ in pairs],
        [e.type for e, _ in pairs], [e.title for e, _ in pairs], [e.message for e, _ in pairs],
        [e.severity for e, _ in pairs], [Json(e.data) for e, _ in pairs]))
    new = collections.Counter(row["event_id"] for row in cur.fetchall())
    cur.execute(f"""
        SELECT {NOTIFICATION_COLUMNS}
        FROM notifications
        WHERE (event_id, employee_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
        ORDER BY notification_id""",  # noqa: S608 (a constant column list)
                ([e.event_id for e, _ in pairs], [r for _, r in pairs]))
    stored = collections.defaultdict(list)
    for row in cur.fetchall():
        stored[row["event_id"]].append(row)
    return [(stored[e.event_id], new[e.event_id]) if e.recipients else ([], 0) for e in events]


def newest_notifications_between(*, cur, employee_id: str, after_id: int, before_id: int | None,
                                 limit: int) -> list[dict]:
    """The clinician's newest `limit` notifications with after_id < id < before_id (no upper
    bound when None), newest first: a replay page (WEBSOCKET.md, "Reconnecting")."""
    cur.execute(f"""
        SELECT {NOTIFICATION_COLUMNS}
        FROM notifications
        WHERE employee_id = %s AND notification_id > %s
          AND (%s::bigint IS NULL OR notification_id < %s)
        ORDER BY notification_id DESC LIMIT %s""",  # noqa: S608 (a constant column list)
                (employee_id, after_id, before_id, before_id, limit))
    return cur.fetchall()


def latest_notification_id(*, cur, employee_id: str) -> int:
    cur.execute("SELECT coalesce(max(notification_id), 0) AS id FROM notifications WHERE employee_id = %s",
                (employee_id,))
    return cur.fetchone()["id"]


def list_notifications(*, cur, employee_id: str, unread_only: bool, after_id: int | None,
                       limit: int) -> tuple[list[dict], bool]:
    """A page of the clinician's history: newest first, or oldest first after `after_id`
    (catching up). Returns the rows and whether more follow."""
    params = {"employee_id": employee_id, "unread_only": unread_only, "after_id": after_id,
              "limit": limit + 1}
    order = "DESC" if after_id is None else "ASC"
    cur.execute(f"""
        SELECT {NOTIFICATION_COLUMNS}
        FROM notifications
        WHERE employee_id = %(employee_id)s AND (NOT %(unread_only)s OR read_at IS NULL)
          AND (%(after_id)s::bigint IS NULL OR notification_id > %(after_id)s)
        ORDER BY notification_id {order} LIMIT %(limit)s""", params)  # noqa: S608 (constants only)
    rows = cur.fetchall()
    return rows[:limit], len(rows) > limit


def unread_count(*, cur, employee_id: str) -> int:
    cur.execute("SELECT count(*) AS n FROM notifications WHERE employee_id = %s AND read_at IS NULL",
                (employee_id,))
    return cur.fetchone()["n"]


def mark_read(*, cur, employee_id: str, notification_id: int) -> dict | None:
    """Mark one of the clinician's own notifications read (idempotent: the first read time
    stays). None if there is no such notification of theirs: someone else's is not revealed."""
    cur.execute(f"""
        UPDATE notifications SET read_at = coalesce(read_at, now())
        WHERE notification_id = %s AND employee_id = %s
        RETURNING {NOTIFICATION_COLUMNS}""", (notification_id, employee_id))  # noqa: S608 (a constant column list)
    return cur.fetchone()


def mark_all_read(*, cur, employee_id: str, up_to_id: int | None) -> int:
    """Mark the clinician's unread notifications read, up to `up_to_id` if given (so one that
    arrived after the list was shown stays unread). Returns how many were marked."""
    cur.execute("""
        UPDATE notifications SET read_at = now()
        WHERE employee_id = %s AND read_at IS NULL AND (%s::bigint IS NULL OR notification_id <= %s)""",
                (employee_id, up_to_id, up_to_id))
    return cur.rowcount


def frame_text(kind: str, body: dict) -> str:
    return json.dumps({"type": kind, **body}, default=str, separators=(",", ":"))
