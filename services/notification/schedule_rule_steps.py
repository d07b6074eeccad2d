"""Scheduling the people's rule steps as ledger rows when an alarm pages them, and cancelling
the ones not yet out when it stops paging them (acknowledged, handed to someone else, resolved).

Runs in the transaction that stores the incident's event (store_notifications.py), and reads
the incident as it is NOW in the shared database rather than trusting the event: a redelivered
or late INCIDENT_ASSIGNED arriving after the acknowledgement schedules nothing, and every event
of an incident (whatever its type) brings the ledger in line with who the alarm pages.

Each paging has its own key (assignment_key): the assignee and when they were given it (so a
redelivery schedules nothing twice, and a later assignment back to the same person starts their
steps again); at the last escalation step, the last-resort clinicians and since when nobody owns
it. Steps are due at that instant plus the step's delay, on the platform clock. Escalation keeps
its own timer (incident management): the two run side by side.
"""
import datetime

from healthguard.incident_events import paged_now

from . import contact_methods, rules

DUE_CHANNEL = "delivery_attempts_due"  # NOTIFY wakes the sending task (send_due_attempts.py)


def pagings(incident: dict) -> list[tuple[str, str, datetime.datetime]]:
    """(employee_id, assignment_key, paged since) for everyone the alarm pages now."""
    result = []
    for employee_id in paged_now(incident):
        if employee_id == incident["assigned_to"] and incident["assigned_at"] is not None:
            result.append((employee_id, f"assigned:{employee_id}:{incident['assigned_at'].isoformat()}",
                           incident["assigned_at"]))
        elif incident.get("unowned_since") is not None:
            result.append((employee_id, f"last-resort:{incident['unowned_since'].isoformat()}",
                           incident["unowned_since"]))
    return result


def bring_ledger_in_line(cur, *, incident_ids, now: datetime.datetime) -> int:
    """For each incident: cancel the queued steps of people it no longer pages, schedule the
    steps of those it pages that have none for this paging. Returns how many rows were queued
    (and sends a NOTIFY when any is due now). A few statements for a whole batch of events,
    whatever their number (the notification consumer calls it once per batch): no statement per
    incident or per person."""
    ids = sorted(set(i for i in incident_ids if i is not None))
    if not ids:
        return 0
    cur.execute("""SELECT incident_id, status, severity, assigned_to, assigned_at, unowned_since,
                          last_resort_paged
                   FROM incidents WHERE incident_id = ANY(%s)""", (ids,))
    incidents = {row["incident_id"]: row for row in cur.fetchall()}
    # (incident, person, key, since) for everyone each alarm pages now.
    paged = [(incident_id, employee_id, key, since) for incident_id, incident in incidents.items()
             for employee_id, key, since in pagings(incident)]
    # The queued steps of people an alarm no longer pages, and of an earlier paging of a person
    # it pages again (superseded by this one), are cancelled.
    cur.execute("""
        WITH stopped AS (SELECT * FROM unnest(%(ids)s::bigint[], %(reasons)s::text[])
                         AS r(incident_id, reason)),
        paged AS (SELECT * FROM unnest(%(p_incident)s::bigint[], %(p_employee)s::text[], %(p_key)s::text[])
                  AS p(incident_id, employee_id, assignment_key))
        UPDATE delivery_attempts a
        SET status = 'cancelled', cancelled_at = %(now)s,
            reason = CASE WHEN EXISTS (SELECT 1 FROM paged k WHERE k.incident_id = a.incident_id
                                       AND k.employee_id = a.employee_id)
                          THEN 'assigned again' ELSE s.reason END
        FROM stopped s
        WHERE a.incident_id = s.incident_id AND a.status = 'queued'
          AND NOT EXISTS (SELECT 1 FROM paged k WHERE k.incident_id = a.incident_id
                          AND k.employee_id = a.employee_id AND k.assignment_key = a.assignment_key)
    """, {"ids": list(incidents), "reasons": [_stop_reason(i["status"]) for i in incidents.values()],
          "p_incident": [p[0] for p in paged], "p_employee": [p[1] for p in paged],
          "p_key": [p[2] for p in paged], "now": now})
    queued, due_now = schedule_many(cur, incidents=incidents, pagings=paged, now=now)
    if due_now:
        cur.execute(f"NOTIFY {DUE_CHANNEL}")  # a constant identifier
    return queued


def _stop_reason(status: str) -> str:
    return {"ACKNOWLEDGED": "acknowledged", "IN_PROGRESS": "acknowledged",
            "RESOLVED": "resolved"}.get(status, "no longer paged")


def schedule_many(cur, *, incidents: dict, pagings, now: datetime.datetime) -> tuple[int, int]:
    """Queue the steps of each (incident_id, employee_id, key, since) paging that has none yet
    (none twice: the ledger's unique key; a redelivered event schedules nothing). A step with no
    usable method is recorded failed at once, and brings the next usable step forward (to its
    own due time or now, whichever is later: the steps before it still go first): never silently
    skipped. Returns (rows queued, rows due already)."""
    if not pagings:
        return 0, 0
    cur.execute("""
        SELECT DISTINCT a.incident_id, a.employee_id, a.assignment_key FROM delivery_attempts a
        JOIN unnest(%s::bigint[], %s::text[], %s::text[]) AS p(incident_id, employee_id, assignment_key)
          USING (incident_id, employee_id, assignment_key)
    """, ([p[0] for p in pagings], [p[1] for p in pagings], [p[2] for p in pagings]))
    scheduled = {(r["incident_id"], r["employee_id"], r["assignment_key"]) for r in cur.fetchall()}
    todo = [p for p in pagings if p[:3] not in scheduled]
    if not todo:
        return 0, 0
    people = sorted({employee_id for _, employee_id, _, _ in todo})
    steps = rules.steps_of_many(cur, employee_ids=people)
    cur.execute("""SELECT employee_id, contact_method_id, kind, address FROM contact_methods
                   WHERE employee_id = ANY(%s) AND verified_at IS NOT NULL AND disabled_at IS NULL
                   ORDER BY contact_method_id""", (people,))
    methods: dict[str, list[dict]] = {}
    for method in cur.fetchall():
        methods.setdefault(method["employee_id"], []).append(method)
    rows = []
    for incident_id, employee_id, key, since in todo:
        urgency = rules.urgency_of(incidents[incident_id]["severity"])
        rows += _rows_of_paging(incident_id, employee_id, key, since, now=now,
                                steps=steps[(employee_id, urgency)][0],
                                methods=methods.get(employee_id, []))
    columns = ("incident_id", "employee_id", "contact_method_id", "channel", "address_hint",
               "assignment_key", "assigned_at", "rule_step", "step_target", "due_at", "status",
               "reason", "failed_at")
    types = ("bigint", "text", "bigint", "text", "text", "text", "timestamptz", "int", "text",
             "timestamptz", "text", "text", "timestamptz")
    cur.execute(f"""
        INSERT INTO delivery_attempts ({", ".join(columns)}, queued_at, next_try_at)
        SELECT {", ".join(columns)}, %s, due_at
        FROM unnest({", ".join(f"%s::{t}[]" for t in types)}) AS r({", ".join(columns)})
        ON CONFLICT DO NOTHING
        RETURNING status, due_at
    """, (now, *([row[c] for row in rows] for c in columns)))  # noqa: S608 (constant column lists)
    inserted = [r for r in cur.fetchall() if r["status"] == "queued"]
    return len(inserted), sum(r["due_at"] <= now for r in inserted)


def _rows_of_paging(incident_id, employee_id, key, since, *, now, steps, methods) -> list[dict]:
    """The ledger rows of one paging: one per usable method of each step, or one failed row for
    a step with none; a failed step brings the next step with a usable method forward to the
    failed step's due time or now, whichever is later (what ledger.fall_through does to rows
    already queued)."""
    rows, brought_forward = [], None
    for number, step in enumerate(steps):
        due_at = since + datetime.timedelta(seconds=step.delay_seconds)
        method_kind = contact_methods.METHOD_KIND.get(step.kind, step.kind)
        usable = [m for m in methods if (m["contact_method_id"] == step.contact_method_id
                                         if step.contact_method_id is not None else m["kind"] == method_kind)]
        base = {"incident_id": incident_id, "employee_id": employee_id, "assignment_key": key,
                "assigned_at": since, "rule_step": number}
        if not usable:
            kind = step.kind or "method"
            rows.append({**base, "contact_method_id": None, "channel": kind, "address_hint": None,
                         "step_target": f"none:{kind}", "due_at": due_at, "status": "failed",
                         "reason": f"no verified {kind} contact method", "failed_at": now})
            now_due = max(due_at, now)
            brought_forward = now_due if brought_forward is None else min(brought_forward, now_due)
            continue
        if brought_forward is not None:
            due_at, brought_forward = min(due_at, brought_forward), None
        for method in usable:
            rows.append({**base, "contact_method_id": method["contact_method_id"],
                         # a phone is texted or called, as the step says (issue 23)
                         "channel": step.kind if step.kind in contact_methods.METHOD_KIND
                         else contact_methods.STEP_CHANNEL.get(method["kind"], method["kind"]),
                         "address_hint": contact_methods.mask(method["kind"], method["address"]),
                         "step_target": str(method["contact_method_id"]), "due_at": due_at,
                         "status": "queued", "reason": None, "failed_at": None})
    return rows
