"""The third-party edges of issue 23 as real HTTP servers in the test process, on 127.0.0.1 random
ports: a WCTP 1.3 Alert Communicator and a Twilio-compatible API. They answer, call back (signed)
and reply as the real ones do; everything of ours they talk to runs for real. Each keeps what it
received, so a test can read exactly what left us."""

import base64
import http.server
import re
import threading
import urllib.parse
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as ET
import requests

from notification.channels.telephony import twilio_signature

# --------------------------------------------------------------------------- WCTP 1.3 grammar
# The content models and attributes of the WCTP 1.3 DTD (wctp-dtd-v1r3, http://dtd.wctp.org/
# wctp-dtd-v1r3.dtd; a copy is published in usnistgov/hit-wctp-validation,
# src/main/resources/wctp-dtd-v1r3.dtd) for the elements an Alarm Manager sends, written out here
# as regular expressions over the children's names. The AC below refuses what breaks them.
TF = ("true", "false")
REQUIRED = object()
GRAMMAR = {
    "wctp-Operation": (
        r"(wctp-SubmitRequest|wctp-PollForMessages|wctp-Confirmation|wctp-StatusInfo"
        r"|wctp-MessageReply|wctp-PollResponse)",
        {"wctpVersion": REQUIRED, "wctpToken": None},
    ),
    "wctp-SubmitRequest": (r"wctp-SubmitHeader wctp-Payload", {}),
    "wctp-SubmitHeader": (r"wctp-Originator wctp-MessageControl wctp-Recipient", {"submitTimestamp": None}),
    "wctp-Originator": ("", {"senderID": REQUIRED, "securityCode": None, "miscInfo": None}),
    "wctp-MessageControl": (
        "",
        {
            "messageID": REQUIRED,
            "transactionID": None,
            "sendResponsesToID": None,
            "allowResponse": TF,
            "notifyWhenQueued": TF,
            "notifyWhenDelivered": TF,
            "notifyWhenRead": TF,
            "deliveryPriority": ("HIGH", "NORMAL", "LOW"),
            "deliveryAfter": None,
            "deliveryBefore": None,
            "preformatted": TF,
            "allowTruncation": TF,
        },
    ),
    "wctp-Recipient": ("", {"recipientID": REQUIRED, "authorizationCode": None}),
    "wctp-Payload": (r"(wctp-MCR|wctp-Alphanumeric|wctp-TransparentData)", {}),
    "wctp-MCR": (r"wctp-MessageText( (wctp-Choice|wctp-ChoicePair))+", {}),
    "wctp-MessageText": (None, {}),
    "wctp-Choice": (None, {}),
    "wctp-Alphanumeric": (None, {}),
    "wctp-PollForMessages": (
        r"(wctp-MessageReceived( wctp-MessageReceived)*)?",
        {"pollerID": REQUIRED, "securityCode": None, "maxMessagesInBatch": None},
    ),
    "wctp-MessageReceived": (r"(wctp-Failure|wctp-Success)", {"sequenceNo": REQUIRED}),
    "wctp-Success": (None, {"successCode": REQUIRED, "successText": None}),
    "wctp-Failure": (None, {"errorCode": REQUIRED, "errorText": None}),
}


def grammar_errors(element: Element) -> list[str]:
    """What in `element` (and below) breaks the WCTP 1.3 DTD's rules above."""
    errors = []
    rule = GRAMMAR.get(element.tag)
    if rule is None:
        return [f"{element.tag}: not an element an Alarm Manager sends"]
    model, attributes = rule
    for name, allowed in attributes.items():
        if allowed is REQUIRED and name not in element.attrib:
            errors.append(f"{element.tag}: missing required attribute {name}")
        if isinstance(allowed, tuple) and name in element.attrib and element.attrib[name] not in allowed:
            errors.append(f"{element.tag}@{name}={element.attrib[name]!r} not one of {allowed}")
    for name in element.attrib:
        if name not in attributes:
            errors.append(f"{element.tag}: undeclared attribute {name}")
    children = " ".join(child.tag for child in element)
    if model is None:  # (#PCDATA)
        if len(element):
            errors.append(f"{element.tag}: text only, has children")
    elif model == "":  # EMPTY
        if len(element) or (element.text or "").strip():
            errors.append(f"{element.tag}: must be empty")
    elif not re.fullmatch(model, children):
        errors.append(f"{element.tag}: children {children!r} do not match {model}")
    for child in element:
        errors += grammar_errors(child)
    return errors


def _operation(inner: str) -> bytes:
    return (
        '<?xml version="1.0"?><wctp-Operation wctpVersion="wctp-dtd-v1r3">' + inner + "</wctp-Operation>"
    ).encode()


def _serve(handler_class) -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self, status: int, body: bytes, content_type: str):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# --------------------------------------------------------------------------- the AC
class AlertCommunicator:
    """A WCTP 1.3 Alert Communicator: takes SubmitRequests (refusing what breaks the grammar or
    names an unknown badge; a second request with a messageID it has is the same message, as
    WCTP.md asks of a real AC), answers wctp-Confirmation, and reports to the sendResponsesToID
    URL as a real AC pushes: StatusInfo DELIVERED / READ and the MessageReply of the key the
    person pressed, presenting the inbound token as HTTP Basic."""

    def __init__(self, *, badges=("badge-N02",), inbound_token: str = ""):
        self.badges = set(badges)
        self.inbound_token = inbound_token
        self.received: list[bytes] = []  # every body posted to us, in order
        self.messages: dict[str, dict] = {}  # messageID -> what it said and where answers go
        self.submissions: dict[str, int] = {}  # messageID -> how many SubmitRequests carried it
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        # hold=True: the next alarm is taken but left unanswered (its sender's port in `held`)
        # until `release` is set, so a test can kill the worker that sent it mid-send.
        self.hold = False
        self.held: list[dict] = []
        self.release = threading.Event()
        ac = self

        class Handler(_Quiet):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, answer = ac._take(body)  # the badge has it ...
                if ac.hold and b"wctp-MCR" in body:  # ... but its sender never hears so
                    with ac.lock:
                        ac.hold = False
                        ac.held.append({"client_port": self.client_address[1], "body": body})
                        ac.arrived.notify_all()
                    ac.release.wait(60)
                    return
                self._answer(status, answer, "text/xml")

        self.server, self.url = _serve(Handler)

    def _take(self, body: bytes) -> tuple[int, bytes]:
        with self.lock:
            self.received.append(body)
            self.arrived.notify_all()
        try:
            root = ET.fromstring(body)  # our own fake parsing our own service's output
        except ET.ParseError:
            return 200, _operation(
                '<wctp-Confirmation><wctp-Failure errorCode="301" errorText="not XML"/></wctp-Confirmation>'
            )
        errors = grammar_errors(root)
        if errors:
            text = "; ".join(errors)[:200].replace('"', "'")
            return 200, _operation(
                f'<wctp-Confirmation><wctp-Failure errorCode="302" errorText="{text}"/></wctp-Confirmation>'
            )
        request = root[0]
        if request.tag != "wctp-SubmitRequest":
            return 200, _operation("<wctp-PollResponse><wctp-NoMessages/></wctp-PollResponse>")
        control = request.find("wctp-SubmitHeader/wctp-MessageControl")
        recipient = request.find("wctp-SubmitHeader/wctp-Recipient").get("recipientID")
        if recipient not in self.badges:
            return 200, _operation(
                '<wctp-Confirmation><wctp-Failure errorCode="403" '
                'errorText="unknown recipientID"/></wctp-Confirmation>'
            )
        message_id = control.get("messageID")
        with self.lock:
            self.submissions[message_id] = self.submissions.get(message_id, 0) + 1
            self.messages.setdefault(
                message_id,
                {
                    "recipient": recipient,
                    "reply_to": control.get("sendResponsesToID"),
                    "text": request.findtext("wctp-Payload/wctp-MCR/wctp-MessageText"),
                    "choices": [c.text for c in request.findall("wctp-Payload/wctp-MCR/wctp-Choice")],
                },
            )
            self.arrived.notify_all()
        return 200, _operation(
            '<wctp-Confirmation><wctp-Success successCode="200" successText="Accepted"/></wctp-Confirmation>'
        )

    def wait_for_message(self, timeout: float = 20, count: int = 1) -> list[str]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(f"the AC got {len(self.messages)} of {count} messages")
            return list(self.messages)

    # What the badge does, pushed to us as a real AC does.
    def _push(self, message_id: str, inner: str) -> requests.Response:
        reply_to = self.messages[message_id]["reply_to"]
        auth = "Basic " + base64.b64encode(f"ac:{self.inbound_token}".encode()).decode()
        return requests.post(
            reply_to,
            data=_operation(inner),
            timeout=10,
            headers={"Content-Type": "text/xml", "Authorization": auth},
        )

    def _header(self, message_id: str) -> str:
        recipient = self.messages[message_id]["recipient"]
        return (
            f'<wctp-ResponseHeader responseToMessageID="{message_id}" '
            'responseTimestamp="2026-03-11T10:00:05">'
            f'<wctp-Originator senderID="{recipient}"/><wctp-MessageControl messageID="ac-{message_id}"/>'
            f'<wctp-Recipient recipientID="healthguard"/></wctp-ResponseHeader>'
        )

    def report(self, message_id: str, notification: str) -> requests.Response:
        return self._push(
            message_id,
            f"<wctp-StatusInfo>{self._header(message_id)}"
            f'<wctp-Notification type="{notification}"/></wctp-StatusInfo>',
        )

    def press(self, message_id: str, choice: str) -> requests.Response:
        return self._push(
            message_id,
            f'<wctp-MessageReply MCRMessageReply="true">{self._header(message_id)}'
            f"<wctp-Payload><wctp-Alphanumeric>{choice}</wctp-Alphanumeric>"
            f"</wctp-Payload></wctp-MessageReply>",
        )

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- Twilio
class TwilioApi:
    """Twilio's REST API (2010-04-01 Messages and Calls, HTTP Basic with the account sid and auth
    token) and its webhooks, signed with X-Twilio-Signature as Twilio signs them. A message's
    status callbacks and a call's Gather, status and answering-machine result are posted when
    the test says what the phone does (`deliver`, `reply_sms`, `answer_call`, `ring_out`)."""

    def __init__(self, *, account_sid: str, auth_token: str, our_number: str):
        self.account_sid, self.auth_token, self.our_number = account_sid, auth_token, our_number
        self.messages: list[dict] = []
        self.calls: list[dict] = []
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        api = self

        class Handler(_Quiet):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
                expected = (
                    "Basic " + base64.b64encode(f"{api.account_sid}:{api.auth_token}".encode()).decode()
                )
                if self.headers.get("Authorization") != expected:
                    return self._answer(
                        401, b'{"code": 20003, "message": "Authenticate"}', "application/json"
                    )
                match = re.fullmatch(
                    rf"/2010-04-01/Accounts/{api.account_sid}/(Messages|Calls)\.json", self.path
                )
                if not match:
                    return self._answer(404, b'{"message": "not found"}', "application/json")
                status, body = api._create(match.group(1), form)
                self._answer(status, body.encode(), "application/json")

        self.server, self.url = _serve(Handler)

    def _create(self, resource: str, form: dict) -> tuple[int, str]:
        import json

        one = {name: values[0] for name, values in form.items()}
        with self.lock:
            if resource == "Messages":
                sid = f"SM{len(self.messages) + 1:032d}"
                self.messages.append({"sid": sid, "form": form, **one})
            else:
                sid = f"CA{len(self.calls) + 1:032d}"
                self.calls.append({"sid": sid, "form": form, **one})
            self.arrived.notify_all()
        return 201, json.dumps({"sid": sid, "status": "queued", "to": one.get("To")})

    def wait_for(self, kind: str, count: int = 1, timeout: float = 20) -> list[dict]:
        items = self.messages if kind == "messages" else self.calls
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(items) >= count, timeout):
                raise TimeoutError(f"Twilio got {len(items)} of {count} {kind}")
            return list(items)

    def signed_post(self, url: str, params: dict, *, signature: str | None = None) -> requests.Response:
        signature = signature if signature is not None else twilio_signature(self.auth_token, url, params)
        return requests.post(url, data=params, timeout=10, headers={"X-Twilio-Signature": signature})

    def status(self, message: dict, status: str) -> requests.Response:
        params = {
            "MessageSid": message["sid"],
            "MessageStatus": status,
            "AccountSid": self.account_sid,
            "To": message["To"],
            "From": message["From"],
        }
        return self.signed_post(message["StatusCallback"], params)

    def reply_sms(self, from_number: str, body: str, webhook: str) -> requests.Response:
        params = {
            "MessageSid": f"SMin{abs(hash((from_number, body, len(self.messages)))):028d}",
            "AccountSid": self.account_sid,
            "From": from_number,
            "To": self.our_number,
            "Body": body,
            "NumMedia": "0",
        }
        return self.signed_post(webhook, params)

    def _call_params(self, call: dict, **more) -> dict:
        return {
            "CallSid": call["sid"],
            "AccountSid": self.account_sid,
            "From": self.our_number,
            "To": call["To"],
            "Direction": "outbound-api",
            **more,
        }

    def answer_call(self, call: dict, digits: str) -> requests.Response:
        """A person answers, listens, presses `digits`: the answered status, then the Gather's
        action (whose TwiML answer is returned), then completed, as Twilio posts them."""
        self.signed_post(
            call["StatusCallback"], self._call_params(call, CallStatus="in-progress", AnsweredBy="human")
        )
        action = re.search(r'action="([^"]+)"', call["Twiml"]).group(1).replace("&amp;", "&")
        said = self.signed_post(action, self._call_params(call, CallStatus="in-progress", Digits=digits))
        self.signed_post(
            call["StatusCallback"], self._call_params(call, CallStatus="completed", CallDuration="14")
        )
        return said

    def ring_out(self, call: dict, status: str = "no-answer") -> requests.Response:
        return self.signed_post(call["StatusCallback"], self._call_params(call, CallStatus=status))

    def close(self):
        self.server.shutdown()
        self.server.server_close()
