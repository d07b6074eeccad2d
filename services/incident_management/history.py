"""The audit trail: one incident_history row per change, by whom, from which status to which."""


def record(cur, *, incident: dict, actor_id: str | None, action: str, previous_status: str | None,
           note: str | None = None, channel: str | None = None) -> dict:
    """Write the history row of a change already applied to `incident` (its new status).
    actor_id None means the system (automatic creation and assignment); `channel` where the
    person acted from (an acknowledgement: 'app', or 'push', 'email', ... through the
    notification service)."""
    cur.execute("""
        INSERT INTO incident_history
            (incident_id, actor_id, action, previous_status, new_status, note, channel)
        VALUES (%s, %s, %s, %s, %s, %s, %s)
        RETURNING history_id, created_at
    """, (incident["incident_id"], actor_id, action, previous_status, incident["status"], note, channel))
    return cur.fetchone()


def record_many(cur, *, changes, action: str) -> dict[int, dict]:
    """record() of one system change (`action`, actor None) to each of several incidents (a
    batch), in one statement: changes are (incident as changed, previous_status, note); returns
    incident_id -> its history row (history_id, created_at), ids given in the order of changes."""
    changes = list(changes)
    if not changes:
        return {}
    cur.execute("""
        INSERT INTO incident_history (incident_id, actor_id, action, previous_status, new_status, note)
        SELECT incident_id, NULL, %s, previous_status, new_status, note
        FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[])
             WITH ORDINALITY AS c(incident_id, previous_status, new_status, note, position)
        ORDER BY position
        RETURNING incident_id, history_id, created_at
    """, (action, [i["incident_id"] for i, _, _ in changes], [p for _, p, _ in changes],
          [i["status"] for i, _, _ in changes], [n for _, _, n in changes]))
    return {row["incident_id"]: {"history_id": row["history_id"], "created_at": row["created_at"]}
            for row in cur.fetchall()}


def for_incident(cur, *, incident_id: int) -> list[dict]:
    cur.execute("""
        SELECT h.history_id, h.action, h.actor_id, e.name AS actor_name, h.previous_status,
               h.new_status, h.note, h.channel, h.created_at
        FROM incident_history h
        LEFT JOIN employees e ON e.employee_id = h.actor_id
        WHERE h.incident_id = %s
        ORDER BY h.history_id
    """, (incident_id,))
    return cur.fetchall()
