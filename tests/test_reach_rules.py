"""Scheduling rule steps into the delivery ledger (notification/schedule_rule_steps.py), on the
real database without services: what the notification worker does with each incident event."""

from datetime import timedelta

from healthguard import clock
from notification.schedule_rule_steps import bring_ledger_in_line


def add_method(db, employee_id, kind, address):
    with db.transaction() as cur:
        cur.execute(
            """INSERT INTO contact_methods (employee_id, kind, address, secret, verified_at, created_at)
                       VALUES (%s, %s, %s, '{}', %s, %s) RETURNING contact_method_id""",
            (employee_id, kind, address, clock.now(), clock.now()),
        )
        return cur.fetchone()["contact_method_id"]


def rules(db, employee_id, steps):
    with db.transaction() as cur:
        for position, (delay, kind) in enumerate(steps):
            cur.execute(
                """INSERT INTO notification_rules (employee_id, urgency, delay_seconds, kind, position)
                           VALUES (%s, 'HIGH', %s, %s, %s)""",
                (employee_id, delay, kind, position),
            )


def schedule(db, incident_id):
    with db.transaction() as cur:
        bring_ledger_in_line(cur, incident_ids=[incident_id], now=clock.now())
        cur.execute(
            """SELECT rule_step, channel, status, reason, due_at, assigned_at FROM delivery_attempts
                       WHERE incident_id = %s ORDER BY rule_step""",
            (incident_id,),
        )
        return cur.fetchall()


def test_steps_are_due_at_their_delay_and_a_missing_method_fails_at_once_never_silently(
    db, clock, make_incident
):
    add_method(db, "D01", "push", "https://push.example/1")
    add_method(db, "D01", "phone", "+441632960123")
    rules(db, "D01", [(0, "push"), (60, "email"), (300, "phone")])
    incident_id = make_incident(severity="CRITICAL", assigned_to="D01")
    push, email, phone = schedule(db, incident_id)
    assigned = push["assigned_at"]
    assert (push["status"], push["due_at"]) == ("queued", assigned)
    assert (email["status"], email["reason"]) == ("failed", "no verified email contact method")
    # The phone is brought forward to when the email would have gone, not before the push.
    assert (phone["status"], phone["due_at"]) == ("queued", assigned + timedelta(seconds=60))
    assert schedule(db, incident_id) == [push, email, phone]  # a redelivered event: nothing twice


def test_an_acknowledgement_cancels_the_steps_not_yet_out(db, clock, make_incident):
    add_method(db, "D02", "push", "https://push.example/2")
    incident_id = make_incident(severity="HIGH", assigned_to="D02")
    steps = schedule(db, incident_id)
    assert [s["channel"] for s in steps] == ["push", "email"]  # the hospital default
    with db.transaction() as cur:
        cur.execute("UPDATE incidents SET status = 'ACKNOWLEDGED' WHERE incident_id = %s", (incident_id,))
    assert [(s["status"], s["reason"]) for s in schedule(db, incident_id)] == [
        ("cancelled", "acknowledged"),
        ("failed", "no verified email contact method"),
    ]


def test_low_urgency_uses_its_own_rules(db, clock, make_incident):
    add_method(db, "D03", "push", "https://push.example/3")
    rules(db, "D03", [(0, "phone")])  # HIGH only
    incident_id = make_incident(severity="LOW", alert_type="CARDIAC_ARREST", assigned_to="D03")
    assert [s["channel"] for s in schedule(db, incident_id)] == ["push", "email"]  # LOW: the hospital's
