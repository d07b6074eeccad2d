"""The channel interface every off-tab channel implements, and the registry the worker fills.

The contract is /work/notes/REACH-CONTRACT.md ("Python interfaces"): a channel gets one ledger
attempt and the alarm's minimum-necessary text, sends it once, and answers a SendResult. It never
touches the ledger itself and never retries by itself: the sending task records the result,
backs off (retry=True) or falls through to the person's next rule step at once (failed,
retry=False). The attempt id is the idempotency key: a channel passes it to its provider where
the provider deduplicates on it (Web Push Topic, email Message-ID, WCTP MessageID).
"""
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

SEND_STATUSES = ("sent", "delivered", "failed")


@dataclass(frozen=True)
class Alarm:
    """What a channel may say about the incident: the minimum necessary (notification/
    message_text.py builds it once for every channel). `patient_label` is None unless the
    setting NOTIFY_IDENTIFYING_DATA allows identifying data to leave the hospital network."""
    incident_id: int
    severity: str            # CRITICAL | HIGH | MEDIUM | LOW
    alert_name: str          # the alarm type, e.g. "SpO2 low"
    room: str | None
    ward: str | None
    patient_label: str | None
    title: str               # e.g. "CRITICAL: SpO2 low, room 12"
    summary: str             # one or two lines, no patient name unless allowed


@dataclass(frozen=True)
class Attempt:
    """One ledger row being sent (delivery_attempts). `id` is the idempotency key and, for WCTP,
    the MessageID. `secret` is the contact method's secret (push keys) or None. `ack_token` is
    the short-lived single-use token for POST /api/v1/channel-ack bound to this attempt; a
    channel puts it in the payload or link it sends (never a session token)."""
    id: int
    incident_id: int
    employee_id: str
    channel: str             # the contact method's kind: email | push | phone | badge | sms | voice
    address: str
    secret: dict | None
    rule_step: int
    ack_token: str
    contact_method_id: int | None = None


@dataclass
class SendResult:
    """How one send went.
    - status 'sent' (left us, provider accepted) or 'delivered' (the provider confirmed delivery);
    - status 'failed' with retry=True: transient (timeout, 5xx, SMTP down): the task backs off and
      tries the same attempt again, up to its limit, then falls through;
    - status 'failed' with retry=False: permanent (404/410 subscription gone, address rejected):
      fall through to the person's next step at once. `gone=True` also disables the contact
      method (a push subscription the push service no longer knows is deleted)."""
    status: str
    provider_ref: str | None = None
    reason: str | None = None
    retry: bool = False
    gone: bool = False

    def __post_init__(self):
        if self.status not in SEND_STATUSES:
            raise ValueError(f"SendResult.status must be one of {SEND_STATUSES}, got {self.status!r}")


@runtime_checkable
class Channel(Protocol):
    """A way to reach a person off the open tab. `kind` is the contact method kind it serves.

    Optional attribute `resend_safe` (default False): True when the provider deduplicates on the
    attempt id (WCTP MessageID), so an attempt whose sender died mid-send (still 'sending' after
    SEND_LEASE_SECONDS) may be sent again with the same id. Without it such an attempt is NOT
    resent: it goes to dead_letter ("outcome unknown") and the person's next step is brought
    forward, because a second copy on the same channel is worse than the next channel early."""
    kind: str

    def send(self, attempt: Attempt, alarm: Alarm) -> SendResult:
        """Send the attempt once. Raise nothing for a provider's answer: return a SendResult
        (an exception is treated as a transient failure, retry=True, reason its text)."""
        ...


@dataclass
class _Registry:
    channels: dict[str, Any] = field(default_factory=dict)


_registry = _Registry()


def register(channel: Channel) -> Channel:
    """Make `channel` the one serving its kind (the worker registers channels from its settings
    at start; a test registers its own). Replaces an earlier one of that kind."""
    if not isinstance(getattr(channel, "kind", None), str) or not callable(getattr(channel, "send", None)):
        raise TypeError(f"{channel!r} is not a Channel (needs a str `kind` and `send`)")
    _registry.channels[channel.kind] = channel
    return channel


def for_kind(kind: str) -> Channel:
    """The channel serving contact methods of `kind`; LookupError when none is configured
    (the sending task then fails the attempt with reason 'channel not configured' and falls
    through, never silently)."""
    try:
        return _registry.channels[kind]
    except KeyError:
        raise LookupError(f"no channel configured for {kind!r}") from None


def kinds() -> tuple[str, ...]:
    """The kinds a channel is configured for."""
    return tuple(_registry.channels)


def registered() -> dict[str, Channel]:
    """A copy of the registry (for /health and tests)."""
    return dict(_registry.channels)


def unregister(kind: str) -> None:
    """Forget the channel of `kind` (tests)."""
    _registry.channels.pop(kind, None)
