"""No double send when a notification worker dies mid-send (issue 21): two notification
services run side by side (competing for the ledger's due attempts); one is SIGKILLed while
the push service holds the request it sent. Every push attempt reaches the push service exactly
once: the killed one's attempt is not sent again (push has no provider deduplication) but
dead-lettered once its lease is over, and the person's next step (email) goes out instead."""

from collections import Counter

import pytest

from tests.reach_edges import running_edges, vapid_key_pair
from tests.reach_support import (
    KILLABLE_SENDERS,
    ReachApi,
    kill_the_worker_holding_a_send,
    push_and_mail_settings,
)
from tests.support import ServiceProcess, wait_for

pytestmark = pytest.mark.module_database

VAPID_PRIVATE, VAPID_PUBLIC = vapid_key_pair()


@pytest.fixture(scope="module")
def edges():
    with running_edges(VAPID_PUBLIC) as running:
        yield running


@pytest.fixture(scope="module")
def services(module_service_env, alert_pipeline, edges):
    """The module's alert pipeline, and two notification services for it (competing for the
    ledger's due attempts)."""
    env = {
        **module_service_env,
        "ONCALL_URL": alert_pipeline["oncall"].url,
        "INCIDENT_MANAGEMENT_URL": alert_pipeline["incidents"].url,
        **push_and_mail_settings(edges, VAPID_PRIVATE, VAPID_PUBLIC),
        **KILLABLE_SENDERS,
    }
    copies = []
    try:
        for _ in range(2):
            copies.append(ServiceProcess("notification", env).start())
        yield {**alert_pipeline, "notification": copies}
    finally:
        for copy in copies:
            copy.stop()


def test_a_worker_killed_mid_send_sends_nothing_twice(api, db, clock, doctors, edges, services):
    push, mail = edges["push"], edges["mail"]
    first, second = services["notification"]
    for doctor in api.on_duty("EMERGENCY_DOCTOR"):
        token = doctors[doctor]
        subscription = push.subscription(doctor).to_json()
        subscribed = ReachApi(first.url).call(
            "POST", "/contact-methods", token, json={"kind": "push", "subscription": subscription}
        )
        assert subscribed.status_code == 201, subscribed.text
        with db.transaction() as cur:  # a verified email, as the verification flow leaves it
            cur.execute(
                """INSERT INTO contact_methods (employee_id, kind, address, verified_at, created_at)
                           VALUES (%s, 'email', %s, %s, %s)""",
                (doctor, f"{doctor.lower()}@hospital.example", clock.now(), clock.now()),
            )
        ReachApi(second.url).rules(
            token, [{"delay_seconds": 0, "kind": "push"}, {"delay_seconds": 50, "kind": "email"}]
        )

    rows, held = kill_the_worker_holding_a_send(
        channel="push",
        provider=push,
        workers=services["notification"],
        api=api,
        db=db,
        clock=clock,
        patients=["P001", "P002", "P003", "P004"],
        settled=("sent", "dead_letter"),
    )
    [dead] = [r for r in rows if r["status"] == "dead_letter"]
    assert dead["attempt_id"] == held["payload"]["attempt_id"]
    assert dead["reason"].startswith("outcome unknown")

    received = Counter(r["topic"] for r in push.received)
    assert received == Counter({f"attempt-{r['attempt_id']}": 1 for r in rows})  # each exactly once
    assert push.errors == []
    # The person's next step was brought forward at once (the clock moved less than its 50 s).
    wait_for(
        lambda: (
            [
                m
                for m in mail.messages
                if f"Incident {dead['incident_id']}." in m.get_body(("plain",)).get_content()
            ]
            or None
        ),
        20,
        0.1,
        "the fall-through email",
    )
