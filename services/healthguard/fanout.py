"""RabbitMQ fanout: one message, delivered to every subscribed process.

Work queues (broker/) hand each message to ONE consumer. Some things must reach EVERY process
instead, e.g. a notification that one process stored must be pushed by every process that holds
a WebSocket of that clinician. A fanout exchange does that: each subscribing process binds its
own exclusive, auto-deleted queue to the exchange and receives a copy of every message published
while it is subscribed. Those copies are transient by design: a subscriber that was away misses
them, so the durable record must live elsewhere (the database) and subscribers catch up from it
when they (re)subscribe (`on_subscribed`).
"""
import json
import logging

import pika

from .broker import Outgoing, Publisher, SubscriptionThread

log = logging.getLogger(__name__)


def declare_fanout(channel, exchange: str) -> None:
    channel.exchange_declare(exchange=exchange, exchange_type="fanout", durable=True)


class FanoutPublisher(Publisher):
    """Publishes JSON messages to a fanout exchange and returns once the broker confirmed them.

    Not mandatory: with no subscriber bound the message is simply dropped, which is right for
    copies that only matter to processes listening now."""

    def __init__(self, url: str, exchange: str):
        super().__init__(url)
        self.exchange = exchange

    def broadcast_many(self, messages: list[tuple[dict, str]]) -> list[Exception | None]:
        """Publish several (payload, message_id) to every subscriber, confirmed together: per
        message, None once confirmed or the BrokerError (Publisher.publish_many)."""
        return self.publish_many([
            Outgoing(self.exchange, "", json.dumps(payload, default=str).encode(),
                     pika.BasicProperties(content_type="application/json", message_id=message_id),
                     False, declare_fanout)
            for payload, message_id in messages])


class FanoutSubscriber(SubscriptionThread):
    """Receives every message of a fanout exchange in a background thread of this process.

    `handler(message)` gets each decoded JSON object; its exceptions are logged, never retried
    (the copy is this process's alone). `on_subscribed()` runs after every (re)subscription,
    once the queue is bound: whatever was published while this process was not bound is lost
    to it, so that is where it catches up from the durable record."""

    def __init__(self, url: str, exchange: str, handler, *, on_subscribed=None, max_backoff: float = 10.0):
        super().__init__(url, name=f"fanout-{exchange}", max_backoff=max_backoff)
        self.exchange, self.handler, self.on_subscribed = exchange, handler, on_subscribed

    def _subscribe(self, channel) -> None:
        declare_fanout(channel, self.exchange)
        queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        channel.queue_bind(queue, self.exchange)
        channel.basic_consume(queue, self._on_message, auto_ack=True)

    def _on_subscribed(self) -> None:
        if self.on_subscribed is not None:
            self._call(self.on_subscribed)

    def _on_message(self, channel, method, properties, body) -> None:
        try:
            message = json.loads(body)
        except ValueError:
            log.error("unparseable fanout message dropped", extra={"exchange": self.exchange})
            return
        if isinstance(message, dict):
            self._call(self.handler, message)

    def _call(self, function, *args) -> None:
        try:
            function(*args)
        except Exception:
            log.exception("fanout handler failed", extra={"exchange": self.exchange})
