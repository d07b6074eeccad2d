"""Email over SMTP (SMTP_URL): a plain-text and an HTML part, the minimum-necessary text
(message_text.email_text) and a one-time acknowledge link to the web app (WEB_ORIGIN/ack/<token>).

SMTP_URL: smtp://[user:password@]host[:587] upgrades with STARTTLS when the server offers it and
refuses to send a password over a connection it could not upgrade; smtps://[user:password@]
host[:465] is TLS from the first byte. SMTP_FROM is the sender address.

Idempotency: the Message-ID is made from the attempt id, so a copy that did reach a mailbox twice
is one message to threading mail clients and to the relay's deduplication (where it has one). It
does not stop a relay from delivering twice, so email is not `resend_safe`: an attempt left
'sending' by a dead worker is not sent again (send_due_attempts.py).
"""
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import unquote, urlsplit

from healthguard.settings import ConfigError

from ..channels.base import Alarm, Attempt, SendResult
from ..message_text import email_text

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10


class SmtpChannel:
    kind = "email"
    resend_safe = False

    def __init__(self, *, smtp_url: str, sender: str, web_origin: str):
        parts = urlsplit(smtp_url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError("setting SMTP_URL must be smtp://[user:password@]host[:port] (STARTTLS) "
                              "or smtps://[user:password@]host[:port] (TLS)")
        if "@" not in sender:
            raise ConfigError("setting SMTP_FROM must be an email address")
        self.implicit_tls = parts.scheme == "smtps"
        self.host = parts.hostname
        self.port = parts.port or (465 if self.implicit_tls else 587)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password or "") if parts.username else None
        self.sender = sender
        self.domain = sender.rsplit("@", 1)[1]
        self.web_origin = web_origin.rstrip("/")

    def message(self, attempt: Attempt, alarm: Alarm) -> EmailMessage:
        subject, text, html = email_text(alarm, ack_url=f"{self.web_origin}/ack/{attempt.ack_token}")
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = attempt.address
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = f"<attempt-{attempt.id}@{self.domain}>"
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        return message

    def send(self, attempt: Attempt, alarm: Alarm) -> SendResult:
        message = self.message(attempt, alarm)
        try:
            with self._connect() as smtp:
                refused = smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code = next(iter(exc.recipients.values()))[0]
            return SendResult("failed", reason=f"address refused ({code})", retry=400 <= code < 500)
        except smtplib.SMTPResponseException as exc:
            return SendResult("failed", reason=f"SMTP server answered {exc.smtp_code}",
                              retry=exc.smtp_code < 500)
        except (OSError, smtplib.SMTPException) as exc:  # refused, timed out, TLS failed, dropped
            return SendResult("failed", reason=f"SMTP server unreachable: {type(exc).__name__}", retry=True)
        if refused:
            return SendResult("failed", reason="address refused")
        return SendResult("sent", provider_ref=message["Message-ID"])

    def send_verification_code(self, address: str, code: str) -> bool:
        """Mail the code that verifies `address` (POST /api/v1/contact-methods/<id>/verify)."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = address
        message["Subject"] = "[HealthGuard] Your verification code"
        message["Date"] = formatdate(localtime=False)
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(f"Your HealthGuard verification code is {code}.\n\n"
                            "Enter it under My notifications within 15 minutes. If you did not "
                            "add this address, ignore this message.\n")
        with self._connect() as smtp:
            smtp.send_message(message)
        return True

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        if self.implicit_tls:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=TIMEOUT_SECONDS, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_SECONDS)
            try:
                smtp.ehlo()
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=context)
                    smtp.ehlo()
                elif self.user:
                    raise smtplib.SMTPNotSupportedError("the server offers no STARTTLS: the password "
                                                        "is not sent in clear")
            except BaseException:
                smtp.close()
                raise
        if self.user:
            smtp.login(self.user, self.password)
        return smtp


def register_from_settings(settings, register) -> bool:
    """Register email when SMTP_URL is configured (SMTP_FROM with it: the settings checked)."""
    if not settings.SMTP_URL:
        log.warning("SMTP_URL not set: no email notifications")
        return False
    register(SmtpChannel(smtp_url=settings.SMTP_URL, sender=settings.SMTP_FROM,
                         web_origin=settings.WEB_ORIGIN))
    return True
