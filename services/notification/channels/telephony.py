"""SMS and voice through a telephony provider: a small adapter (send a message, place a call, check
a callback's signature) and its first implementation, Twilio's REST API (2010-04-01) and webhooks.

- SMS: the alarm's minimum-necessary text and a short code (the attempt id); the person replies
  `1` (acknowledge) or `2` (decline), optionally followed by the code when several are open.
  Replies reach POST /api/v1/twilio/sms; delivery reports POST /api/v1/twilio/status.
- Voice: a call whose TwiML reads severity, alarm type and room and gathers one digit (1
  acknowledge, 2 decline) into POST /api/v1/twilio/voice; busy, no answer, voicemail (answering
  machine detection) or hanging up without a key is a failure that falls through to the
  person's next step (POST /api/v1/twilio/status).

Every webhook is signed (X-Twilio-Signature: base64 HMAC-SHA1, keyed with the auth token, of the
URL Twilio called followed by each POST parameter's name and value, sorted by name): verified here
without the twilio package. The webhook URLs carry the attempt id in their query string, which
the signature covers.
"""
import base64
import dataclasses
import hashlib
import hmac
import logging
from urllib.parse import urlencode
from xml.sax.saxutils import escape, quoteattr

import phonenumbers
import requests

from .base import Alarm, Attempt, SendResult

log = logging.getLogger(__name__)

TIMEOUT = (3.0, 10.0)
SMS_MAX = 320  # two segments
ACK_DIGIT, REJECT_DIGIT = "1", "2"


def twilio_signature(auth_token: str, url: str, params) -> str:
    """X-Twilio-Signature of a request: the URL followed by every POST parameter's name and
    value, sorted by name (values of a repeated name in their sorted order), HMAC-SHA1 keyed with
    the auth token, base64."""
    pairs = params.items(multi=True) if hasattr(params, "items") and hasattr(params, "getlist") else (
        params.items() if hasattr(params, "items") else params)
    data = url + "".join(name + value for name, value in sorted(pairs))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_valid(auth_token: str, url: str, params, signature: str | None) -> bool:
    if not signature:
        return False
    return hmac.compare_digest(twilio_signature(auth_token, url, params).encode(), signature.encode())


@dataclasses.dataclass(frozen=True)
class TwilioSettings:
    """TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN (a secret, no default), TWILIO_FROM (our number),
    TWILIO_API_BASE (https://api.twilio.com; tests point it at their fake), TWILIO_WEBHOOK_BASE
    (the public origin Twilio calls our webhooks at; WEB_ORIGIN by default)."""
    account_sid: str
    auth_token: str
    from_number: str
    api_base: str
    webhook_base: str

    @classmethod
    def from_settings(cls, settings) -> "TwilioSettings | None":
        """Twilio of the notification settings (checked there), None without TWILIO_ACCOUNT_SID."""
        sid = (settings.TWILIO_ACCOUNT_SID or "").strip()
        if not sid:
            return None
        webhook_base = settings.TWILIO_WEBHOOK_BASE or settings.WEB_ORIGIN
        return cls(account_sid=sid, auth_token=settings.TWILIO_AUTH_TOKEN, from_number=settings.TWILIO_FROM,
                   api_base=settings.TWILIO_API_BASE.rstrip("/"), webhook_base=webhook_base.rstrip("/"))

    def webhook(self, path: str, **query) -> str:
        return f"{self.webhook_base}/api/v1/twilio/{path}" + (f"?{urlencode(query)}" if query else "")


class ProviderError(Exception):
    def __init__(self, message: str, *, transient: bool):
        super().__init__(message)
        self.transient = transient


class Twilio:
    """The provider adapter's Twilio implementation: send_message and place_call answer the
    provider's id of the message or call (SM..., CA...), or raise ProviderError."""

    def __init__(self, settings: TwilioSettings, *, session: requests.Session | None = None):
        self.settings = settings
        self.session = session or requests.Session()
        self.session.auth = (settings.account_sid, settings.auth_token)

    def _create(self, resource: str, form: list[tuple[str, str]]) -> str:
        url = f"{self.settings.api_base}/2010-04-01/Accounts/{self.settings.account_sid}/{resource}.json"
        try:
            response = self.session.post(url, data=form, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise ProviderError(f"Twilio unreachable: {type(exc).__name__}", transient=True) from exc
        if response.status_code in (200, 201):
            try:
                return str(response.json()["sid"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ProviderError("Twilio answered without a sid", transient=True) from exc
        try:
            detail = response.json().get("message", "")
        except (ValueError, AttributeError):
            detail = ""
        # 429 and 5xx pass; 4xx (a number Twilio will not reach, a blocked destination) stay.
        transient = response.status_code == 429 or response.status_code >= 500
        raise ProviderError(f"Twilio answered HTTP {response.status_code} {detail}"[:200],
                            transient=transient)

    def send_message(self, *, to: str, body: str, status_callback: str | None = None) -> str:
        form = [("To", to), ("From", self.settings.from_number), ("Body", body)]
        if status_callback:
            form.append(("StatusCallback", status_callback))
        return self._create("Messages", form)

    def place_call(self, *, to: str, twiml: str, status_callback: str, timeout_seconds: int = 30) -> str:
        form = [("To", to), ("From", self.settings.from_number), ("Twiml", twiml),
                ("StatusCallback", status_callback), ("StatusCallbackMethod", "POST"),
                ("MachineDetection", "Enable"), ("Timeout", str(timeout_seconds))]
        form += [("StatusCallbackEvent", event) for event in ("answered", "completed")]
        return self._create("Calls", form)


def e164(text: str, region: str | None = None) -> str | None:
    """A phone number in E.164 (+442079460018), or None when it is not a possible number.
    `region` (PHONE_DEFAULT_REGION, e.g. GB) reads numbers written without their country code."""
    try:
        number = phonenumbers.parse((text or "").strip()[:40], region)
    except phonenumbers.NumberParseException:
        return None
    # Possible (its length fits its country's plan), not "valid": the validity tables lag behind
    # new number ranges, and a number that cannot be reached fails its verification SMS anyway.
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def verification_text(code: str) -> str:
    return f"HealthGuard: your code to confirm this phone is {code}. It expires in 15 minutes."


# --------------------------------------------------------------------------- what is said
def sms_text(alarm: Alarm, attempt: Attempt) -> str:
    """The alarm SMS: minimum necessary (Alarm.summary), the reply keys and the short code."""
    return (f"HealthGuard {alarm.title}. Incident {alarm.incident_id}."
            + (f" Patient: {alarm.patient_label}." if alarm.patient_label else "")
            + f" Reply 1 to acknowledge, 2 to decline (code {attempt.id}).")[:SMS_MAX]


def spoken_alarm(alarm: Alarm) -> str:
    room = f"room {alarm.room}" if alarm.room else "an unknown room"
    said = f"HealthGuard alarm. {alarm.severity.lower()}. {alarm.alert_name}, {room}."
    if alarm.patient_label:
        said += f" Patient {alarm.patient_label}."
    return said


def gather_twiml(alarm: Alarm, *, action: str) -> str:
    """Read the alarm (twice) and gather one key; without a key the call says so and ends."""
    said = escape(spoken_alarm(alarm) + " Press 1 to acknowledge, 2 to decline.")
    return ("<Response>"
            f"<Gather numDigits=\"1\" timeout=\"8\" method=\"POST\" action={quoteattr(action)}>"
            f"<Say>{said}</Say><Pause length=\"1\"/><Say>{said}</Say></Gather>"
            "<Say>No key was pressed. Goodbye.</Say><Hangup/></Response>")


def say_twiml(text: str) -> str:
    return f"<Response><Say>{escape(text)}</Say><Hangup/></Response>"


def message_twiml(text: str | None) -> str:
    return f"<Response><Message>{escape(text)}</Message></Response>" if text else "<Response/>"


# --------------------------------------------------------------------------- the channels
def _failed(exc: ProviderError) -> SendResult:
    return SendResult("failed", reason=str(exc), retry=exc.transient)


class SmsChannel:
    """Rule steps of kind `sms` on a phone contact method. Not resend_safe: Twilio's Messages API
    takes no idempotency key, so a send whose worker died is written off, not sent twice."""
    kind = "sms"

    def __init__(self, provider: Twilio):
        self.provider = provider

    def send_verification_code(self, address: str, code: str) -> bool:
        """Text the code that verifies a phone (POST /api/v1/contact-methods/<id>/verify)."""
        try:
            self.provider.send_message(to=address, body=verification_text(code))
        except ProviderError as exc:
            log.warning("could not text a verification code", extra={"error": str(exc)})
            return False
        return True

    def send(self, attempt: Attempt, alarm: Alarm) -> SendResult:
        try:
            sid = self.provider.send_message(
                to=attempt.address, body=sms_text(alarm, attempt),
                status_callback=self.provider.settings.webhook("status", attempt=attempt.id))
        except ProviderError as exc:
            return _failed(exc)
        return SendResult("sent", provider_ref=sid)


class VoiceChannel:
    """Rule steps of kind `voice` on a phone contact method: one call. Not resend_safe (a second
    call is a second ring)."""
    kind = "voice"

    def __init__(self, provider: Twilio):
        self.provider = provider

    def send(self, attempt: Attempt, alarm: Alarm) -> SendResult:
        settings = self.provider.settings
        try:
            sid = self.provider.place_call(
                to=attempt.address,
                twiml=gather_twiml(alarm, action=settings.webhook("voice", attempt=attempt.id)),
                status_callback=settings.webhook("status", attempt=attempt.id))
        except ProviderError as exc:
            return _failed(exc)
        return SendResult("sent", provider_ref=sid)
