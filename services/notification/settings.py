"""The notification service's settings (healthguard.settings): its sockets, the ledger's sending
task, and the off-tab channels (Web Push, email, badges over WCTP, SMS and voice over Twilio).
A channel whose settings are empty is off; one half-configured stops the service at start."""
from pydantic import field_validator, model_validator

from healthguard.settings import Choice, ConfigError, Flag, Seconds, ServiceSettings, Whole

from .hub import DEFAULT_SOCKETS_PER_SESSION


class NotificationSettings(ServiceSettings):
    # simple-websocket pings this often and drops a socket whose pong did not come back.
    WS_PING_SECONDS: Seconds() = 25
    # How often each web process closes its sockets of ended sessions.
    WS_SESSION_CHECK_SECONDS: Seconds() = 2
    WS_SOCKETS_PER_SESSION: Whole(1, 1000) = DEFAULT_SOCKETS_PER_SESSION
    ONCALL_URL: str | None = None
    # Where acknowledging from a channel (push action, email link, badge, SMS) is carried out.
    INCIDENT_MANAGEMENT_URL: str | None = None

    # The ledger's sending task (send_due_attempts.py).
    SEND_INTERVAL_SECONDS: Seconds() = 1
    SEND_LEASE_SECONDS: Seconds() = 120
    SEND_RETRY_SECONDS: Seconds() = 10
    SEND_MAX_TRIES: Whole(1, 20) = 4
    SEND_CONCURRENCY: Whole(1, 64) = 8
    ACK_TOKEN_SECONDS: Whole(30, 86400, "of seconds") = 900
    NOTIFY_IDENTIFYING_DATA: Choice("true", "false") = "false"

    # Web Push (VAPID, RFC 8292): no Web Push without the key pair and the subject.
    VAPID_PRIVATE_KEY: str | None = None
    VAPID_PUBLIC_KEY: str | None = None
    VAPID_SUBJECT: str | None = None
    # Tests' push services listen on http://127.0.0.1.
    PUSH_ALLOW_LOCAL_HTTP: Flag = False
    # Email: smtp:// (STARTTLS) or smtps://; none without SMTP_URL.
    SMTP_URL: str | None = None
    SMTP_FROM: str | None = None

    # Badges (WCTP, services/notification/WCTP.md): none without WCTP_URL.
    WCTP_URL: str | None = None
    WCTP_SENDER_ID: str | None = None
    WCTP_SECURITY_CODE: str | None = None
    WCTP_ANSWERS: Choice("push", "poll") = "push"
    WCTP_RESPONSE_URL: str | None = None
    WCTP_INBOUND_TOKEN: str | None = None
    WCTP_POLL_SECONDS: Seconds() = 5
    # SMS and voice (Twilio): none without TWILIO_ACCOUNT_SID.
    TWILIO_ACCOUNT_SID: str | None = None
    TWILIO_AUTH_TOKEN: str | None = None
    TWILIO_FROM: str | None = None
    TWILIO_API_BASE: str = "https://api.twilio.com"
    TWILIO_WEBHOOK_BASE: str | None = None
    # Region of phone numbers typed without a country code (ISO 3166, e.g. GB).
    PHONE_DEFAULT_REGION: str | None = None

    @field_validator("VAPID_PRIVATE_KEY")
    @classmethod
    def _a_vapid_key(cls, value):
        if value:
            from py_vapid import Vapid
            try:
                Vapid.from_string(value)
            except ValueError:
                raise ConfigError("setting VAPID_PRIVATE_KEY is not a VAPID private key (the raw P-256 "
                                  "key, base64url; scripts/make_env.py generates a pair)") from None
        return value

    @model_validator(mode="after")
    def _channels_complete(self):
        if self.SMTP_URL and not self.SMTP_FROM:
            raise ConfigError("setting SMTP_FROM is required with SMTP_URL")
        if self.WCTP_URL and not self.WCTP_SENDER_ID:
            raise ConfigError("setting WCTP_SENDER_ID is required with WCTP_URL (our WCTP sender id)")
        if self.WCTP_URL and self.WCTP_ANSWERS == "push" and not self.WCTP_INBOUND_TOKEN:
            raise ConfigError("setting WCTP_INBOUND_TOKEN is required with WCTP_ANSWERS=push: the "
                              "Alert Communicator presents it when it posts to /api/v1/wctp")
        missing = [name for name in ("TWILIO_AUTH_TOKEN", "TWILIO_FROM") if not getattr(self, name)]
        if self.TWILIO_ACCOUNT_SID and missing:
            raise ConfigError(f"setting(s) {', '.join(missing)} required with TWILIO_ACCOUNT_SID")
        return self

    @property
    def identifying_data(self) -> bool:
        return self.NOTIFY_IDENTIFYING_DATA == "true"
