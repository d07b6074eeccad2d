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
from healthguard.domain import PUSH_EXCHANGE
from healthguard.fanout import FanoutPublisher, FanoutSubscriber
from healthguard.phi_access import BatchedAccessLog
from healthguard.web import create_service_app

from .channel_webhooks import install as install_badge_sms_voice
from .channel_webhooks import webhooks
from .channels import email as email_channel
from .channels import push as push_channel
from .channels import register as register_channel
from .close_ended_sessions import CloseEndedSessions
from .hub import Hub
from .preferences import preferences
from .reach_views import reach
from .schemas import api
from .send_due_attempts import SendDueAttempts
from .settings import NotificationSettings
from .store_notifications import BATCH_SIZE, store_and_announce, store_and_announce_all
from .views import rest, sockets, ticket_office

log = logging.getLogger(__name__)


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


def create_app(config=None):
    app = create_service_app("notification", config, settings_model=NotificationSettings,
                             blueprints=(rest, ticket_office, sockets, preferences, reach, webhooks),
                             api=api)
    hg = app.extensions["healthguard"]
    settings = hg.settings
    # simple-websocket pings at the protocol level and closes a socket whose pong did not come
    # back before the next ping: a dead client is dropped within two intervals.
    app.config["SOCK_SERVER_OPTIONS"] = {"ping_interval": settings.WS_PING_SECONDS, "max_message_size": 4096}
    # The frames' PHI access log, written by its own thread in each web process (hub.py).
    access_log = BatchedAccessLog(hg.db)
    hub = app.extensions["notification_hub"] = Hub(access_log=access_log,
                                                   sockets_per_session=settings.WS_SOCKETS_PER_SESSION)
    # The off-tab channels, in both processes: the worker sends the ledger's attempts, the web
    # process sends verification codes and test messages.
    for channel in (push_channel, email_channel):
        channel.register_from_settings(settings, register_channel)
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
    hg.background.append(SendDueAttempts(db=hg.db, settings=settings))
    # Every web process pushes the announcements to the sockets IT holds, and closes ITS sockets
    # of ended sessions: these serve this process's hub, so they run in each gunicorn worker.
    hg.web_background += [
        FanoutSubscriber(hg.rabbitmq_url, PUSH_EXCHANGE, hub.deliver, on_subscribed=hub.resync_all),
        CloseEndedSessions(db=hg.db, hub=hub, interval=settings.WS_SESSION_CHECK_SECONDS),
        CloseSocketsOnShutdown(hub),
        access_log,  # stopped last (in this order): it writes what the sockets added until then
    ]
    return app
