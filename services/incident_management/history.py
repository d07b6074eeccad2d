"""The audit trail: one incident_history row per change, by whom, from which status to which."""


def record(cur, *, incident: dict, actor_id: str | None, action: str, previous_status: str | None,
           note: str | None = None) -> dict:
    """Write the history row of a change already applied to `incident` (its new status).
    actor_id None means the system (automatic creation and assignment)."""
    cur.execute("""
        INSERT INTO incident_history (incident_id, actor_id, action, previous_status, new_status, note)
        VALUES (%s, %s, %s, %s, %s, %s)
        RETURNING history_id, created_at
    """, (incident["incident_id"], actor_id, action, previous_status, incident["status"], note))
    return cur.fetchone()


def for_incident(cur, *, incident_id: int) -> list[dict]:
    cur.execute("""
        SELECT h.history_id, h.action, h.actor_id, e.name AS actor_name, h.previous_status,
               h.new_status, h.note, h.created_at
        FROM incident_history h
        LEFT JOIN employees e ON e.employee_id = h.actor_id
        WHERE h.incident_id = %s
        ORDER BY h.history_id
    """, (incident_id,))
    return cur.fetchall()
