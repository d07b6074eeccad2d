"""RabbitMQ: confirmed, persistent publishing and an ack-after-commit consumer.

pika is not thread-safe: every thread gets its own connection (publishers keep one per thread,
each consumer runs in its own thread with its own connection).
"""
import json
import logging
import threading

import pika
import pika.exceptions

from . import metrics

log = logging.getLogger(__name__)

# Durable work queues between services. Each has a dead-letter queue `<name>.dead` for messages
# that can never be processed, so they are kept (with the reason) instead of looping.
ALERTS_QUEUE = "alerts"
NOTIFICATIONS_QUEUE = "notifications"

CONNECTION_ERRORS = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.AMQPChannelError,
    pika.exceptions.StreamLostError,
    pika.exceptions.ConnectionWrongStateError,
    pika.exceptions.ChannelWrongStateError,
    OSError,
)


class BrokerError(RuntimeError):
    """The broker did not accept a message (unreachable, nacked or unroutable)."""


class PermanentMessageError(Exception):
    """A message that can never be processed (unparseable, unknown ids): dead-letter it."""


def dead_letter_queue(queue: str) -> str:
    return f"{queue}.dead"


def declare_queue(channel, queue: str) -> None:
    channel.queue_declare(queue=queue, durable=True)
    channel.queue_declare(queue=dead_letter_queue(queue), durable=True)


def connection_parameters(url: str, *, timeout: float = 5.0) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.connection_attempts = 1
    params.socket_timeout = timeout
    params.stack_timeout = timeout * 2
    params.blocked_connection_timeout = 30
    params.heartbeat = 30
    return params


def ping(url: str) -> None:
    """Raise unless the broker accepts a connection now."""
    connection = pika.BlockingConnection(connection_parameters(url, timeout=2.0))
    connection.close()


class Publisher:
    """Publishes persistent JSON messages and returns only once the broker confirmed them."""

    def __init__(self, url: str):
        self.url = url
        self._local = threading.local()

    def _channel(self):
        channel = getattr(self._local, "channel", None)
        if channel is None or channel.is_closed or channel.connection.is_closed:
            self._reset()
            connection = pika.BlockingConnection(connection_parameters(self.url))
            channel = connection.channel()
            channel.confirm_delivery()
            self._local.connection, self._local.channel, self._local.declared = connection, channel, set()
        return channel

    def _reset(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = self._local.channel = None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except CONNECTION_ERRORS:
                pass

    def publish(self, queue: str, payload: dict, *, message_id: str, headers: dict | None = None) -> None:
        """Put a persistent message on a durable work queue."""
        properties = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent, content_type="application/json",
            message_id=message_id, headers=headers or None,
        )
        self._publish("", queue, payload, properties, declare=declare_queue, mandatory=True)

    def _publish(self, exchange: str, routing_key: str, payload: dict, properties, *,
                 declare, mandatory: bool) -> None:
        """Publish and wait for the broker's confirm. `declare(channel, name)` declares the
        destination once per connection (and again if it vanished under us)."""
        destination = exchange or routing_key
        body = json.dumps(payload, default=str).encode()
        # An idle connection may have been dropped by the broker: one fresh retry is normal.
        for attempt in (1, 2):
            try:
                channel = self._channel()
                if destination not in self._local.declared:
                    declare(channel, destination)
                    self._local.declared.add(destination)
                channel.basic_publish(exchange, routing_key, body, properties, mandatory=mandatory)
                return
            except pika.exceptions.UnroutableError as exc:
                # The queue was deleted since this connection declared it: declare it again.
                self._local.declared.discard(destination)
                if attempt == 2:
                    raise BrokerError(f"broker refused message {properties.message_id} for "
                                      f"{destination}: {exc!r}") from exc
            except pika.exceptions.NackError as exc:
                raise BrokerError(f"broker refused message {properties.message_id} for "
                                  f"{destination}: {exc!r}") from exc
            except CONNECTION_ERRORS as exc:
                self._reset()
                if attempt == 2:
                    raise BrokerError(f"broker unreachable: {exc!r}") from exc

    def close(self) -> None:
        self._reset()


class SubscriptionThread:
    """A background thread with its own connection that subscribes, consumes until stopped,
    and subscribes again (with backoff) after every lost connection or broker restart.
    Subclasses say what to subscribe to (`_subscribe`) and how to take a message."""

    def __init__(self, url: str, *, name: str, max_backoff: float = 10.0):
        self.url, self.name, self.max_backoff = url, name, max_backoff
        self.connected = threading.Event()
        self._stopping = threading.Event()
        self._connection = self._channel = None
        self._thread = None

    def _subscribe(self, channel) -> None:
        raise NotImplementedError

    def _on_subscribed(self) -> None:
        """Runs after every (re)subscription, in the thread."""

    def start(self):
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
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
                self._subscribe(channel)
                self._connection, self._channel = connection, channel
                self.connected.set()
                backoff = 0.5
                log.info("subscribed", extra={"subscription": self.name})
                self._on_subscribed()
                if not self._stopping.is_set():
                    channel.start_consuming()
            except CONNECTION_ERRORS as exc:
                log.warning("broker connection lost, subscribing again",
                            extra={"subscription": self.name, "error": repr(exc), "retry_in": backoff})
            finally:
                self.connected.clear()
                self._connection = self._channel = None
                if connection is not None and connection.is_open:
                    try:
                        connection.close()
                    except CONNECTION_ERRORS:
                        pass
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, self.max_backoff)


class Consumer(SubscriptionThread):
    """Consumes one work queue in a background thread.

    The handler receives the decoded JSON object and does its work in its own transaction. The
    message is acknowledged only after the handler returned, i.e. after that transaction
    committed: a crash before then leaves the message on the queue for redelivery, so handlers
    must be idempotent. A handler that raises PermanentMessageError (or a body that is not a JSON
    object) sends the message to the dead-letter queue with the reason; any other exception is
    retried after a pause.
    """

    def __init__(self, url: str, queue: str, handler, *, prefetch: int = 10,
                 retry_delay: float = 1.0, max_backoff: float = 10.0):
        super().__init__(url, name=f"consumer-{queue}", max_backoff=max_backoff)
        self.queue, self.handler = queue, handler
        self.prefetch, self.retry_delay = prefetch, retry_delay

    def _subscribe(self, channel) -> None:
        channel.confirm_delivery()  # dead letters are confirmed before the original is acked
        declare_queue(channel, self.queue)
        channel.basic_qos(prefetch_count=self.prefetch)
        channel.basic_consume(self.queue, self._on_message)

    def _on_message(self, channel, method, properties, body) -> None:
        try:
            message = json.loads(body)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            message, reason = None, f"unparseable message: {exc}"
        else:
            reason = None if isinstance(message, dict) else "message body is not a JSON object"
        if reason:
            self._dead_letter(channel, method, properties, body, reason)
            return
        try:
            self.handler(message)
        except PermanentMessageError as exc:
            self._dead_letter(channel, method, properties, body, str(exc))
        except Exception:
            log.exception("handler failed, message will be retried", extra={"queue": self.queue})
            self._stopping.wait(self.retry_delay)
            channel.basic_nack(method.delivery_tag, requeue=True)
        else:
            channel.basic_ack(method.delivery_tag)

    def _dead_letter(self, channel, method, properties, body, reason: str) -> None:
        headers = dict(properties.headers or {})
        headers.update({"x-dead-letter-reason": reason[:1000], "x-original-queue": self.queue})
        channel.basic_publish(
            "", dead_letter_queue(self.queue), body,
            pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent,
                                 content_type=properties.content_type,
                                 message_id=properties.message_id, headers=headers),
        )
        channel.basic_ack(method.delivery_tag)
        metrics.MESSAGES_DEAD_LETTERED.labels(queue=self.queue).inc()
        log.error("message dead-lettered", extra={"queue": self.queue, "reason": reason})
