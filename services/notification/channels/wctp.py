"""Badges and unit phones: IHE PCD-06 (Disseminate Alarm) and PCD-07 (Report Dissemination Alarm
Status) over WCTP 1.3, to the hospital's Alert Communicator (AC: Vocera, Ascom, Spectralink...).

We are the Alarm Manager. Each ledger attempt of a badge goes to the AC as one
`wctp-SubmitRequest` for one recipient (the contact method's WCTP recipient id), its `messageID`
the ledger's attempt id, its payload a Multiple Choice Response (wctp-MCR) offering Accept and
Reject. The AC answers at once with a `wctp-Confirmation`, and later with `wctp-StatusInfo`
(QUEUED, DELIVERED, READ, or a failure) and `wctp-MessageReply` (the key the person pressed),
either posted to us (push, POST /api/v1/wctp) or handed over when we poll
(`wctp-PollForMessages`). What we send and accept: WCTP.md beside this package.

Incoming XML is parsed with defusedxml: no entity expansion, no DTD fetching, no external entity.
"""
import dataclasses
import datetime
import logging
import secrets
from xml.etree.ElementTree import Element, SubElement, tostring

import defusedxml.ElementTree as SafeET
import requests
from defusedxml import DefusedXmlException

from .base import Alarm, Attempt, SendResult

log = logging.getLogger(__name__)

WCTP_VERSION = "wctp-dtd-v1r3"
DOCTYPE = '<!DOCTYPE wctp-Operation SYSTEM "http://dtd.wctp.org/wctp-dtd-v1r3.dtd">'
ACCEPT, REJECT = "Accept", "Reject"
# The badge's screen: most show 100 to 160 characters; the AC truncates beyond (allowTruncation).
MAX_TEXT = 160
MAX_BODY = 64 * 1024
TIMEOUT = (3.0, 10.0)


class WctpError(ValueError):
    """An XML body that is not a WCTP operation we understand (the AC gets a wctp-Failure)."""


@dataclasses.dataclass(frozen=True)
class AlertCommunicator:
    """The AC as settings configure it (WCTP_URL, WCTP_SENDER_ID, WCTP_SECURITY_CODE,
    WCTP_ANSWERS, WCTP_RESPONSE_URL)."""
    url: str
    sender_id: str
    security_code: str | None
    answers: str                   # "push": the AC posts answers to response_url; "poll": we ask
    response_url: str | None       # our POST /api/v1/wctp as the AC reaches it (sendResponsesToID)

    @classmethod
    def from_settings(cls, settings) -> "AlertCommunicator | None":
        """The AC of the notification settings (checked there), None without WCTP_URL."""
        url = (settings.WCTP_URL or "").strip()
        if not url:
            return None
        answers = settings.WCTP_ANSWERS
        response_url = settings.WCTP_RESPONSE_URL or (
            settings.WEB_ORIGIN.rstrip("/") + "/api/v1/wctp" if answers == "push" else None)
        return cls(url=url, sender_id=settings.WCTP_SENDER_ID.strip(),
                   security_code=settings.WCTP_SECURITY_CODE or None, answers=answers,
                   response_url=response_url)


# --------------------------------------------------------------------------- sending
def alarm_text(alarm: Alarm) -> str:
    """What the badge shows: severity, alarm type, room (and ward), the incident number; the
    patient only where Alarm.patient_label carries it (NOTIFY_IDENTIFYING_DATA)."""
    where = f"Rm {alarm.room}" if alarm.room else "Rm ?"
    if alarm.ward:
        where += f" {alarm.ward}"
    text = f"{alarm.severity} {alarm.alert_name} {where} #{alarm.incident_id}"
    if alarm.patient_label:
        text += f" Pt {alarm.patient_label}"
    return text[:MAX_TEXT]


def _timestamp(at: datetime.datetime) -> str:
    # WCTP's timestamps are ISO 8601 without a zone (yyyy-mm-ddThh:mm:ss), in UTC by convention.
    return at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _document(operation: Element) -> bytes:
    return (b'<?xml version="1.0" encoding="utf-8"?>\n' + DOCTYPE.encode() + b"\n"
            + tostring(operation, encoding="unicode").encode("utf-8"))


def _operation() -> Element:
    return Element("wctp-Operation", {"wctpVersion": WCTP_VERSION})


def _submit_request(*, ac: AlertCommunicator, at: datetime.datetime) -> tuple[Element, Element, Element]:
    """A wctp-Operation holding a wctp-SubmitRequest from us (its header's time and originator):
    the operation, the request and its header, for the caller to add control, recipient, payload."""
    operation = _operation()
    request = SubElement(operation, "wctp-SubmitRequest")
    header = SubElement(request, "wctp-SubmitHeader", {"submitTimestamp": _timestamp(at)})
    originator = {"senderID": ac.sender_id}
    if ac.security_code:
        originator["securityCode"] = ac.security_code
    SubElement(header, "wctp-Originator", originator)
    return operation, request, header


def submit_request(*, ac: AlertCommunicator, attempt: Attempt, alarm: Alarm, at: datetime.datetime) -> bytes:
    """The PCD-06 wctp-SubmitRequest of one attempt, for its one recipient."""
    operation, request, header = _submit_request(ac=ac, at=at)
    control = {"messageID": str(attempt.id), "transactionID": f"incident-{alarm.incident_id}",
               "allowResponse": "true", "notifyWhenDelivered": "true", "notifyWhenRead": "true",
               "deliveryPriority": "HIGH" if alarm.severity in ("CRITICAL", "HIGH") else "NORMAL",
               "preformatted": "false", "allowTruncation": "true"}
    if ac.answers == "push" and ac.response_url:
        control["sendResponsesToID"] = ac.response_url
    SubElement(header, "wctp-MessageControl", control)
    SubElement(header, "wctp-Recipient", {"recipientID": attempt.address})
    mcr = SubElement(SubElement(request, "wctp-Payload"), "wctp-MCR")
    SubElement(mcr, "wctp-MessageText").text = alarm_text(alarm)
    for choice in (ACCEPT, REJECT):
        SubElement(mcr, "wctp-Choice").text = choice
    return _document(operation)


def verification_request(*, ac: AlertCommunicator, recipient: str, code: str, at: datetime.datetime) -> bytes:
    """A wctp-SubmitRequest showing a badge its verification code (plain text, no answer)."""
    operation, request, header = _submit_request(ac=ac, at=at)
    SubElement(header, "wctp-MessageControl", {"messageID": f"verify-{secrets.token_hex(6)}",
                                               "allowResponse": "false"})
    SubElement(header, "wctp-Recipient", {"recipientID": recipient})
    SubElement(SubElement(request, "wctp-Payload"), "wctp-Alphanumeric").text = (
        f"HealthGuard code {code}: enter it under My notifications.")
    return _document(operation)


def confirmation(*, success: bool, code: int, text: str) -> bytes:
    """Our wctp-Confirmation of an operation the AC posted to us."""
    operation = _operation()
    answer = SubElement(operation, "wctp-Confirmation")
    if success:
        SubElement(answer, "wctp-Success", {"successCode": str(code), "successText": text})
    else:
        SubElement(answer, "wctp-Failure", {"errorCode": str(code), "errorText": text})
    return _document(operation)


def poll_for_messages(*, ac: AlertCommunicator, received: list[int]) -> bytes:
    """wctp-PollForMessages, confirming the sequence numbers of the last poll we have stored."""
    operation = _operation()
    attributes = {"pollerID": ac.sender_id, "maxMessagesInBatch": "50"}
    if ac.security_code:
        attributes["securityCode"] = ac.security_code
    poll = SubElement(operation, "wctp-PollForMessages", attributes)
    for number in received:
        done = SubElement(poll, "wctp-MessageReceived", {"sequenceNo": str(number)})
        SubElement(done, "wctp-Success", {"successCode": "200", "successText": "stored"})
    return _document(operation)


# --------------------------------------------------------------------------- reading answers
@dataclasses.dataclass(frozen=True)
class Answer:
    """One thing the AC told us about one of our messages.
    kind: 'confirmation' (sync answer to our request), 'status' (queued/delivered/read/failed) or
    'reply' (choice = Accept | Reject | other text)."""
    kind: str
    message_id: int | None = None
    status: str | None = None
    choice: str | None = None
    device_id: str | None = None
    success: bool = True
    code: str | None = None
    text: str | None = None
    sequence_no: int | None = None


def parse(body: bytes) -> tuple[Element, Element]:
    """The wctp-Operation root and its one child; WctpError for anything else. defusedxml
    refuses entity declarations and external references (billion laughs, XXE): a DOCTYPE naming
    the public DTD is read but never fetched."""
    if len(body) > MAX_BODY:
        raise WctpError("body too large")
    try:
        root = SafeET.fromstring(body, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except (SafeET.ParseError, DefusedXmlException, ValueError) as exc:
        raise WctpError(f"not well-formed or unsafe XML: {type(exc).__name__}") from exc
    if root.tag != "wctp-Operation" or len(root) != 1:
        raise WctpError("the root must be one wctp-Operation holding one operation")
    return root, root[0]


def _message_id(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def _failure(element: Element) -> tuple[str, str]:
    failure = element.find("wctp-Failure")
    return failure.get("errorCode", ""), (failure.get("errorText") or failure.text or "").strip()[:200]


def _status_info(info: Element, sequence_no=None) -> Answer:
    header = info.find("wctp-ResponseHeader")
    if header is None:
        raise WctpError("wctp-StatusInfo without wctp-ResponseHeader")
    message_id = _message_id(header.get("responseToMessageID"))
    notification = info.find("wctp-Notification")
    if notification is not None:
        kind = (notification.get("type") or "").upper()
        if kind not in ("QUEUED", "DELIVERED", "READ"):
            raise WctpError(f"wctp-Notification type {kind!r}")
        return Answer("status", message_id=message_id, status=kind.lower(), sequence_no=sequence_no)
    if info.find("wctp-Failure") is not None:
        code, text = _failure(info)
        return Answer("status", message_id=message_id, status="failed", success=False, code=code,
                      text=text, sequence_no=sequence_no)
    raise WctpError("wctp-StatusInfo without wctp-Notification or wctp-Failure")


def _reply(reply: Element, sequence_no=None) -> Answer:
    header = reply.find("wctp-ResponseHeader")
    payload = reply.find("wctp-Payload")
    if header is None or payload is None:
        raise WctpError("wctp-MessageReply needs wctp-ResponseHeader and wctp-Payload")
    originator = header.find("wctp-Originator")
    device = header.get("onBehalfOfRecipientID")
    if device is None and originator is not None:
        device = originator.get("senderID")
    # The chosen response: plain text (MCRMessageReply="true" says it is one of our choices), or
    # an MCR whose text is the choice, as some ACs send it.
    text = payload.findtext("wctp-Alphanumeric")
    if text is None:
        text = payload.findtext("wctp-MCR/wctp-MessageText")
    choice = (text or "").strip()
    normalised = {c.lower(): c for c in (ACCEPT, REJECT)}.get(choice.lower(), choice[:100])
    return Answer("reply", message_id=_message_id(header.get("responseToMessageID")), choice=normalised,
                  device_id=device, sequence_no=sequence_no)


def answers_in(body: bytes) -> list[Answer]:
    """Every answer an AC's document carries: a posted wctp-StatusInfo or wctp-MessageReply
    (push), a wctp-PollResponse's messages (poll), or a wctp-Confirmation (its answer to ours).
    WctpError when it is none of these."""
    _, operation = parse(body)
    tag = operation.tag
    if tag == "wctp-Confirmation":
        if operation.find("wctp-Success") is not None:
            success = operation.find("wctp-Success")
            return [Answer("confirmation", success=True, code=success.get("successCode"),
                           text=(success.get("successText") or success.text or "").strip()[:200])]
        if operation.find("wctp-Failure") is not None:
            code, text = _failure(operation)
            return [Answer("confirmation", success=False, code=code, text=text)]
        raise WctpError("wctp-Confirmation without wctp-Success or wctp-Failure")
    if tag == "wctp-StatusInfo":
        return [_status_info(operation)]
    if tag == "wctp-MessageReply":
        return [_reply(operation)]
    if tag == "wctp-PollResponse":
        found = []
        for message in operation.findall("wctp-Message"):
            sequence_no = _message_id(message.get("sequenceNo"))
            for child in message:
                if child.tag == "wctp-StatusInfo":
                    found.append(_status_info(child, sequence_no))
                elif child.tag == "wctp-MessageReply":
                    found.append(_reply(child, sequence_no))
        return found
    raise WctpError(f"unsupported WCTP operation {tag}")


# --------------------------------------------------------------------------- the channel
class WctpChannel:
    """The badge channel: one SubmitRequest per attempt. `resend_safe`: the AC deduplicates on
    messageID (WCTP.md), so an attempt whose sender died mid-send is sent again with the same id
    rather than written off."""
    kind = "badge"
    resend_safe = True

    def __init__(self, ac: AlertCommunicator, *, now=None, session: requests.Session | None = None):
        self.ac = ac
        self._now = now
        self.session = session or requests.Session()

    def send_verification_code(self, address: str, code: str) -> bool:
        """Show the code that verifies a badge on it: a plain wctp-SubmitRequest, no response
        asked, its messageID not a ledger attempt's (prefixed `verify-`)."""
        from healthguard import clock
        body = verification_request(ac=self.ac, recipient=address, code=code, at=(self._now or clock.now)())
        return self._post(body).status == "sent"

    def send(self, attempt: Attempt, alarm: Alarm) -> SendResult:
        from healthguard import clock
        body = submit_request(ac=self.ac, attempt=attempt, alarm=alarm, at=(self._now or clock.now)())
        result = self._post(body)
        if result.status == "sent":
            result.provider_ref = f"wctp:{attempt.id}"
        return result

    def _post(self, body: bytes) -> SendResult:
        try:
            response = self.session.post(self.ac.url, data=body, timeout=TIMEOUT,
                                         headers={"Content-Type": "text/xml; charset=utf-8"})
        except requests.RequestException as exc:
            return SendResult("failed", retry=True,
                              reason=f"Alert Communicator unreachable: {type(exc).__name__}")
        if response.status_code >= 500:
            return SendResult("failed", retry=True,
                              reason=f"Alert Communicator answered HTTP {response.status_code}")
        try:
            answers = answers_in(response.content)
        except WctpError as exc:
            return SendResult("failed", reason=f"Alert Communicator's answer: {exc}"[:200], retry=True)
        answer = answers[0] if answers else None
        if answer is None or answer.kind != "confirmation":
            return SendResult("failed", reason="Alert Communicator answered no wctp-Confirmation", retry=True)
        if answer.success:
            return SendResult("sent")
        # A 5xx code: the AC is in trouble, try again. Anything else (an unknown recipient, a
        # refused sender) will not go through on a retry: fall through to the next step at once.
        transient = (answer.code or "").startswith("5")
        return SendResult("failed", reason=f"WCTP {answer.code}: {answer.text}"[:200], retry=transient)
