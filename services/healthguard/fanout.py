"""RabbitMQ fanout: one message, delivered to every subscribed process.

Work queues (broker.py) hand each message to ONE consumer. Some things must reach EVERY process
instead, e.g. a notification that one process stored must be pushed by every process that holds
a WebSocket of that clinician. A fanout exchange does that: each subscribing process binds its
own exclusive, auto-deleted queue to the exchange and receives a copy of every message published
while it is subscribed. Those copies are transient by design: a subscriber that was away misses
them, so the durable record must live elsewhere (the database) and subscribers catch up from it
when they (re)subscribe (`on_subscribed`).
"""
import json
import logging
import threading

import pika
import pika.exceptions

from .broker import CONNECTION_ERRORS, BrokerError, Publisher, connection_parameters

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

    def broadcast(self, payload: dict, *, message_id: str) -> None:
        body = json.dumps(payload, default=str).encode()
        properties = pika.BasicProperties(content_type="application/json", message_id=message_id)
        for attempt in (1, 2):  # an idle connection may have been dropped: one fresh retry
            try:
                channel = self._channel()
                if self.exchange not in self._local.declared:
                    declare_fanout(channel, self.exchange)
                    self._local.declared.add(self.exchange)
                channel.basic_publish(self.exchange, "", body, properties)
                return
            except pika.exceptions.NackError as exc:
                raise BrokerError(f"broker refused message {message_id} for {self.exchange}: {exc!r}") \
                    from exc
            except CONNECTION_ERRORS as exc:
                self._reset()
                if attempt == 2:
                    raise BrokerError(f"broker unreachable: {exc!r}") from exc


class FanoutSubscriber:
    """Receives every message of a fanout exchange in a background thread of this process.

    `handler(message)` gets each decoded JSON object; its exceptions are logged, never retried
    (the copy is this process's alone). `on_subscribed()` runs after every (re)subscription,
    once the queue is bound: whatever was published while this process was not bound is lost
    to it, so that is where it catches up from the durable record."""

    def __init__(self, url: str, exchange: str, handler, *, on_subscribed=None, max_backoff: float = 10.0):
        self.url, self.exchange, self.handler = url, exchange, handler
        self.on_subscribed = on_subscribed
        self.max_backoff = max_backoff
        self.subscribed = threading.Event()
        self._stopping = threading.Event()
        self._connection = self._channel = None
        self._thread = None

    def start(self) -> "FanoutSubscriber":
        self._thread = threading.Thread(target=self._run, name=f"fanout-{self.exchange}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        connection, channel = self._connection, self._channel
        if connection is not None and channel is not None:
            try:
                connection.add_callback_threadsafe(channel.stop_consuming)
            except CONNECTION_ERRORS:
                pass
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            connection = None
            try:
                connection = pika.BlockingConnection(connection_parameters(self.url))
                channel = connection.channel()
                declare_fanout(channel, self.exchange)
                queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
                channel.queue_bind(queue, self.exchange)
                channel.basic_consume(queue, self._on_message, auto_ack=True)
                self._connection, self._channel = connection, channel
                self.subscribed.set()
                backoff = 0.5
                log.info("subscribed", extra={"exchange": self.exchange})
                if self.on_subscribed is not None:
                    self._call(self.on_subscribed)
                if not self._stopping.is_set():
                    channel.start_consuming()
            except CONNECTION_ERRORS as exc:
                log.warning("broker connection lost, resubscribing",
                            extra={"exchange": self.exchange, "error": repr(exc), "retry_in": backoff})
            finally:
                self.subscribed.clear()
                self._connection = self._channel = None
                if connection is not None and connection.is_open:
                    try:
                        connection.close()
                    except CONNECTION_ERRORS:
                        pass
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, self.max_backoff)

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
