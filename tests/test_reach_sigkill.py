"""No double send when a notification worker dies mid-send (issue 21): two notification
services run side by side (competing for the ledger's due attempts); one is SIGKILLed while
the push service holds the request it sent. Every push attempt reaches the push service exactly
once: the killed one's attempt is not sent again (push has no provider deduplication) but
dead-lettered once its lease is over, and the person's next step (email) goes out instead."""

from collections import Counter

import pytest
import requests

from tests.reach_edges import pid_owning_connection, running_edges, vapid_key_pair
from tests.support import ServiceProcess, pipeline, wait_for

pytestmark = pytest.mark.module_database

VAPID_PRIVATE, VAPID_PUBLIC = vapid_key_pair()
LEASE_SECONDS = 15


@pytest.fixture(scope="module")
def edges():
    with running_edges(VAPID_PUBLIC) as running:
        yield running


@pytest.fixture(scope="module")
def services(module_service_env, edges):
    with pipeline(module_service_env) as running:
        env = {
            **module_service_env,
            "ONCALL_URL": running["oncall"].url,
            "INCIDENT_MANAGEMENT_URL": running["incidents"].url,
            "VAPID_PRIVATE_KEY": VAPID_PRIVATE,
            "VAPID_PUBLIC_KEY": VAPID_PUBLIC,
            "VAPID_SUBJECT": "mailto:ops@hospital.example",
            "PUSH_ALLOW_LOCAL_HTTP": "true",
            "SMTP_URL": edges["mail"].url,
            "SMTP_FROM": "healthguard@hospital.example",
            # One send at a time per worker: a killed worker holds exactly the one it sent.
            "SEND_CONCURRENCY": "1",
            "SEND_INTERVAL_SECONDS": "0.5",
            "SEND_LEASE_SECONDS": str(LEASE_SECONDS),
        }
        copies = []
        try:
            for _ in range(2):
                copies.append(ServiceProcess("notification", env).start())
            yield {**running, "notification": copies}
        finally:
            for copy in copies:
                copy.stop()


def test_a_worker_killed_mid_send_sends_nothing_twice(api, db, clock, doctors, edges, services):
    push, mail = edges["push"], edges["mail"]
    first, second = services["notification"]
    duty = api.on_duty("EMERGENCY_DOCTOR")
    for doctor in duty:
        auth = {"Authorization": f"Bearer {doctors[doctor]}"}
        subscribed = requests.post(
            f"{first.url}/api/v1/contact-methods",
            headers=auth,
            timeout=10,
            json={"kind": "push", "subscription": push.subscription(doctor).to_json()},
        )
        assert subscribed.status_code == 201, subscribed.text
        with db.transaction() as cur:  # a verified email, as the verification flow leaves it
            cur.execute(
                """INSERT INTO contact_methods (employee_id, kind, address, verified_at, created_at)
                           VALUES (%s, 'email', %s, %s, %s)""",
                (doctor, f"{doctor.lower()}@hospital.example", clock.now(), clock.now()),
            )
        rules = requests.put(
            f"{second.url}/api/v1/notification-rules",
            headers=auth,
            timeout=10,
            json={"HIGH": [{"delay_seconds": 0, "kind": "push"}, {"delay_seconds": 50, "kind": "email"}]},
        )
        assert rules.status_code == 200, rules.text

    push.hold = True
    incidents = [api.post_alert(patient_id=f"P00{n}", alert_type="CARDIAC_ARREST") for n in range(1, 5)]
    incident_ids = [api.incident_of(alert)["incident_id"] for alert in incidents]
    held = wait_for(lambda: list(push.held) or None, 20, 0.05, "a push request held mid-send")[0]
    workers = {copy.worker_proc.pid: copy for copy in (first, second)}
    sender = wait_for(
        lambda: pid_owning_connection(held["client_port"], workers),
        5,
        0.02,
        "the worker holding the connection",
    )
    killed = workers[sender]
    killed.kill()  # SIGKILL: no cleanup, its row stays 'sending'
    push.release.set()

    def push_rows():
        with db.transaction() as cur:
            cur.execute(
                """SELECT attempt_id, incident_id, status, reason FROM delivery_attempts
                           WHERE channel = 'push' AND incident_id = ANY(%s) ORDER BY attempt_id""",
                (incident_ids,),
            )
            return cur.fetchall()

    # The survivor sends the rest; the killed one's attempt stays 'sending' until its lease is over.
    wait_for(
        lambda: len([r for r in push_rows() if r["status"] == "sent"]) == len(incident_ids) - 1,
        30,
        0.1,
        "every other push sent by the surviving worker",
    )
    clock.advance(LEASE_SECONDS + 1)
    rows = wait_for(
        lambda: (rows := push_rows()) and all(r["status"] in ("sent", "dead_letter") for r in rows) and rows,
        30,
        0.1,
        "the abandoned send dead-lettered",
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
