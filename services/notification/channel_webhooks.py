"""The routes the badge system and the telephony provider call: POST /api/v1/wctp (the Alert
Communicator's WCTP posts), POST /api/v1/twilio/sms (replies), /api/v1/twilio/voice (the key
pressed during our call), /api/v1/twilio/status (delivery and call reports).

None of them carries a session: each is authenticated by what the provider proves. Twilio signs
every request (X-Twilio-Signature over the URL and parameters, keyed with our auth token); the AC
presents WCTP_INBOUND_TOKEN (HTTP Basic password, or the wctp-Operation's wctpToken). No
credential: 401. A wrong one, or a request already received (a replay): 403, and nothing changes.
"""
import base64
import binascii
import hmac
import logging

from flask import Blueprint, Response, current_app, request

from healthguard import clock
from healthguard.api import PUBLIC, responses
from healthguard.auth import public
from healthguard.errors import ApiError
from healthguard.web import platform

from . import channel_ack, channel_answers
from .channels import telephony, wctp
from .schemas import api

log = logging.getLogger(__name__)

webhooks = Blueprint("channel_webhooks", __name__, url_prefix="/api/v1")

XML = "text/xml; charset=utf-8"
WCTP_ERRORS = responses({200: None}, (400, 401, 403, 413), public_route=True)
TWILIO_ERRORS = responses({200: None}, (400, 401, 403, 413), public_route=True)
STATUS_ERRORS = responses({204: None}, (400, 401, 403, 413), public_route=True)


def install(app, register) -> list:
    """Register the badge, SMS and voice channels the settings configure (`register`: the
    channel registry's) and answer the background tasks they need (polling the AC)."""
    tasks = []
    settings = app.extensions["healthguard"].settings
    ac = wctp.AlertCommunicator.from_settings(settings)
    if ac is not None:
        register(wctp.WctpChannel(ac))
        if ac.answers == "poll":
            from .poll_alert_communicator import PollAlertCommunicator
            tasks.append(PollAlertCommunicator(
                db=app.extensions["healthguard"].db, ac=ac,
                interval=settings.WCTP_POLL_SECONDS, on_action=carry_out_in(app)))
    twilio = telephony.TwilioSettings.from_settings(settings)
    app.extensions["twilio_settings"] = twilio
    if twilio is not None:
        provider = telephony.Twilio(twilio)
        register(telephony.SmsChannel(provider))
        register(telephony.VoiceChannel(provider))
    return tasks


def carry_out_in(app):
    """carry_out() for a background task: inside the app's context."""
    def run(action):
        with app.app_context():
            return carry_out(action)
    return run


def carry_out(action: channel_answers.Action | None) -> str | None:
    """Acknowledge or decline at incident management, after the commit; what to tell the person
    (None when all went well or nobody is listening)."""
    if action is None:
        return None
    settings = platform().settings
    arguments = {"db": platform().db, "incidents_url": settings.INCIDENT_MANAGEMENT_URL or "",
                 "service_token": settings.SERVICE_TOKEN, "attempt_id": action.attempt_id,
                 "channel": action.channel}
    try:
        if action.verb == "acknowledge":
            incident = channel_ack.acknowledge_from_channel(**arguments)
            return f"Acknowledged incident {incident.get('incident_id', '')}."
        incident = channel_ack.reject_from_channel(**arguments)
        return f"Declined incident {incident.get('incident_id', '')}: it goes to the next person."
    except channel_ack.IncidentManagementError as exc:
        log.warning("an answer from a channel was refused", extra={
            "attempt_id": action.attempt_id, "channel": action.channel, "verb": action.verb,
            "status": exc.status, "error": str(exc)[:200]})
        if action.verb == "reject" and exc.status == 409:
            return "Nobody else is available to take it: please acknowledge it in HealthGuard."
        return "That could not be done: open HealthGuard."


# --------------------------------------------------------------------------- WCTP
def _wctp_token_presented(body: bytes) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        try:
            return base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return ""
    try:
        root, _ = wctp.parse(body)
    except wctp.WctpError:
        return None
    return root.get("wctpToken")


@webhooks.post("/wctp")
@public  # authenticated by WCTP_INBOUND_TOKEN (see the module docstring)
@api.validate(security=PUBLIC, resp=WCTP_ERRORS)
def wctp_operation():
    """The Alert Communicator's WCTP 1.3 posts (PCD-07): wctp-StatusInfo, wctp-MessageReply

    Body: a wctp-Operation (text/xml), see services/notification/WCTP.md. Answered with a
    wctp-Confirmation (text/xml). 401 without the AC's token (HTTP Basic password or wctpToken),
    403 with a wrong one, 400 for XML that is not a WCTP operation we take."""
    expected = platform().settings.WCTP_INBOUND_TOKEN or ""
    body = request.get_data(cache=True)
    presented = _wctp_token_presented(body)
    if not presented:
        raise ApiError(401, "present the Alert Communicator's token (HTTP Basic password or wctpToken)")
    if not expected or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise ApiError(403, "the Alert Communicator's token is wrong")
    try:
        answers = wctp.answers_in(body)
    except wctp.WctpError as exc:
        raise ApiError(400, f"not a WCTP operation we accept: {exc}") from exc
    now = clock.now()
    actions = []
    with platform().db.transaction() as cur:
        # The same post again (the AC retrying after losing our answer): confirmed, not applied.
        seen = not channel_answers.first_sighting(cur, source="wctp", url=request.path,
                                                  params={"body": body.decode("utf-8", "replace")}, at=now)
        for answer in [] if seen else answers:
            if answer.kind in ("status", "reply"):
                actions.append(channel_answers.badge_answer(cur, answer=answer, at=now))
    for action in actions:
        carry_out(action)
    return Response(wctp.confirmation(success=True, code=200, text="Accepted"), 200, content_type=XML)


# --------------------------------------------------------------------------- Twilio
def _signed_params():
    """The request's form, once its signature is checked against the URL Twilio called (our
    public TWILIO_WEBHOOK_BASE and this path and query)."""
    settings = current_app.extensions.get("twilio_settings")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        raise ApiError(401, "X-Twilio-Signature is missing")
    if settings is None:
        raise ApiError(403, "no Twilio account is configured here")
    url = settings.webhook_base + request.path + (
        "?" + request.query_string.decode("latin-1") if request.query_string else "")
    params = request.form
    if not telephony.signature_valid(settings.auth_token, url, params, signature):
        raise ApiError(403, "X-Twilio-Signature does not match")
    return url, params


def _attempt_id() -> int:
    raw = request.args.get("attempt", "")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise ApiError(400, "attempt must be a ledger attempt id", field="attempt")
    return int(raw)


def _first_sighting(cur, url, params, now):
    if not channel_answers.first_sighting(cur, source="twilio", url=url, params=params, at=now):
        raise ApiError(403, "this callback was received before (a replay)")


@webhooks.post("/twilio/sms")
@public  # authenticated by X-Twilio-Signature
@api.validate(security=PUBLIC, resp=TWILIO_ERRORS)
def twilio_sms():
    """An SMS sent to our number (Twilio's incoming message webhook): 1 acknowledges, 2 declines

    Form fields as Twilio posts them (From, Body, MessageSid...). Answered with TwiML (text/xml).
    401 without X-Twilio-Signature, 403 with a wrong one or a replayed request. Unknown numbers
    are ignored (logged)."""
    url, params = _signed_params()
    now = clock.now()
    number = telephony.e164(params.get("From", ""))
    with platform().db.transaction() as cur:
        _first_sighting(cur, url, params, now)
        action, reply = None, None
        if number:
            action, reply = channel_answers.sms_reply(cur, from_number=number, at=now,
                                                      body=params.get("Body", ""))
    reply = carry_out(action) or reply
    return Response(telephony.message_twiml(reply), 200, content_type=XML)


@webhooks.post("/twilio/voice")
@public  # authenticated by X-Twilio-Signature
@api.validate(security=PUBLIC, resp=TWILIO_ERRORS)
def twilio_voice():
    """The key pressed during an alarm call (the Gather's action, ?attempt=<id>)

    1 acknowledges, 2 declines; answered with TwiML that says what was done. 401 without
    X-Twilio-Signature, 403 with a wrong one or a replayed request."""
    url, params = _signed_params()
    attempt_id = _attempt_id()
    now = clock.now()
    digits = params.get("Digits", "")
    with platform().db.transaction() as cur:
        _first_sighting(cur, url, params, now)
        action = channel_answers.voice_key(cur, attempt_id=attempt_id, digits=digits, at=now)
    said = carry_out(action)
    if action is None:
        said = "That key does nothing. Open HealthGuard to answer the alarm."
    return Response(telephony.say_twiml(said or "Done."), 200, content_type=XML)


@webhooks.post("/twilio/status")
@public  # authenticated by X-Twilio-Signature
@api.validate(security=PUBLIC, resp=STATUS_ERRORS)
def twilio_status():
    """A message's or a call's status report (?attempt=<id>): delivered, read, failed, busy,
    no answer, voicemail... onto the ledger; a failure falls through to the person's next step

    401 without X-Twilio-Signature, 403 with a wrong one or a replayed request."""
    url, params = _signed_params()
    attempt_id = _attempt_id()
    now = clock.now()
    with platform().db.transaction() as cur:
        _first_sighting(cur, url, params, now)
        channel_answers.provider_status(cur, attempt_id=attempt_id, params=params, at=now)
    return Response("", 204)
