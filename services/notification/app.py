"""App factory: `gunicorn -c python:healthguard.gunicorn_conf "notification.app:create_app()"`.

Run with enough threads for the sockets one worker should hold: every open WebSocket keeps one
gunicorn thread (and one simple-websocket reader thread) of the services' worker class (gthread
underneath, healthguard.gunicorn_worker). For 1,000 sockets per instance: GUNICORN_WORKERS=1
GUNICORN_THREADS=1100.
"""
import logging
import signal
import threading

from healthguard import broker
from healthguard.config import ConfigError, env_int
from healthguard.domain import PUSH_EXCHANGE
from healthguard.fanout import FanoutPublisher, FanoutSubscriber
from healthguard.phi_access import BatchedAccessLog
from healthguard.web import create_service_app

from .channel_webhooks import OPTIONAL_SETTINGS as CHANNEL_SETTINGS
from .channel_webhooks import install as install_badge_sms_voice
from .channel_webhooks import webhooks
from .channels import email as email_channel
from .channels import push as push_channel
from .channels import register as register_channel
from .close_ended_sessions import CloseEndedSessions
from .hub import DEFAULT_SOCKETS_PER_SESSION, Hub
from .preferences import preferences
from .reach_views import reach
from .schemas import api
from .send_due_attempts import SETTINGS as SEND_SETTINGS
from .send_due_attempts import SendDueAttempts, check_settings
from .store_notifications import BATCH_SIZE, store_and_announce, store_and_announce_all
from .views import rest, sockets, ticket_office

log = logging.getLogger(__name__)

# Off-tab reach (issue 21): without VAPID_* there is no Web Push, without SMTP_URL no email
# (compose requires the VAPID key pair); the sending task's tuning has defaults.
REACH_OPTIONAL = ("VAPID_PRIVATE_KEY", "VAPID_PUBLIC_KEY", "VAPID_SUBJECT", "SMTP_URL", "SMTP_FROM",
                  "ONCALL_URL", "INCIDENT_MANAGEMENT_URL", "PUSH_ALLOW_LOCAL_HTTP", *SEND_SETTINGS,
                  *CHANNEL_SETTINGS)
OPTIONAL = ("WS_PING_SECONDS", "WS_SESSION_CHECK_SECONDS", "WS_SOCKETS_PER_SESSION", *REACH_OPTIONAL)
DEFAULTS = {"WS_PING_SECONDS": "25", "WS_SESSION_CHECK_SECONDS": "2",
            "WS_SOCKETS_PER_SESSION": str(DEFAULT_SOCKETS_PER_SESSION), **SEND_SETTINGS,
            "PUSH_ALLOW_LOCAL_HTTP": "false"}


class CloseSocketsOnShutdown:
    """On SIGTERM, close every socket with 1001 (going away) so clients reconnect to another
    instance at once, instead of gunicorn waiting out its graceful timeout for them."""

    def __init__(self, hub: Hub):
        self.hub = hub

    def start(self):
        if threading.current_thread() is not threading.main_thread():
            return self  # signals can only be set from the main thread (gunicorn's post_worker_init)
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum, frame):
            threading.Thread(target=self.hub.close_all, name="close-sockets", daemon=True).start()
            if callable(previous):
                previous(signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)
        return self

    def stop(self):
        self.hub.close_all()


def _seconds(settings: dict, name: str) -> float:
    try:
        value = float(settings[name])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name} must be a number of seconds, got {settings[name]!r}") from exc
    if value <= 0:
        raise ConfigError(f"setting {name} must be positive")
    return value


def create_app(config=None):
    app = create_service_app("notification", config, optional=OPTIONAL,
                             blueprints=(rest, ticket_office, sockets, preferences, reach, webhooks),
                             api=api)
    for name, value in DEFAULTS.items():
        app.config.setdefault(name, value)
    ping_seconds = _seconds(app.config, "WS_PING_SECONDS")
    app.config["WS_PING_SECONDS"] = ping_seconds
    # simple-websocket pings at the protocol level and closes a socket whose pong did not come
    # back before the next ping: a dead client is dropped within two intervals.
    app.config["SOCK_SERVER_OPTIONS"] = {"ping_interval": ping_seconds, "max_message_size": 4096}

    hg = app.extensions["healthguard"]
    per_session = env_int(app.config, "WS_SOCKETS_PER_SESSION")
    if per_session < 1:
        raise ConfigError(f"setting WS_SOCKETS_PER_SESSION must be at least 1, got {per_session}")
    # The frames' PHI access log, written by its own thread in each web process (hub.py).
    access_log = BatchedAccessLog(hg.db)
    hub = app.extensions["notification_hub"] = Hub(access_log=access_log, sockets_per_session=per_session)
    check_settings(app.config)
    # The off-tab channels, in both processes: the worker sends the ledger's attempts, the web
    # process sends verification codes and test messages.
    for channel in (push_channel, email_channel):
        channel.register_from_settings(app.config, register_channel)
    # Badges (WCTP), SMS and voice (Twilio), issue 23; polling the AC when it answers that way.
    hg.background += install_badge_sms_voice(app, register_channel)
    fanout = FanoutPublisher(hg.rabbitmq_url, PUSH_EXCHANGE)
    # The worker process stores each event once (competing consumers on the durable queue) and
    # announces it on the fanout exchange.
    hg.background.append(
        broker.Consumer(hg.rabbitmq_url, broker.NOTIFICATIONS_QUEUE,
                        lambda message: store_and_announce(message, db=hg.db, fanout=fanout),
                        retry=hg.retry, prefetch=BATCH_SIZE, batch_size=BATCH_SIZE,
                        batch_handler=lambda messages: store_and_announce_all(messages, db=hg.db,
                                                                              fanout=fanout)))
    hg.background.append(SendDueAttempts(db=hg.db, database_url=app.config["DATABASE_URL"],
                                         settings=app.config))
    # Every web process pushes the announcements to the sockets IT holds, and closes ITS sockets
    # of ended sessions: these serve this process's hub, so they run in each gunicorn worker.
    hg.web_background += [
        FanoutSubscriber(hg.rabbitmq_url, PUSH_EXCHANGE, hub.deliver, on_subscribed=hub.resync_all),
        CloseEndedSessions(db=hg.db, hub=hub, interval=_seconds(app.config, "WS_SESSION_CHECK_SECONDS")),
        CloseSocketsOnShutdown(hub),
        access_log,  # stopped last (in this order): it writes what the sockets added until then
    ]
    return app
