"""Badges, SMS and voice end to end (issue 23's "Done when"): a real pipeline (on-call, alert
ingestion, incident management) and two notification services side by side (competing for the
ledger's due attempts), against a WCTP 1.3 Alert Communicator and a Twilio-compatible API running
as HTTP servers in the test process (tests/edge_telephony.py). An alert is posted; incident
management assigns it; the notification worker schedules and sends the assignee's steps; the edges
answer, call back (signed) and reply as the real ones do."""

import re
from collections import Counter
from datetime import datetime

import pytest
import requests

from notification.channels.telephony import twilio_signature
from tests.edge_telephony import AlertCommunicator, TwilioApi
from tests.reach_support import KILLABLE_SENDERS, ReachApi, kill_the_worker_holding_a_send
from tests.support import ServiceProcess, free_port, wait_for

pytestmark = pytest.mark.module_database

ACCOUNT_SID, AUTH_TOKEN, OUR_NUMBER = (
    "AC" + "2" * 32,
    "twilio-pipeline-auth-token-0123456789",
    "+442079460001",
)
INBOUND_TOKEN = "ac-inbound-token-for-the-pipeline-test"
DOCTORS = ("D01", "D02", "D03", "D04")
PHONES = {doctor: f"+4420794601{n:02d}" for n, doctor in enumerate(DOCTORS, start=1)}


@pytest.fixture(scope="module")
def edges():
    ac = AlertCommunicator(badges=[f"badge-{d}" for d in DOCTORS], inbound_token=INBOUND_TOKEN)
    twilio = TwilioApi(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, our_number=OUR_NUMBER)
    yield {"ac": ac, "twilio": twilio}
    ac.close()
    twilio.close()


@pytest.fixture(scope="module")
def services(module_service_env, alert_pipeline, edges):
    """The module's alert pipeline, and two notification services for it (competing for the
    ledger's due attempts)."""
    ports = [free_port(), free_port()]
    copies = []
    try:
        for port in ports:
            url = f"http://127.0.0.1:{port}"
            env = {
                **module_service_env,
                "ONCALL_URL": alert_pipeline["oncall"].url,
                "INCIDENT_MANAGEMENT_URL": alert_pipeline["incidents"].url,
                "WCTP_URL": edges["ac"].url,
                "WCTP_SENDER_ID": "healthguard",
                "WCTP_SECURITY_CODE": "ac-security-code",
                "WCTP_ANSWERS": "push",
                "WCTP_RESPONSE_URL": f"{url}/api/v1/wctp",
                "WCTP_INBOUND_TOKEN": INBOUND_TOKEN,
                "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "TWILIO_FROM": OUR_NUMBER,
                "TWILIO_API_BASE": edges["twilio"].url,
                "TWILIO_WEBHOOK_BASE": url,
                "PHONE_DEFAULT_REGION": "GB",
                **KILLABLE_SENDERS,
            }
            copies.append(ServiceProcess("notification", env, port=port).start())
        yield {**alert_pipeline, "notification": copies}
    finally:
        for copy in copies:
            copy.stop()


@pytest.fixture
def reach(services, edges, api):
    # Each test starts from the template database: attempt ids (the WCTP messageIDs) start again.
    ac, twilio = edges["ac"], edges["twilio"]
    with ac.lock:
        ac.hold = False
        ac.release.clear()
        ac.held.clear()
        ac.received.clear()
        ac.messages.clear()
        ac.submissions.clear()
    with twilio.lock:
        twilio.messages.clear()
        twilio.calls.clear()
    return ReachApi(services["notification"][0].url)


def badge_code(ac):
    def code_of(badge):
        for body in ac.received:
            text = body.decode()
            if f'recipientID="{badge}"' in text and "HealthGuard code" in text:
                return re.search(r"HealthGuard code (\d{6})", text).group(1)
        return None

    return code_of


def sms_code(twilio):
    def code_of(number):
        for message in twilio.messages:
            found = re.search(r"confirm this phone is (\d{6})", message["Body"])
            if message["To"] == number and found:
                return found.group(1)
        return None

    return code_of


def _on_duty_with(reach, api, doctors, method, steps):
    """The emergency doctors on duty, each with method(doctor) = (kind, address, code_of)
    verified, and the rule: those steps."""
    duty = api.on_duty("EMERGENCY_DOCTOR")
    for doctor in duty:
        reach.add_verified(doctors[doctor], *method(doctor))
        reach.rules(doctors[doctor], steps)
    return duty


def badges_on_duty(reach, api, doctors, ac):
    """The emergency doctors on duty, each with a verified badge and the rule: the badge at once."""

    def badge(doctor):
        return "badge", f"badge-{doctor}", badge_code(ac)

    return _on_duty_with(reach, api, doctors, badge, [{"delay_seconds": 0, "kind": "badge"}])


def phones_on_duty(reach, api, doctors, twilio, steps, *, typed_nationally=False):
    """The emergency doctors on duty, each with a verified phone (typed as 020..., or in E.164)
    and the rule: those steps."""

    def phone(doctor):
        number = PHONES[doctor].replace("+44", "0") if typed_nationally else PHONES[doctor]
        return "phone", number, sms_code(twilio)

    return _on_duty_with(reach, api, doctors, phone, steps)


def sms_of(twilio, attempt_id, what="the alarm SMS"):
    return wait_for(
        lambda: next((m for m in twilio.messages if f"(code {attempt_id})" in m["Body"]), None), 15, 0.1, what
    )


def call_of(twilio, attempt_id, what="the call"):
    return wait_for(
        lambda: next((c for c in twilio.calls if f"attempt={attempt_id}" in c["Twiml"]), None), 15, 0.1, what
    )


def history(api, incident_id):
    return api.get(incident_id)["history"]


def all_patient_names(db):
    with db.transaction() as cur:
        cur.execute("SELECT name FROM patients")
        return [row["name"] for row in cur.fetchall()]


def assert_no_patient_name_left_us(db, edges):
    """Minimum necessary, by default: no patient's name in anything the edges received."""
    sent = [body.decode() for body in edges["ac"].received]
    sent += [m["Body"] for m in edges["twilio"].messages] + [c["Twiml"] for c in edges["twilio"].calls]
    for name in all_patient_names(db):
        for surname in (name, name.split()[-1]):
            assert not any(surname in text for text in sent), f"{surname!r} left the hospital network"


def alarm_for(ac, attempt_id):
    return wait_for(lambda: ac.messages.get(str(attempt_id)), 20, 0.1, f"attempt {attempt_id} at the AC")


# --------------------------------------------------------------------------- badges
def test_a_badge_gets_the_alarm_sees_delivered_then_read_and_accept_acknowledges(
    api, db, doctors, reach, edges
):
    ac = edges["ac"]
    badges_on_duty(reach, api, doctors, ac)
    incident = api.incident_of(api.post_alert(patient_id="P001", alert_type="CARDIAC_ARREST"))
    incident_id, doctor = incident["incident_id"], incident["assigned_to"]
    token = doctors[doctor]
    [row] = reach.ledger_until(
        token, incident_id, lambda rows: rows[0]["status"] == "sent", "the badge attempt sent"
    )
    assert row["channel"] == "badge"
    message = alarm_for(ac, row["attempt_id"])  # the AC accepted it: it follows the WCTP 1.3 grammar
    assert message["recipient"] == f"badge-{doctor}" and message["choices"] == ["Accept", "Reject"]
    assert "CRITICAL" in message["text"] and incident["room"] in message["text"]

    assert ac.report(str(row["attempt_id"]), "DELIVERED").status_code == 200
    delivered = reach.ledger_until(token, incident_id, lambda r: r[0]["status"] == "delivered", "delivered")[
        0
    ]
    assert ac.report(str(row["attempt_id"]), "READ").status_code == 200
    read = reach.ledger_until(token, incident_id, lambda r: r[0]["status"] == "read", "read")[0]
    assert delivered["delivered_at"] and read["read_at"] and read["read_at"] >= read["delivered_at"]

    accepted = ac.press(str(row["attempt_id"]), "Accept")
    assert accepted.status_code == 200 and b"wctp-Success" in accepted.content
    api.wait_until(incident_id, lambda i: i["status"] == "ACKNOWLEDGED", "acknowledged from the badge")
    [acknowledged] = [h for h in history(api, incident_id) if h["action"] == "ACKNOWLEDGED"]
    assert (acknowledged["actor_id"], acknowledged["channel"]) == (doctor, "badge")
    reach.ledger_until(token, incident_id, lambda r: r[0]["status"] == "acknowledged", "the row acknowledged")

    # A second acknowledgement, from another channel, is a no-op and no error to the clinician.
    again = requests.patch(
        f"{api.url}/api/v1/incidents/{incident_id}/acknowledge",
        timeout=10,
        headers=api.auth(api.service_token),
        json={"employee_id": doctor, "channel": "sms"},
    )
    assert again.status_code == 200 and again.json()["status"] == "ACKNOWLEDGED"
    assert ac.press(str(row["attempt_id"]), "Accept").status_code == 200
    assert [h["channel"] for h in history(api, incident_id) if h["action"] == "ACKNOWLEDGED"] == ["badge"]
    assert_no_patient_name_left_us(db, edges)


def test_reject_on_the_badge_pages_the_next_person_within_2_seconds(api, db, clock, doctors, reach, edges):
    ac = edges["ac"]
    badges_on_duty(reach, api, doctors, ac)
    incident = api.incident_of(api.post_alert(patient_id="P002", alert_type="CARDIAC_ARREST"))
    incident_id, first = incident["incident_id"], incident["assigned_to"]
    [row] = reach.ledger_until(
        doctors[first], incident_id, lambda r: r[0]["status"] == "sent", "first badge sent"
    )
    alarm_for(ac, row["attempt_id"])
    rejected_at = clock.now()
    assert ac.press(str(row["attempt_id"]), "Reject").status_code == 200
    moved = api.wait_until(incident_id, lambda i: i["assigned_to"] not in (None, first), "the next person")
    second = moved["assigned_to"]
    rows = reach.ledger_until(
        doctors[second],
        incident_id,
        lambda rs: any(r["employee_id"] == second and r["sent_at"] for r in rs),
        "the next person's badge sent",
    )
    [theirs] = [r for r in rows if r["employee_id"] == second]
    [mine] = [r for r in rows if r["employee_id"] == first]
    assert mine["status"] == "rejected"
    alarm_for(ac, theirs["attempt_id"])
    # On the platform's (test) clock: the next person's badge is due at the hand-over, at once;
    # when it actually left us is printed (a loaded machine's figure, not asserted).
    due = datetime.fromisoformat(theirs["due_at"])
    assert (due - rejected_at).total_seconds() <= 2, due - rejected_at
    print(f"reject to the next badge request: {datetime.fromisoformat(theirs['sent_at']) - rejected_at}")
    [declined] = [h for h in history(api, incident_id) if h["action"] == "DECLINED"]
    assert (declined["actor_id"], declined["channel"]) == (first, "badge")


# --------------------------------------------------------------------------- SMS and voice
def test_an_sms_reply_1_acknowledges_and_unknown_numbers_are_ignored(api, db, doctors, reach, edges):
    twilio = edges["twilio"]
    phones_on_duty(reach, api, doctors, twilio, [{"delay_seconds": 0, "kind": "sms"}], typed_nationally=True)
    incident = api.incident_of(api.post_alert(patient_id="P003", alert_type="CARDIAC_ARREST"))
    incident_id, doctor = incident["incident_id"], incident["assigned_to"]
    [row] = reach.ledger_until(
        doctors[doctor], incident_id, lambda r: r[0]["status"] == "sent", "the SMS sent"
    )
    assert row["channel"] == "sms"
    message = sms_of(twilio, row["attempt_id"])
    assert message["To"] == PHONES[doctor]  # stored in E.164
    assert twilio.status(message, "delivered").status_code == 204
    reach.ledger_until(doctors[doctor], incident_id, lambda r: r[0]["status"] == "delivered", "SMS delivered")
    webhook = f"{reach.url}/api/v1/twilio/sms"
    stranger = twilio.reply_sms("+442079460999", "1", webhook)
    assert stranger.status_code == 200 and api.get(incident_id)["status"] == "ASSIGNED"
    answered = twilio.reply_sms(PHONES[doctor], "1", webhook)
    assert answered.status_code == 200 and "Acknowledged" in answered.text
    api.wait_until(incident_id, lambda i: i["status"] == "ACKNOWLEDGED", "acknowledged by SMS")
    [acknowledged] = [h for h in history(api, incident_id) if h["action"] == "ACKNOWLEDGED"]
    assert (acknowledged["actor_id"], acknowledged["channel"]) == (doctor, "sms")
    assert_no_patient_name_left_us(db, edges)


def test_pressing_2_on_the_call_declines_and_an_unanswered_call_falls_through(api, db, doctors, reach, edges):
    twilio = edges["twilio"]
    steps = [{"delay_seconds": 0, "kind": "voice"}, {"delay_seconds": 45, "kind": "sms"}]
    phones_on_duty(reach, api, doctors, twilio, steps)
    incident = api.incident_of(api.post_alert(patient_id="P004", alert_type="CARDIAC_ARREST"))
    incident_id, first = incident["incident_id"], incident["assigned_to"]
    rows = reach.ledger_until(
        doctors[first],
        incident_id,
        lambda rs: any(r["channel"] == "voice" and r["status"] == "sent" for r in rs),
        "the call placed",
    )
    [voice] = [r for r in rows if r["channel"] == "voice"]
    call = call_of(twilio, voice["attempt_id"])
    said = twilio.answer_call(call, "2")
    assert said.status_code == 200 and "Declined" in said.text
    moved = api.wait_until(incident_id, lambda i: i["assigned_to"] not in (None, first), "declined by voice")
    [declined] = [h for h in history(api, incident_id) if h["action"] == "DECLINED"]
    assert (declined["actor_id"], declined["channel"]) == (first, "voice")

    # The next person does not answer: the call fails and their SMS step comes at once, not in 45 s.
    second = moved["assigned_to"]
    rows = reach.ledger_until(
        doctors[second],
        incident_id,
        lambda rs: any(
            r["employee_id"] == second and r["channel"] == "voice" and r["status"] == "sent" for r in rs
        ),
        "the second call",
    )
    [theirs] = [r for r in rows if r["employee_id"] == second and r["channel"] == "voice"]
    call = call_of(twilio, theirs["attempt_id"], "the second call")
    assert twilio.ring_out(call, "no-answer").status_code == 204
    rows = reach.ledger_until(
        doctors[second],
        incident_id,
        lambda rs: any(
            r["employee_id"] == second and r["channel"] == "sms" and r["status"] == "sent" for r in rs
        ),
        "the SMS brought forward",
    )
    [failed] = [r for r in rows if r["attempt_id"] == theirs["attempt_id"]]
    assert failed["status"] == "failed" and "not answered" in failed["reason"]
    assert_no_patient_name_left_us(db, edges)


def test_a_wrong_or_replayed_signature_is_refused_and_changes_nothing(api, db, doctors, reach, edges):
    twilio = edges["twilio"]
    phones_on_duty(reach, api, doctors, twilio, [{"delay_seconds": 0, "kind": "sms"}])
    incident = api.incident_of(api.post_alert(patient_id="P005", alert_type="CARDIAC_ARREST"))
    incident_id, doctor = incident["incident_id"], incident["assigned_to"]
    [row] = reach.ledger_until(
        doctors[doctor], incident_id, lambda r: r[0]["status"] == "sent", "the SMS sent"
    )
    message = sms_of(twilio, row["attempt_id"])
    webhook = f"{reach.url}/api/v1/twilio/sms"
    params = {"MessageSid": "SMforged", "From": PHONES[doctor], "To": OUR_NUMBER, "Body": "1"}
    forged = twilio.signed_post(webhook, params, signature="AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    assert forged.status_code == 403 and forged.json()["status"] == 403
    unsigned = requests.post(webhook, data=params, timeout=10)
    assert unsigned.status_code == 401
    failed = {"MessageSid": message["sid"], "MessageStatus": "failed"}
    not_ours = twilio_signature("not-our-auth-token", message["StatusCallback"], failed)
    assert twilio.signed_post(message["StatusCallback"], failed, signature=not_ours).status_code == 403
    assert api.get(incident_id)["status"] == "ASSIGNED"
    assert reach.ledger(doctors[doctor], incident_id)[0]["status"] == "sent"
    # A genuine callback, then the same one again (a replay): refused, nothing changes.
    assert twilio.status(message, "delivered").status_code == 204
    assert twilio.status(message, "delivered").status_code == 403
    assert reach.ledger(doctors[doctor], incident_id)[0]["delivered_at"] is not None


# --------------------------------------------------------------------------- nothing twice
def test_a_worker_killed_mid_send_sends_each_badge_message_once(
    api, db, clock, doctors, reach, edges, services
):
    ac = edges["ac"]
    badges_on_duty(reach, api, doctors, ac)
    before = set(ac.messages)
    rows, _ = kill_the_worker_holding_a_send(
        channel="badge",
        provider=ac,
        workers=services["notification"],
        api=api,
        db=db,
        clock=clock,
        patients=["P006", "P007", "P008"],
        settled=("sent",),  # taken over and sent again with the same messageID
    )
    new = {m: ac.submissions[m] for m in ac.messages if m not in before}
    assert sorted(new) == sorted(str(r["attempt_id"]) for r in rows)  # each message once at the badge
    assert Counter(new.values()) == Counter({1: len(rows) - 1, 2: 1})  # one request repeated, deduplicated
    assert_no_patient_name_left_us(db, edges)
