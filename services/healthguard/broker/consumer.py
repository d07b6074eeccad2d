"""Consuming: a subscription thread that survives lost connections, and the work-queue
consumer (most urgent queue first, batches, retries in delay queues, dead letters)."""
import functools
import heapq
import itertools
import json
import logging
import threading
from dataclasses import dataclass

import pika
import pika.exceptions

from .. import metrics
from ..threads import BackgroundThread
from .connection import CONNECTION_ERRORS, BrokerError, connect
from .topology import dead_letter_queue, declare_queue, declare_retry_queue, retry_queue

log = logging.getLogger(__name__)

# How many times a message has failed so far (a header we own: RabbitMQ's own x-death bookkeeping
# differs between classic and quorum queues and between versions).
ATTEMPTS_HEADER = "hg-attempts"


class PermanentMessageError(Exception):
    """A message that can never be processed (unparseable, unknown ids): dead-letter it."""


@dataclass(frozen=True)
class RetryPolicy:
    """How a consumer retries a message whose handler failed (database down, say): after the
    n-th failure it waits first_delay * 2**(n-1) seconds (at most max_delay) in a delay queue;
    the max_attempts-th failure sends it to the dead-letter queue instead. The defaults ride out
    about four minutes of outage (1+2+4+...+60+60+60 s) before an alarm is set aside."""
    max_attempts: int = 10
    first_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, failures: int) -> float:
        return min(self.first_delay * 2 ** (failures - 1), self.max_delay)


class SubscriptionThread(BackgroundThread):
    """A background thread with its own connection that subscribes, consumes until stopped,
    and subscribes again (with backoff) after every lost connection or broker restart.
    Subclasses say what to subscribe to (`_subscribe`) and how to take a message."""

    def __init__(self, url: str, *, name: str, max_backoff: float = 10.0):
        super().__init__()
        self.url, self.name, self.max_backoff = url, name, max_backoff
        self.connected = threading.Event()
        self._connection = self._channel = None

    def _subscribe(self, channel) -> None:
        raise NotImplementedError

    def _on_subscribed(self) -> None:
        """Runs after every (re)subscription, in the thread."""

    def _consume(self, channel) -> None:
        """Dispatch deliveries until stopped or the connection is lost."""
        channel.start_consuming()

    def _interrupt(self) -> None:
        connection, channel = self._connection, self._channel
        if connection is not None and channel is not None:
            try:
                connection.add_callback_threadsafe(channel.stop_consuming)
            except CONNECTION_ERRORS:
                pass

    def _run(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            connection = None
            try:
                connection = connect(self.url)
                channel = connection.channel()
                self._subscribe(channel)
                self._connection, self._channel = connection, channel
                self.connected.set()
                backoff = 0.5
                log.info("subscribed", extra={"subscription": self.name})
                self._on_subscribed()
                if not self._stopping.is_set():
                    self._consume(channel)
            except (*CONNECTION_ERRORS, BrokerError) as exc:
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
    """Consumes one work queue, or several in order of urgency, in a background thread.

    The handler receives the decoded JSON object and does its work in its own transaction. The
    message is acknowledged only after the handler returned, i.e. after that transaction
    committed: a crash before then leaves the message on the queue for redelivery, so handlers
    must be idempotent. A handler that raises PermanentMessageError (or a body that is not a JSON
    object) sends the message to the dead-letter queue with the reason. Any other exception is a
    transient failure: the message goes to a delay queue and comes back later (RetryPolicy), so
    the thread never sleeps on it and the messages behind it keep flowing; after the policy's
    last attempt it is dead-lettered with the last error. Each queue has its own dead-letter and
    delay queues, so a retried message comes back to the queue (the lane) it came from.

    With several queues (most urgent first), the deliveries in hand wait in a heap and the most
    urgent one is handled next: a message of a lower queue is taken only while no higher queue
    has one in hand. `prefetch` counts per queue (RabbitMQ's per-consumer QoS; quorum queues have
    no channel-wide one), so with prefetch=1 an urgent message waits at most for the one message
    being handled when it arrived.

    Batches: with a `batch_handler`, the deliveries in hand are handled up to `batch_size` at a
    time, `batch_handler(messages)` doing the work of them all in one transaction, most urgent
    first (queue, then arrival). The most urgent queue's messages make batches of their own (a
    CRITICAL alarm is never committed together with lower ones, and waits only for the batch
    being handled when it came); below it, a batch is filled from every queue in that order, so
    a steady trickle of HIGH alarms does not leave the MEDIUM and LOW ones in hand waiting while
    each HIGH one is handled in a batch of its own.
    The batch is acknowledged after batch_handler returned (one `multiple` ack when it covers
    every delivery still unacknowledged up to its last one). If batch_handler raises, nothing of
    the batch was done (its transaction rolled back) and each message is handled alone by
    `handler`, with the retries and dead letters above: a poison message neither blocks nor
    loses the others.
    """

    def __init__(self, url: str, queues, handler, *, prefetch: int = 10,
                 retry: RetryPolicy = RetryPolicy(), max_backoff: float = 10.0,
                 batch_handler=None, batch_size: int = 1):
        queues = (queues,) if isinstance(queues, str) else tuple(queues)
        super().__init__(url, name=f"consumer-{queues[0]}", max_backoff=max_backoff)
        self.queues, self.handler = queues, handler
        self.prefetch, self.retry = prefetch, retry
        self.batch_handler = batch_handler
        self.batch_size = batch_size if batch_handler is not None else 1
        self._retry_queues = set()  # declared on the current channel
        self._in_hand = []  # heap of (urgency, arrival, queue, method, properties, body)
        self._arrivals = itertools.count()

    def _subscribe(self, channel) -> None:
        channel.confirm_delivery()  # retries and dead letters are confirmed before the ack
        self._retry_queues, self._in_hand = set(), []
        channel.basic_qos(prefetch_count=self.prefetch)
        for urgency, queue in enumerate(self.queues):
            declare_queue(channel, queue)
            channel.basic_consume(queue, functools.partial(self._on_delivery, urgency, queue))

    def _on_delivery(self, urgency: int, queue: str, channel, method, properties, body) -> None:
        heapq.heappush(self._in_hand, (urgency, next(self._arrivals), queue, method, properties, body))

    def _consume(self, channel) -> None:
        """Collect what the broker has delivered (waiting up to a second when nothing is in hand),
        then handle the most urgent delivery; repeat until stopped. Deliveries still in hand when
        the connection closes are not acknowledged, so the broker delivers them again."""
        connection = channel.connection
        # A queue deleted under us cancels its consumer: subscribe again (declaring every queue
        # anew) rather than go on consuming the others only.
        while (not self._stopping.is_set() and channel.is_open
               and len(channel.consumer_tags) == len(self.queues)):
            connection.process_data_events(time_limit=0 if self._in_hand else 1.0)
            if self._in_hand and not self._stopping.is_set():
                if self.batch_size > 1:
                    self._on_batch(channel, self._next_batch())
                else:
                    _, _, queue, method, properties, body = heapq.heappop(self._in_hand)
                    self._on_message(channel, queue, method, properties, body)

    def _next_batch(self) -> list[tuple]:
        """Up to batch_size deliveries in hand, most urgent first: of the most urgent queue only,
        when it has any in hand; else of any queue."""
        batch = [heapq.heappop(self._in_hand)]
        alone = batch[0][0] == 0
        while (self._in_hand and len(batch) < self.batch_size
               and not (alone and self._in_hand[0][0] != 0)):
            batch.append(heapq.heappop(self._in_hand))
        return [(queue, method, properties, body) for _, _, queue, method, properties, body in batch]

    def _on_batch(self, channel, batch: list[tuple]) -> None:
        if len(batch) == 1:
            self._on_message(channel, *batch[0])
            return
        decoded, messages = [], []
        for delivery in batch:
            try:
                message = json.loads(delivery[3])
            except ValueError:
                message = None
            if isinstance(message, dict):
                decoded.append(delivery)
                messages.append(message)
            else:
                self._on_message(channel, *delivery)  # dead-lettered with the reason
        if not decoded:
            return
        try:
            self.batch_handler(messages)
        except Exception as exc:
            # Rolled back as a whole: each message on its own, so only a failing one is retried
            # or dead-lettered.
            log.warning("batch failed, handling its messages one by one",
                        extra={"queue": decoded[0][0], "size": len(decoded),
                               "error": f"{type(exc).__name__}: {exc}"[:300]})
            for delivery in decoded:
                self._on_message(channel, *delivery)
        else:
            self._ack_all(channel, [method.delivery_tag for _, method, _, _ in decoded])

    def _ack_all(self, channel, tags: list[int]) -> None:
        """Acknowledge these deliveries: one `multiple` ack when no delivery still in hand
        (unacknowledged, not handled yet) has a smaller tag than the last of them, else one by
        one (a multiple ack would take those in hand with it)."""
        last = max(tags)
        if all(entry[3].delivery_tag > last for entry in self._in_hand):
            channel.basic_ack(last, multiple=True)
        else:
            for tag in tags:
                channel.basic_ack(tag)

    def _on_message(self, channel, queue, method, properties, body) -> None:
        try:
            message = json.loads(body)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            message, reason = None, f"unparseable message: {exc}"
        else:
            reason = None if isinstance(message, dict) else "message body is not a JSON object"
        if reason:
            self._dead_letter(channel, queue, method, properties, body, reason)
            return
        try:
            self.handler(message)
        except PermanentMessageError as exc:
            self._dead_letter(channel, queue, method, properties, body, str(exc))
        except Exception as exc:
            failures = _failures(properties) + 1
            if failures >= self.retry.max_attempts:
                log.exception("handler failed for the last time, message dead-lettered",
                              extra={"queue": queue, "attempts": failures})
                self._dead_letter(channel, queue, method, properties, body,
                                  f"failed {failures} times, last: {type(exc).__name__}: {exc}",
                                  failures=failures)
            else:
                delay = self.retry.delay(failures)
                log.exception("handler failed, message will be retried",
                              extra={"queue": queue, "attempts": failures, "retry_in": delay})
                self._retry_later(channel, queue, method, properties, body, failures, delay)
        else:
            channel.basic_ack(method.delivery_tag)

    def _retry_later(self, channel, queue, method, properties, body, failures: int, delay: float) -> None:
        """Park the message in the delay queue (confirmed), then ack this delivery: a crash in
        between delivers it twice, which handlers tolerate, but never loses it."""
        name = retry_queue(queue, delay)
        if name not in self._retry_queues:
            declare_retry_queue(channel, queue, delay)
            self._retry_queues.add(name)
        _republish(channel, name, body, _copy(properties, {ATTEMPTS_HEADER: failures}))
        channel.basic_ack(method.delivery_tag)
        metrics.MESSAGES_RETRIED.labels(queue=queue).inc()

    def _dead_letter(self, channel, queue, method, properties, body, reason: str, *,
                     failures: int = 0) -> None:
        headers = {"x-dead-letter-reason": reason[:1000], "x-original-queue": queue}
        if failures:
            headers[ATTEMPTS_HEADER] = failures
        _republish(channel, dead_letter_queue(queue), body, _copy(properties, headers))
        channel.basic_ack(method.delivery_tag)
        metrics.MESSAGES_DEAD_LETTERED.labels(queue=queue).inc()
        log.error("message dead-lettered", extra={"queue": queue, "reason": reason})


def _republish(channel, queue: str, body: bytes, properties) -> None:
    """A confirmed, mandatory publish of a consumed message's copy (to a delay or dead-letter
    queue), before its delivery is acknowledged. A copy the broker refuses raises BrokerError: a
    full queue nacks it, and a queue deleted under us returns it (without `mandatory` the broker
    confirmed such a copy and dropped it, and the delivery was acknowledged: the message was
    lost). The subscription then starts again on a fresh connection, declaring its queues anew,
    and the unacknowledged delivery comes back."""
    try:
        channel.basic_publish("", queue, body, properties, mandatory=True)
    except (pika.exceptions.NackError, pika.exceptions.UnroutableError) as exc:
        raise BrokerError(f"broker refused the copy for {queue}: {exc!r}") from exc


def _failures(properties) -> int:
    value = (properties.headers or {}).get(ATTEMPTS_HEADER, 0)
    return value if isinstance(value, int) and value >= 0 else 0


def _copy(properties, headers: dict) -> pika.BasicProperties:
    """The message's properties for a republished copy, with `headers` added."""
    return pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent,
                                content_type=properties.content_type,
                                message_id=properties.message_id,
                                headers={**(properties.headers or {}), **headers})
