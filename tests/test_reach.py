"""Reaching a clinician off the open tab (issue 21): contact methods, notification rules, the
delivery ledger, Web Push and email, against a real push service and SMTP server in the test
process (tests/reach_edges.py) and the real pipeline: an alert is posted, incident management
assigns it, the notification worker schedules the assignee's rule steps and sends them."""

import re
from datetime import datetime, timedelta

import pytest

from tests.reach_edges import running_edges, vapid_key_pair
from tests.reach_support import ReachApi, push_and_mail_settings
from tests.support import ServiceProcess, wait_for

pytestmark = pytest.mark.module_database

VAPID_PRIVATE, VAPID_PUBLIC = vapid_key_pair()
EMAIL_DELAY = 40  # below CRITICAL's 60 s acknowledgement timeout: escalation stays out of it


@pytest.fixture(scope="module")
def edges():
    with running_edges(VAPID_PUBLIC) as running:
        yield running


@pytest.fixture(scope="module")
def services(module_service_env, alert_pipeline, edges):
    """The module's alert pipeline, and the notification service for it."""
    notification = ServiceProcess(
        "notification",
        {
            **module_service_env,
            "ONCALL_URL": alert_pipeline["oncall"].url,
            "INCIDENT_MANAGEMENT_URL": alert_pipeline["incidents"].url,
            **push_and_mail_settings(edges, VAPID_PRIVATE, VAPID_PUBLIC),
            "SEND_INTERVAL_SECONDS": "0.5",
            "SEND_RETRY_SECONDS": "0.3",
            "SEND_MAX_TRIES": "3",
            "SEND_LEASE_SECONDS": "15",
        },
    ).start()
    try:
        yield {**alert_pipeline, "notification": notification}
    finally:
        notification.stop()


class Reach(ReachApi):
    """The reach API, with this module's push service and mailbox."""

    def __init__(self, url, edges):
        super().__init__(url)
        self.push = edges["push"]
        self.mail = edges["mail"]

    def subscribe(self, token, name):
        subscription = self.push.subscription(name)
        answer = self.call(
            "POST", "/contact-methods", token, json={"kind": "push", "subscription": subscription.to_json()}
        )
        assert answer.status_code == 201, answer.text
        return answer.json()["contact_method"]

    def add_verified_email(self, token, address):
        def mailed_code(_):
            message = next(iter(self.mail.to(address)), None)
            if message is None:
                return None
            return re.search(r"code is (\d{6})", message.get_body(("plain",)).get_content()).group(1)

        return self.add_verified(token, "email", address, mailed_code)


@pytest.fixture
def reach(services, edges, api):
    edges["push"].answer.clear()
    edges["push"].hold = False
    edges["push"].errors.clear()
    edges["push"].received.clear()
    edges["mail"].inbox.messages.clear()
    if edges["mail"].controller is None:
        edges["mail"].start()
    return Reach(services["notification"].url, edges)


@pytest.fixture
def on_duty(api, doctors, reach):
    """The emergency doctors on duty at the pinned rota, each with a push subscription and a
    verified email, and the rule: push at once, email after EMAIL_DELAY if not acknowledged."""
    people = {}
    for doctor in api.on_duty("EMERGENCY_DOCTOR"):
        token = doctors[doctor]
        reach.subscribe(token, doctor)
        address = f"{doctor.lower()}@hospital.example"
        reach.add_verified_email(token, address)
        reach.rules(
            token, [{"delay_seconds": 0, "kind": "push"}, {"delay_seconds": EMAIL_DELAY, "kind": "email"}]
        )
        people[doctor] = {"token": token, "email": address}
    return people


def patient_name(db, incident_id):
    with db.transaction() as cur:
        cur.execute(
            "SELECT p.name FROM incidents i JOIN patients p USING (patient_id) WHERE incident_id = %s",
            (incident_id,),
        )
        return cur.fetchone()["name"]


def about(message, incident_id) -> bool:
    """An alarm email about this incident (not a verification code)."""
    return f"Incident {incident_id}." in message.get_body(("plain",)).get_content()


def assigned_incident(api, patient_id="P001"):
    """A CRITICAL alarm assigned (each of a test's alarms for another patient: a repeat for the
    same patient would be correlated into the open incident)."""
    incident = api.incident_of(api.post_alert(patient_id=patient_id, alert_type="CARDIAC_ARREST"))
    return incident["incident_id"], incident["assigned_to"]


def test_a_push_is_signed_encrypted_and_names_no_patient(api, db, reach, on_duty):
    incident_id, doctor = assigned_incident(api)
    [push] = wait_for(lambda: reach.push.for_incident(incident_id) or None, 20, 0.1, "the push message")
    assert reach.push.errors == []
    assert push["name"] == doctor  # the assignee's own subscription
    payload = push["payload"]
    assert payload["severity"] == "CRITICAL" and payload["incident_id"] == incident_id
    assert payload["alert_name"] == "Cardiac arrest" and payload["room"] == "312"
    assert payload["ack_token"] and payload["attempt_id"]
    assert push["topic"] == f"attempt-{payload['attempt_id']}"  # the idempotency key
    name = patient_name(db, incident_id)
    for part in name.split():
        assert part.encode() not in push["raw"]
    assert "patient" not in payload and "P001" not in push["raw"].decode()
    rows = reach.ledger_until(
        on_duty[doctor]["token"],
        incident_id,
        lambda rows: any(r["status"] == "sent" for r in rows),
        "the ledger to show it sent",
    )
    [sent] = [r for r in rows if r["channel"] == "push"]
    assert sent["attempt_id"] == payload["attempt_id"] and sent["sent_at"] and sent["rule_step"] == 0
    [email] = [r for r in rows if r["channel"] == "email"]
    assert email["status"] == "queued"


def test_email_goes_out_at_the_rules_delay_and_an_acknowledge_stops_the_rest(api, db, clock, reach, on_duty):
    incident_id, doctor = assigned_incident(api)
    token, address = on_duty[doctor]["token"], on_duty[doctor]["email"]
    wait_for(lambda: reach.push.for_incident(incident_id) or None, 20, 0.1, "the push message")
    rows = reach.ledger(token, incident_id)
    [email] = [r for r in rows if r["channel"] == "email" and r["employee_id"] == doctor]
    assigned_at = api.get(incident_id)["assigned_at"]
    assert datetime.fromisoformat(email["due_at"]) == datetime.fromisoformat(assigned_at) + timedelta(
        seconds=EMAIL_DELAY
    )
    assert email["status"] == "queued" and not [
        m for m in reach.mail.to(address) if "Cardiac" in m["Subject"]
    ]

    clock.advance(EMAIL_DELAY + 1)
    message = wait_for(
        lambda: next((m for m in reach.mail.to(address) if "Cardiac" in m["Subject"]), None),
        20,
        0.1,
        "the email at the rule's delay",
    )
    assert message["Message-ID"] == f"<attempt-{email['attempt_id']}@hospital.example>"
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    link = re.search(r"http://localhost:8080/ack/([A-Za-z0-9_-]+)", plain)
    assert link and link.group(0) in html
    assert "312" in plain and "CRITICAL" in message["Subject"]
    for part in patient_name(db, incident_id).split():
        assert part not in plain and part not in html and part not in message["Subject"]

    # A second alarm, acknowledged in the app before its email is due: nothing more is sent.
    second, doctor2 = assigned_incident(api, "P002")
    wait_for(lambda: reach.push.for_incident(second) or None, 20, 0.1, "the second push")
    assert api.act(on_duty[doctor2]["token"], second, "acknowledge").status_code == 200
    rows = reach.ledger_until(
        on_duty[doctor2]["token"],
        second,
        lambda rows: any(r["status"] == "cancelled" for r in rows),
        "the email cancelled",
    )
    [cancelled] = [r for r in rows if r["channel"] == "email"]
    assert cancelled["status"] == "cancelled" and cancelled["reason"] == "acknowledged"
    # A third alarm's email falling due after the second's would have shows the sender ran past it.
    third, doctor3 = assigned_incident(api, "P003")
    wait_for(lambda: reach.push.for_incident(third) or None, 20, 0.1, "the third push")
    clock.advance(EMAIL_DELAY + 1)
    address3 = on_duty[doctor3]["email"]
    wait_for(
        lambda: [m for m in reach.mail.to(address3) if about(m, third)] or None,
        20,
        0.1,
        "the third alarm's email",
    )
    assert not [
        m
        for m in reach.mail.messages
        if m["Message-ID"] == f"<attempt-{cancelled['attempt_id']}@hospital.example>"
    ]
    assert reach.ledger(on_duty[doctor2]["token"], second) == rows


def test_the_ack_token_acknowledges_once_as_the_person_from_push(api, reach, on_duty):
    incident_id, doctor = assigned_incident(api)
    [push] = wait_for(lambda: reach.push.for_incident(incident_id) or None, 20, 0.1, "the push message")
    token = push["payload"]["ack_token"]
    opened = reach.call("POST", "/channel-ack", json={"token": token, "action": "open"})
    assert opened.status_code == 200 and opened.json() == {"incident_id": incident_id, "status": "read"}
    first = reach.call("POST", "/channel-ack", json={"token": token})
    assert first.status_code == 200, first.text
    assert first.json() == {"incident_id": incident_id, "status": "ACKNOWLEDGED"}
    again = reach.call("POST", "/channel-ack", json={"token": token})
    assert again.status_code == 410 and again.json()["status"] == 410
    assert reach.call("POST", "/channel-ack", json={"token": "not-a-token"}).status_code == 404
    incident = api.get(incident_id)
    assert incident["status"] == "ACKNOWLEDGED" and incident["assigned_to"] == doctor
    [ack] = [h for h in incident["history"] if h["action"] == "ACKNOWLEDGED"]
    assert ack["channel"] == "push" and ack["actor_id"] == doctor
    rows = reach.ledger_until(
        on_duty[doctor]["token"],
        incident_id,
        lambda rows: {r["status"] for r in rows} == {"acknowledged", "cancelled"},
        "the ledger: acknowledged from push, email cancelled",
    )
    [acked] = [r for r in rows if r["status"] == "acknowledged"]
    assert acked["channel"] == "push" and acked["acknowledged_at"] and acked["sent_at"] and acked["read_at"]


def test_a_gone_subscription_is_removed_and_falls_through_to_email_at_once(api, reach, on_duty):
    for doctor in on_duty:
        reach.push.answer[doctor] = 410
    incident_id, doctor = assigned_incident(api)
    token, address = on_duty[doctor]["token"], on_duty[doctor]["email"]
    # No clock moved: the email comes at once because the push failed for good.
    wait_for(
        lambda: [m for m in reach.mail.to(address) if about(m, incident_id)] or None,
        20,
        0.1,
        "the email brought forward",
    )
    rows = reach.ledger_until(
        token,
        incident_id,
        lambda rows: {r["status"] for r in rows} == {"failed", "sent"},
        "the ledger: push failed, email sent",
    )
    [push] = [r for r in rows if r["channel"] == "push"]
    assert push["reason"] == "push subscription gone (410)" and push["failed_at"]
    assert push["contact_method_id"] is None  # the subscription is deleted; the row stays
    methods = reach.call("GET", "/contact-methods", token).json()["contact_methods"]
    assert [m["kind"] for m in methods] == ["email"]


def test_smtp_down_is_retried_with_back_off_then_the_next_method(api, reach, on_duty):
    for person in on_duty.values():
        reach.rules(
            person["token"], [{"delay_seconds": 0, "kind": "email"}, {"delay_seconds": 30, "kind": "push"}]
        )
    reach.mail.stop()
    incident_id, doctor = assigned_incident(api)
    token = on_duty[doctor]["token"]
    [push] = wait_for(
        lambda: reach.push.for_incident(incident_id) or None, 30, 0.1, "the push after email failed"
    )
    rows = reach.ledger_until(
        token,
        incident_id,
        lambda rows: {r["status"] for r in rows} == {"dead_letter", "sent"},
        "the ledger: email dead-lettered, push sent",
    )
    [email] = [r for r in rows if r["channel"] == "email"]
    assert email["attempts"] == 3 and email["reason"].startswith("SMTP server unreachable")
    assert email["reason"].endswith("(after 3 tries)")
    [sent] = [r for r in rows if r["channel"] == "push"]
    assert sent["attempt_id"] == push["payload"]["attempt_id"]
    # brought forward when the email was dead-lettered, not at its own 30 s
    own_due = datetime.fromisoformat(email["due_at"]) + timedelta(seconds=30)
    assert datetime.fromisoformat(sent["due_at"]) < own_due
    assert datetime.fromisoformat(email["failed_at"]) <= datetime.fromisoformat(sent["sending_at"])


def test_contact_methods_are_the_owners_and_supervisors_see_them_masked(reach, login_as):
    nurse = login_as("S01")  # not a supervisor
    supervisor = login_as("N01")
    mine = reach.subscribe(nurse, "S01")
    assert mine["verified"] and mine["address"] == "127.0.0.1"  # a push endpoint shown by its service
    email = reach.call(
        "POST", "/contact-methods", nurse, json={"kind": "email", "address": "sarah.chen@hospital.example"}
    )
    assert email.status_code == 201 and not email.json()["contact_method"]["verified"]
    wrong = reach.call(
        "POST",
        f"/contact-methods/{email.json()['contact_method']['contact_method_id']}/verify",
        nurse,
        json={"code": "000000"},
    )
    assert wrong.status_code in (200, 422)
    phone = reach.call("POST", "/contact-methods", nurse, json={"kind": "phone", "address": "+441632960123"})
    assert phone.status_code == 201 and phone.json()["contact_method"]["address"] == "+441632960123"
    assert (
        reach.call("POST", "/contact-methods", nurse, json={"kind": "phone", "address": "12"}).status_code
        == 422
    )

    seen = reach.call("GET", "/contact-methods?employee_id=S01", supervisor)
    assert seen.status_code == 200
    shown = {m["kind"]: m["address"] for m in seen.json()["contact_methods"]}
    assert shown == {"push": "127.0.0.1", "email": "s***@hospital.example", "phone": "***23"}
    assert "secret" not in seen.text and "p256dh" not in seen.text and "auth" not in seen.text
    assert reach.call("GET", "/contact-methods?employee_id=N01", nurse).status_code == 403
    assert reach.call("GET", "/contact-methods?employee_id=nobody", supervisor).status_code == 404

    assert reach.call("GET", "/push/vapid-public-key").json() == {"public_key": VAPID_PUBLIC}
    rules = reach.call("GET", "/notification-rules", nurse).json()
    assert rules["HIGH"]["source"] == "hospital"
    defaults = reach.call(
        "PUT",
        "/notification-rules/defaults/CARDIOLOGIST",
        supervisor,
        json={"HIGH": [{"delay_seconds": 0, "kind": "push"}, {"delay_seconds": 60, "kind": "phone"}]},
    )
    assert defaults.status_code == 200, defaults.text
    assert (
        reach.call("PUT", "/notification-rules/defaults/CARDIOLOGIST", nurse, json={"HIGH": []}).status_code
        == 403
    )
    rules = reach.call("GET", "/notification-rules", nurse).json()
    assert rules["HIGH"]["source"] == "role" and [s["kind"] for s in rules["HIGH"]["steps"]] == [
        "push",
        "phone",
    ]
    assert rules["LOW"]["source"] == "hospital"
    other = reach.call(
        "PUT",
        "/notification-rules",
        nurse,
        json={"HIGH": [{"delay_seconds": 0, "contact_method_id": 999999}]},
    )
    assert other.status_code == 422
    deleted = reach.call("DELETE", f"/contact-methods/{mine['contact_method_id']}", nurse)
    assert deleted.status_code == 204
    assert reach.call("DELETE", f"/contact-methods/{mine['contact_method_id']}", nurse).status_code == 404


def test_reachability_lists_who_on_the_rota_has_no_off_tab_method(api, reach, doctors, login_as):
    duty = api.on_duty("EMERGENCY_DOCTOR")
    reach.subscribe(doctors[duty[0]], duty[0])
    answer = reach.call("GET", "/reachability", login_as("N01"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert duty[0] not in body["unreachable"] and duty[1] in body["unreachable"]
    assert {p["employee_id"]: p["kinds"] for p in body["on_duty"]}[duty[0]] == ["push"]
    assert reach.call("GET", "/reachability", login_as("S01")).status_code == 403
    me = reach.call("GET", "/reachability/me", doctors[duty[1]]).json()
    assert me == {"reachable": False, "kinds": [], "on_call": True, "show_banner": True}
    me = reach.call("GET", "/reachability/me", doctors[duty[0]]).json()
    assert me["reachable"] and not me["show_banner"]
