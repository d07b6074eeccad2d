"""Web Push (RFC 8030), the payload encrypted for the subscription (RFC 8291, aes128gcm) and the
request signed by our VAPID key (RFC 8292), with pywebpush.

The payload is the minimum necessary (message_text.push_payload): severity, room, alarm type,
incident id and the single-use acknowledge token; the patient only when NOTIFY_IDENTIFYING_DATA
allows it. The push service stores it encrypted: it can read neither.

Idempotency: the attempt id travels as the `Topic` header (RFC 8030 section 5.4: a message with
the topic of one still queued at the push service replaces it) and in the payload, where the
service worker uses it as the notification's tag (a second copy replaces the first on the
screen). Neither stops a second copy from being DELIVERED once the first went through, so push is
not `resend_safe`: an attempt left 'sending' by a dead worker is not pushed again
(send_due_attempts.py).
"""
import json
import logging
import threading
import time
from urllib.parse import urlsplit

import requests
from py_vapid import Vapid
from pywebpush import WebPusher

from ..channels.base import Alarm, Attempt, SendResult
from ..message_text import push_payload

log = logging.getLogger(__name__)

# How long the push service keeps a message for a phone that is offline. An alarm older than
# this is stale: escalation has moved it on by then.
TTL_SECONDS = 600
TIMEOUT = (3.0, 10.0)
VAPID_HOURS = 12  # a VAPID JWT's lifetime (RFC 8292: at most 24 hours)


class WebPushChannel:
    kind = "push"
    resend_safe = False

    def __init__(self, *, vapid_private_key: str, vapid_subject: str):
        self.vapid = Vapid.from_string(vapid_private_key)
        self.subject = vapid_subject
        self._local = threading.local()  # a requests.Session per sending thread
        self._signed: dict[str, tuple[dict, float]] = {}  # push service origin -> (headers, until)

    def _authorization(self, audience: str) -> dict:
        """The VAPID header for a push service, signed once an hour (valid for 12): one ECDSA
        signature per push service rather than per message."""
        headers, until = self._signed.get(audience, (None, 0.0))
        if headers is None or time.monotonic() > until:
            claims = {"sub": self.subject, "aud": audience, "exp": int(time.time()) + VAPID_HOURS * 3600}
            headers = self.vapid.sign(claims)
            self._signed[audience] = (headers, time.monotonic() + 3600)
        return headers

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def send(self, attempt: Attempt, alarm: Alarm) -> SendResult:
        secret = attempt.secret or {}
        subscription = {"endpoint": attempt.address, "keys": {"p256dh": secret.get("p256dh", ""),
                                                             "auth": secret.get("auth", "")}}
        endpoint = urlsplit(attempt.address)
        headers = {**self._authorization(f"{endpoint.scheme}://{endpoint.netloc}"),
                   "Topic": f"attempt-{attempt.id}",
                   "Urgency": "high" if alarm.severity in ("CRITICAL", "HIGH") else "normal"}
        payload = json.dumps(push_payload(alarm, attempt), separators=(",", ":"))
        try:
            response = WebPusher(subscription, requests_session=self._session()).send(
                payload, headers, ttl=TTL_SECONDS, content_encoding="aes128gcm", timeout=TIMEOUT)
        except requests.RequestException as exc:
            return SendResult("failed", reason=f"push service unreachable: {type(exc).__name__}", retry=True)
        except (ValueError, TypeError) as exc:  # keys the browser gave are not a P-256 key/auth secret
            return SendResult("failed", reason=f"subscription keys unusable: {exc}"[:200])
        status = response.status_code
        ref = response.headers.get("Location")
        if status in (200, 201, 202):
            return SendResult("sent", provider_ref=ref)
        if status in (404, 410):
            return SendResult("failed", reason=f"push subscription gone ({status})", gone=True)
        if status == 429 or status >= 500:
            return SendResult("failed", reason=f"push service answered {status}", retry=True)
        return SendResult("failed", reason=f"push service refused it ({status})")


def register_from_settings(settings, register) -> bool:
    """Register Web Push when the VAPID key pair is configured (compose requires it; the
    notification settings checked the key)."""
    if not settings.VAPID_PRIVATE_KEY or not settings.VAPID_PUBLIC_KEY or not settings.VAPID_SUBJECT:
        log.warning("VAPID_PRIVATE_KEY, VAPID_PUBLIC_KEY or VAPID_SUBJECT not set: no Web Push")
        return False
    register(WebPushChannel(vapid_private_key=settings.VAPID_PRIVATE_KEY,
                            vapid_subject=settings.VAPID_SUBJECT))
    return True
