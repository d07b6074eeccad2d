"""Badges (IHE PCD-06/07 over WCTP 1.3), SMS and voice (Twilio), and acknowledging from any channel
(issue 23). The Alert Communicator and the Twilio API are real HTTP servers in the test process
(tests/edge_telephony.py); our channels, the ledger and PostgreSQL are real."""

import datetime as dt

import defusedxml.ElementTree as ET
import pytest

from healthguard import clock as hg_clock
from notification import channel_answers
from notification.channels import telephony, wctp
from notification.channels.base import Alarm, Attempt
from tests.edge_telephony import AlertCommunicator, TwilioApi, grammar_errors

PATIENT_NAME = "John Whitfield"  # P001 of the seed, the patient of make_incident's alarms
ACCOUNT_SID, AUTH_TOKEN, OUR_NUMBER = "AC" + "1" * 32, "twilio-test-auth-token-0123456789", "+442079460001"
PHONE = "+442079460961"


def an_alarm(*, patient_label=None, incident_id=42) -> Alarm:
    return Alarm(
        incident_id=incident_id,
        severity="CRITICAL",
        alert_name="Cardiac arrest",
        room="312",
        ward="Cardiology",
        patient_label=patient_label,
        title="CRITICAL: Cardiac arrest, room 312",
        summary="Cardiac arrest (critical) in room 312, ward Cardiology. Incident 42.",
    )


def an_attempt(*, attempt_id=4711, channel="badge", address="badge-N02") -> Attempt:
    return Attempt(
        id=attempt_id,
        incident_id=42,
        employee_id="N02",
        channel=channel,
        address=address,
        secret=None,
        rule_step=0,
        ack_token="not-used-here",
    )


AC_SETTINGS = wctp.AlertCommunicator(
    url="http://127.0.0.1:9/wctp",
    sender_id="healthguard",
    security_code="ac-security-code",
    answers="push",
    response_url="http://127.0.0.1:9/api/v1/wctp",
)


# --------------------------------------------------------------------------- WCTP documents
def test_submit_request_is_a_wctp_13_operation_for_one_recipient_with_accept_and_reject():
    body = wctp.submit_request(
        ac=AC_SETTINGS,
        attempt=an_attempt(),
        alarm=an_alarm(),
        at=dt.datetime(2026, 3, 11, 10, 0, 2, tzinfo=dt.UTC),
    )
    assert body.startswith(
        b'<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE wctp-Operation SYSTEM '
        b'"http://dtd.wctp.org/wctp-dtd-v1r3.dtd">'
    )
    root = ET.fromstring(body)
    assert grammar_errors(root) == []
    assert root.get("wctpVersion") == "wctp-dtd-v1r3"
    header = root.find("wctp-SubmitRequest/wctp-SubmitHeader")
    control = header.find("wctp-MessageControl")
    assert control.get("messageID") == "4711"  # the ledger row
    assert control.get("notifyWhenDelivered") == control.get("notifyWhenRead") == "true"
    assert control.get("deliveryPriority") == "HIGH"
    assert control.get("sendResponsesToID") == "http://127.0.0.1:9/api/v1/wctp"
    assert [r.get("recipientID") for r in header.findall("wctp-Recipient")] == ["badge-N02"]
    assert header.find("wctp-Originator").attrib == {
        "senderID": "healthguard",
        "securityCode": "ac-security-code",
    }
    mcr = root.find("wctp-SubmitRequest/wctp-Payload/wctp-MCR")
    assert [c.text for c in mcr.findall("wctp-Choice")] == ["Accept", "Reject"]
    assert mcr.findtext("wctp-MessageText") == "CRITICAL Cardiac arrest Rm 312 Cardiology #42"
    # Minimum necessary: the patient only where the setting allows (Alarm.patient_label).
    assert PATIENT_NAME.encode() not in body
    allowed = wctp.submit_request(
        ac=AC_SETTINGS,
        attempt=an_attempt(),
        alarm=an_alarm(patient_label=PATIENT_NAME),
        at=dt.datetime(2026, 3, 11, 10, 0, 2, tzinfo=dt.UTC),
    )
    assert PATIENT_NAME.encode() in allowed


def _op(inner: str) -> bytes:
    return (
        f'<?xml version="1.0"?><wctp-Operation wctpVersion="wctp-dtd-v1r3">{inner}</wctp-Operation>'.encode()
    )


HEADER = (
    '<wctp-ResponseHeader responseToMessageID="4711"><wctp-Originator senderID="badge-N02"/>'
    '<wctp-MessageControl messageID="x"/><wctp-Recipient recipientID="healthguard"/></wctp-ResponseHeader>'
)


def test_the_acs_answers_are_read_status_reply_poll_and_confirmation():
    [status] = wctp.answers_in(
        _op(f'<wctp-StatusInfo>{HEADER}<wctp-Notification type="DELIVERED"/></wctp-StatusInfo>')
    )
    assert (status.kind, status.message_id, status.status) == ("status", 4711, "delivered")
    [failed] = wctp.answers_in(
        _op(f'<wctp-StatusInfo>{HEADER}<wctp-Failure errorCode="403" errorText="off"/></wctp-StatusInfo>')
    )
    assert (failed.status, failed.code, failed.text) == ("failed", "403", "off")
    [reply] = wctp.answers_in(
        _op(
            f'<wctp-MessageReply MCRMessageReply="true">{HEADER}<wctp-Payload>'
            "<wctp-Alphanumeric>accept</wctp-Alphanumeric></wctp-Payload></wctp-MessageReply>"
        )
    )
    assert (reply.kind, reply.message_id, reply.choice, reply.device_id) == (
        "reply",
        4711,
        "Accept",
        "badge-N02",
    )
    [as_mcr] = wctp.answers_in(
        _op(
            f"<wctp-MessageReply>{HEADER}<wctp-Payload><wctp-MCR><wctp-MessageText>Reject"
            "</wctp-MessageText><wctp-Choice>Reject</wctp-Choice></wctp-MCR></wctp-Payload>"
            "</wctp-MessageReply>"
        )
    )
    assert as_mcr.choice == "Reject"
    polled = wctp.answers_in(
        _op(
            f'<wctp-PollResponse><wctp-Message sequenceNo="7"><wctp-StatusInfo>{HEADER}'
            '<wctp-Notification type="READ"/></wctp-StatusInfo></wctp-Message>'
            f'<wctp-Message sequenceNo="8"><wctp-MessageReply>{HEADER}<wctp-Payload>'
            "<wctp-Alphanumeric>Accept</wctp-Alphanumeric></wctp-Payload></wctp-MessageReply></wctp-Message>"
            "</wctp-PollResponse>"
        )
    )
    assert [(a.kind, a.sequence_no) for a in polled] == [("status", 7), ("reply", 8)]
    [refused] = wctp.answers_in(
        _op('<wctp-Confirmation><wctp-Failure errorCode="403" errorText="unknown"/></wctp-Confirmation>')
    )
    assert (refused.kind, refused.success, refused.code) == ("confirmation", False, "403")
    poll = ET.fromstring(wctp.poll_for_messages(ac=AC_SETTINGS, received=[7, 8]))
    assert grammar_errors(poll) == []


@pytest.mark.parametrize(
    "body",
    [
        # billion laughs
        b'<?xml version="1.0"?><!DOCTYPE wctp-Operation [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;">]><wctp-Operation wctpVersion="wctp-dtd-v1r3">'
        b'<wctp-StatusInfo>&b;</wctp-StatusInfo></wctp-Operation>',
        # an external entity (XXE)
        b'<?xml version="1.0"?><!DOCTYPE wctp-Operation [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<wctp-Operation wctpVersion="wctp-dtd-v1r3">'
        b'<wctp-StatusInfo>&x;</wctp-StatusInfo></wctp-Operation>',
        b"not xml at all",
        b"<html/>",
        _op("<wctp-VersionQuery inquirer='x'/>"),
        _op("<wctp-StatusInfo/>"),
    ],
)
def test_unsafe_or_foreign_xml_is_refused(body):
    with pytest.raises(wctp.WctpError):
        wctp.answers_in(body)


# --------------------------------------------------------------------------- Twilio pieces
def test_twilio_signature_matches_twilios_published_examples():
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675310",
        "Digits": "1234",
        "From": "+14158675310",
        "To": "+18005551212",
    }
    assert telephony.twilio_signature("12345", url, params) == "GvWf1cFY/Q7PnoempGyD5oXAezc="
    assert telephony.signature_valid("12345", url, params, "GvWf1cFY/Q7PnoempGyD5oXAezc=")
    assert not telephony.signature_valid(
        "12345", url, {**params, "Digits": "1"}, "GvWf1cFY/Q7PnoempGyD5oXAezc="
    )
    assert not telephony.signature_valid("12345", url + "&x=1", params, "GvWf1cFY/Q7PnoempGyD5oXAezc=")
    assert not telephony.signature_valid("12345", url, params, "")


def test_phone_numbers_are_stored_in_e164():
    assert telephony.e164("020 7946 0961", "GB") == "+442079460961"
    assert telephony.e164("+44 (0)20 7946 0961") == "+442079460961"
    assert telephony.e164("+1 415 867 5310") == "+14158675310"
    assert telephony.e164("12") is None and telephony.e164("not a number", "GB") is None


# --------------------------------------------------------------------------- channels at the edges
@pytest.fixture
def alert_communicator():
    ac = AlertCommunicator(badges=("badge-N02", "badge-N03"), inbound_token="ac-inbound-token-0123456789")
    yield ac
    ac.close()


@pytest.fixture
def twilio_api():
    api = TwilioApi(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, our_number=OUR_NUMBER)
    yield api
    api.close()


def test_the_badge_channel_sends_once_per_message_id_and_falls_through_on_an_unknown_badge(
    alert_communicator,
):
    channel = wctp.WctpChannel(
        wctp.AlertCommunicator(
            url=alert_communicator.url,
            sender_id="healthguard",
            security_code=None,
            answers="push",
            response_url="http://127.0.0.1:9/api/v1/wctp",
        )
    )
    assert channel.resend_safe
    result = channel.send(an_attempt(), an_alarm())
    assert (result.status, result.provider_ref) == ("sent", "wctp:4711")
    again = channel.send(an_attempt(), an_alarm())  # a sender that died mid-send, taken over
    assert again.status == "sent"
    assert list(alert_communicator.messages) == ["4711"] and alert_communicator.submissions["4711"] == 2
    unknown = channel.send(an_attempt(attempt_id=4712, address="badge-X99"), an_alarm())
    assert (unknown.status, unknown.retry) == ("failed", False) and "403" in unknown.reason
    down = wctp.WctpChannel(
        wctp.AlertCommunicator(
            url="http://127.0.0.1:9/wctp",
            sender_id="hg",
            security_code=None,
            answers="poll",
            response_url=None,
        )
    )
    gone = down.send(an_attempt(), an_alarm())
    assert (gone.status, gone.retry) == ("failed", True)


def test_sms_and_voice_channels_speak_twilios_api_without_the_patient(twilio_api):
    provider = telephony.Twilio(
        telephony.TwilioSettings(
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            from_number=OUR_NUMBER,
            api_base=twilio_api.url,
            webhook_base="https://hg.example.org",
        )
    )
    sms = telephony.SmsChannel(provider).send(
        an_attempt(attempt_id=77, channel="sms", address=PHONE), an_alarm()
    )
    assert sms.status == "sent" and sms.provider_ref.startswith("SM")
    [message] = twilio_api.wait_for("messages")
    assert (message["To"], message["From"]) == (PHONE, OUR_NUMBER)
    assert "Reply 1 to acknowledge, 2 to decline (code 77)" in message["Body"]
    assert "CRITICAL" in message["Body"] and "312" in message["Body"] and PATIENT_NAME not in message["Body"]
    assert message["StatusCallback"] == "https://hg.example.org/api/v1/twilio/status?attempt=77"
    voice = telephony.VoiceChannel(provider).send(
        an_attempt(attempt_id=78, channel="voice", address=PHONE), an_alarm()
    )
    assert voice.status == "sent" and voice.provider_ref.startswith("CA")
    [call] = twilio_api.wait_for("calls")
    twiml = ET.fromstring(call["Twiml"])
    gather = twiml.find("Gather")
    assert gather.get("numDigits") == "1"
    assert gather.get("action") == "https://hg.example.org/api/v1/twilio/voice?attempt=78"
    said = " ".join(s.text for s in gather.findall("Say"))
    assert (
        "critical" in said
        and "Cardiac arrest" in said
        and "room 312" in said
        and PATIENT_NAME not in call["Twiml"]
    )
    assert call["MachineDetection"] == "Enable"
    assert sorted(call["form"]["StatusCallbackEvent"]) == ["answered", "completed"]
    wrong = telephony.Twilio(
        telephony.TwilioSettings(
            account_sid=ACCOUNT_SID,
            auth_token="wrong",
            from_number=OUR_NUMBER,
            api_base=twilio_api.url,
            webhook_base="https://hg.example.org",
        )
    )
    refused = telephony.SmsChannel(wrong).send(an_attempt(channel="sms", address=PHONE), an_alarm())
    assert (refused.status, refused.retry) == ("failed", False)


# --------------------------------------------------------------------------- answers on the ledger
@pytest.fixture
def ledger_rows(db, make_incident, clock_path):
    """An incident assigned to N02 with a badge, and a phone: build ledger rows straight into
    the database (what reach-backend's scheduler writes)."""
    incident_id = make_incident(severity="CRITICAL", assigned_to="N02")
    now = hg_clock.now()
    with db.transaction() as cur:
        methods = {}
        for kind, address in (("badge", "badge-N02"), ("phone", PHONE)):
            cur.execute(
                """INSERT INTO contact_methods (employee_id, kind, address, verified_at, created_at)
                           VALUES ('N02', %s, %s, %s, %s) RETURNING contact_method_id""",
                (kind, address, now, now),
            )
            methods[kind] = cur.fetchone()["contact_method_id"]

    def make(*, channel: str, step: int, status: str = "sent", due_in: float = 0, key: str = "k") -> int:
        kind = "badge" if channel == "badge" else "phone"
        with db.transaction() as cur:
            cur.execute(
                """
                INSERT INTO delivery_attempts (incident_id, employee_id, contact_method_id, channel,
                    assignment_key, assigned_at, rule_step, step_target, due_at, status, queued_at,
                    next_try_at, sent_at)
                VALUES (%(incident)s, 'N02', %(method)s, %(channel)s, %(key)s, %(now)s, %(step)s, %(target)s,
                        %(due)s, %(status)s, %(now)s, %(due)s,
                        CASE WHEN %(status)s <> 'queued' THEN %(now)s END)
                RETURNING attempt_id""",
                {
                    "incident": incident_id,
                    "method": methods[kind],
                    "channel": channel,
                    "now": now,
                    "step": step,
                    "target": f"{methods[kind]}:{channel}",
                    "due": now + dt.timedelta(seconds=due_in),
                    "status": status,
                    "key": key,
                },
            )
            return cur.fetchone()["attempt_id"]

    return make


def _row(db, attempt_id):
    with db.transaction() as cur:
        cur.execute("SELECT * FROM delivery_attempts WHERE attempt_id = %s", (attempt_id,))
        return cur.fetchone()


def test_badge_status_delivered_then_read_and_a_failure_brings_the_next_step_forward(db, ledger_rows):
    badge = ledger_rows(channel="badge", step=0)
    sms_later = ledger_rows(channel="sms", step=1, status="queued", due_in=300)
    now = hg_clock.now()
    with db.transaction() as cur:
        channel_answers.badge_answer(
            cur, answer=wctp.Answer("status", message_id=badge, status="delivered"), at=now
        )
    assert _row(db, badge)["status"] == "delivered" and _row(db, badge)["delivered_at"] is not None
    with db.transaction() as cur:
        channel_answers.badge_answer(
            cur, answer=wctp.Answer("status", message_id=badge, status="read"), at=now
        )
        # a late DELIVERED never moves it back
        channel_answers.badge_answer(
            cur, answer=wctp.Answer("status", message_id=badge, status="delivered"), at=now
        )
    assert _row(db, badge)["status"] == "read"
    assert _row(db, sms_later)["next_try_at"] > now
    with db.transaction() as cur:
        channel_answers.badge_answer(
            cur,
            answer=wctp.Answer("status", message_id=badge, status="failed", code="403", text="badge off"),
            at=now,
        )
    assert _row(db, badge)["status"] == "failed" and "badge off" in _row(db, badge)["reason"]
    assert _row(db, sms_later)["next_try_at"] == now  # the next step at once, never silently


def test_badge_replies_map_to_acknowledge_and_reject_and_other_devices_are_ignored(db, ledger_rows):
    badge = ledger_rows(channel="badge", step=0)
    now = hg_clock.now()
    with db.transaction() as cur:
        stranger = channel_answers.badge_answer(
            cur, at=now, answer=wctp.Answer("reply", message_id=badge, choice="Accept", device_id="badge-N03")
        )
        unknown = channel_answers.badge_answer(
            cur,
            at=now,
            answer=wctp.Answer("reply", message_id=badge + 1000, choice="Accept", device_id="badge-N02"),
        )
        accept = channel_answers.badge_answer(
            cur, at=now, answer=wctp.Answer("reply", message_id=badge, choice="Accept", device_id="badge-N02")
        )
        reject = channel_answers.badge_answer(
            cur, at=now, answer=wctp.Answer("reply", message_id=badge, choice="Reject", device_id="badge-N02")
        )
    assert stranger is None and unknown is None
    assert accept == channel_answers.Action("acknowledge", badge, "badge")
    assert reject == channel_answers.Action("reject", badge, "badge")


def test_sms_replies_unknown_numbers_ignored_codes_pick_the_alarm(db, ledger_rows):
    older = ledger_rows(channel="sms", step=0)
    newer = ledger_rows(channel="sms", step=1)
    now = hg_clock.now()
    with db.transaction() as cur:
        assert channel_answers.sms_reply(cur, from_number="+442079460999", body="1", at=now) == (None, None)
        action, _ = channel_answers.sms_reply(cur, from_number=PHONE, body=" 1 ", at=now)
        assert action == channel_answers.Action("acknowledge", newer, "sms")
        action, _ = channel_answers.sms_reply(cur, from_number=PHONE, body=f"2 {older}", at=now)
        assert action == channel_answers.Action("reject", older, "sms")
        action, said = channel_answers.sms_reply(cur, from_number=PHONE, body="yes", at=now)
        assert action is None and "Reply 1" in said


def test_unanswered_busy_or_voicemail_calls_fail_and_fall_through_a_key_pressed_does_not(db, ledger_rows):
    now = hg_clock.now()
    for number, params in enumerate(
        (
            {"CallStatus": "no-answer"},
            {"CallStatus": "busy"},
            {"CallStatus": "in-progress", "AnsweredBy": "machine_start"},
            {"CallStatus": "completed"},
        )
    ):
        call = ledger_rows(channel="voice", step=0, key=f"call{number}")
        after = ledger_rows(channel="sms", step=1, status="queued", due_in=600, key=f"call{number}")
        with db.transaction() as cur:
            channel_answers.provider_status(cur, attempt_id=call, params=params, at=now)
        assert _row(db, call)["status"] == "failed", params
        assert _row(db, after)["next_try_at"] == now, params
    answered = ledger_rows(channel="voice", step=0, key="answered")
    with db.transaction() as cur:
        channel_answers.provider_status(
            cur, attempt_id=answered, params={"CallStatus": "in-progress", "AnsweredBy": "human"}, at=now
        )
        assert channel_answers.voice_key(
            cur, attempt_id=answered, digits="2", at=now
        ) == channel_answers.Action("reject", answered, "voice")
        channel_answers.provider_status(cur, attempt_id=answered, params={"CallStatus": "completed"}, at=now)
    assert _row(db, answered)["status"] == "read"


def test_a_replayed_signed_request_is_recognised(db, clock_path):
    now = hg_clock.now()
    params = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    with db.transaction() as cur:
        assert channel_answers.first_sighting(
            cur, source="twilio", url="https://x/status?attempt=1", params=params, at=now
        )
        assert not channel_answers.first_sighting(
            cur, source="twilio", url="https://x/status?attempt=1", params=dict(params), at=now
        )
        assert channel_answers.first_sighting(
            cur,
            source="twilio",
            url="https://x/status?attempt=1",
            params={**params, "MessageStatus": "read"},
            at=now,
        )
