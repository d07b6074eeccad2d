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

from . import contact_methods, ledger, rules

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
    (and sends a NOTIFY when any is due now)."""
    ids = sorted(set(i for i in incident_ids if i is not None))
    if not ids:
        return 0
    cur.execute("""SELECT incident_id, status, severity, assigned_to, assigned_at, unowned_since,
                          last_resort_paged
                   FROM incidents WHERE incident_id = ANY(%s)""", (ids,))
    queued = due_now = 0
    for incident in cur.fetchall():
        paged = pagings(incident)
        reason = {"ACKNOWLEDGED": "acknowledged", "IN_PROGRESS": "acknowledged",
                  "RESOLVED": "resolved"}.get(incident["status"], "no longer paged")
        ledger.cancel_pending(cur, incident_id=incident["incident_id"], at=now, reason=reason,
                              except_employees=[p for p, _, _ in paged])
        for employee_id, key, since in paged:
            # Queued rows of an earlier paging of the same person are superseded by this one.
            cur.execute("""UPDATE delivery_attempts SET status = 'cancelled', cancelled_at = %s,
                                  reason = 'assigned again'
                           WHERE incident_id = %s AND employee_id = %s AND status = 'queued'
                             AND assignment_key <> %s""", (now, incident["incident_id"], employee_id, key))
            added, due = schedule(cur, incident=incident, employee_id=employee_id, key=key, since=since,
                                  now=now)
            queued, due_now = queued + added, due_now + due
    if due_now:
        cur.execute(f"NOTIFY {DUE_CHANNEL}")  # a constant identifier
    return queued


def schedule(cur, *, incident: dict, employee_id: str, key: str, since: datetime.datetime,
             now: datetime.datetime) -> tuple[int, int]:
    """Queue the person's steps for this paging (none twice: the ledger's unique key). A step
    with no usable method is recorded failed at once, and the next step brought forward: never
    silently skipped. Returns (rows queued, rows due already)."""
    cur.execute("SELECT 1 FROM delivery_attempts WHERE incident_id = %s AND employee_id = %s "
                "AND assignment_key = %s LIMIT 1", (incident["incident_id"], employee_id, key))
    if cur.fetchone():
        return 0, 0
    steps, _ = rules.steps_for(cur, employee_id=employee_id, urgency=rules.urgency_of(incident["severity"]))
    cur.execute("""SELECT contact_method_id, kind, address FROM contact_methods
                   WHERE employee_id = %s AND verified_at IS NOT NULL AND disabled_at IS NULL
                   ORDER BY contact_method_id""", (employee_id,))
    methods = cur.fetchall()
    queued = due = 0
    failed = []
    for number, step in enumerate(steps):
        due_at = since + datetime.timedelta(seconds=step.delay_seconds)
        method_kind = contact_methods.METHOD_KIND.get(step.kind, step.kind)
        usable = [m for m in methods if (m["contact_method_id"] == step.contact_method_id
                                         if step.contact_method_id is not None else m["kind"] == method_kind)]
        base = {"incident_id": incident["incident_id"], "employee_id": employee_id, "key": key,
                "since": since, "step": number, "due_at": due_at, "now": now}
        if not usable:
            kind = step.kind or "method"
            cur.execute("""
                INSERT INTO delivery_attempts (incident_id, employee_id, channel, assignment_key,
                    assigned_at, rule_step, step_target, due_at, status, reason, queued_at, failed_at,
                    next_try_at)
                VALUES (%(incident_id)s, %(employee_id)s, %(kind)s, %(key)s, %(since)s, %(step)s,
                        %(target)s, %(due_at)s, 'failed', %(reason)s, %(now)s, %(now)s, %(due_at)s)
                ON CONFLICT DO NOTHING RETURNING attempt_id""",
                        {**base, "kind": kind, "target": f"none:{kind}",
                         "reason": f"no verified {kind} contact method"})
            row = cur.fetchone()
            if row:
                failed.append(row["attempt_id"])
            continue
        for method in usable:
            cur.execute("""
                INSERT INTO delivery_attempts (incident_id, employee_id, contact_method_id, channel,
                    address_hint, assignment_key, assigned_at, rule_step, step_target, due_at, status,
                    queued_at, next_try_at)
                VALUES (%(incident_id)s, %(employee_id)s, %(method)s, %(kind)s, %(hint)s, %(key)s,
                        %(since)s, %(step)s, %(target)s, %(due_at)s, 'queued', %(now)s, %(due_at)s)
                ON CONFLICT DO NOTHING RETURNING attempt_id""",
                        {**base, "method": method["contact_method_id"],
                         # a phone is texted or called, as the step says (issue 23)
                         "kind": step.kind if step.kind in contact_methods.METHOD_KIND
                         else contact_methods.STEP_CHANNEL.get(method["kind"], method["kind"]),
                         "hint": contact_methods.mask(method["kind"], method["address"]),
                         "target": str(method["contact_method_id"])})
            if cur.fetchone():
                queued += 1
                due += due_at <= now
    for attempt_id in failed:  # in step order: each brings the next usable step forward
        due += sum(row["due_at"] <= now for row in ledger.fall_through(cur, attempt_id=attempt_id, at=now))
    return queued, due
