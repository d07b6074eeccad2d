"""RabbitMQ: confirmed, persistent publishing and an ack-after-commit consumer.

pika is not thread-safe: every thread gets its own connection (publishers keep one per thread,
each consumer runs in its own thread with its own connection).
"""
import functools
import heapq
import itertools
import json
import logging
import threading
from dataclasses import dataclass

import pika
import pika.exceptions

from . import metrics
from .domain import SEVERITIES
from .threads import BackgroundThread

log = logging.getLogger(__name__)

# Durable work queues between services. Each has a dead-letter queue `<name>.dead` for messages
# that can never be processed, so they are kept (with the reason) instead of looping, and delay
# queues `<name>.retry.<delay>` that hold a failed message for a while before it comes back.
NOTIFICATIONS_QUEUE = "notifications"
# Alarms travel in one queue per severity ("lanes"), most severe first, and incident management
# drains a higher lane before it takes a message of a lower one: a cardiac arrest never waits
# behind a flood of low-battery alarms. Separate queues rather than one queue with x-max-priority,
# which classic queues have and quorum queues do not. The outbox row names its lane, and the relay
# publishes it with that routing key (the default exchange routes a key to the queue of that name).
ALERT_LANES = tuple(f"alerts.{severity.lower()}" for severity in SEVERITIES)


def alert_lane(severity: str) -> str:
    """The queue an alert of this severity travels in."""
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}")
    return f"alerts.{severity.lower()}"

# How many times a message has failed so far (a header we own: RabbitMQ's own x-death bookkeeping
# differs between classic and quorum queues and between versions).
ATTEMPTS_HEADER = "hg-attempts"

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


# Every durable queue of the platform is a quorum queue: replicated (Raft) to the cluster's
# nodes, so a work queue, its dead letters and its parked retries survive losing a minority of
# the nodes (a classic queue lives on one node and is gone, or unreachable, with it). On a
# single node it behaves as a durable queue. A queue's type cannot change once declared: a
# broker that still holds the classic queues of an older version refuses these declarations
# (PRECONDITION_FAILED), see the README's "Upgrading to quorum queues".
QUORUM = {"x-queue-type": "quorum"}


def declare_durable_queue(channel, name: str, arguments: dict | None = None) -> None:
    """THE declaration of a platform queue (work, dead-letter and delay queues, and any lane a
    service adds): every declaration goes through here so all agree on the arguments (two
    declarations of one queue with different arguments close the channel)."""
    try:
        channel.queue_declare(queue=name, durable=True, arguments={**QUORUM, **(arguments or {})})
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 406 and "x-queue-type" in (exc.reply_text or ""):
            raise BrokerError(f"queue {name} exists with another type (a classic queue of an older "
                              f"version?): see the README, Upgrading to quorum queues. "
                              f"{exc.reply_text}") from exc
        raise


def declare_queue(channel, queue: str) -> None:
    """Every work queue (the alert lanes, notifications) and its dead-letter queue are declared
    here and only here. Consumers dead-letter by a confirmed publish of their own (with the
    reason), so the work queue needs no broker dead-lettering."""
    declare_durable_queue(channel, queue)
    declare_durable_queue(channel, dead_letter_queue(queue))


def retry_queue(queue: str, delay: float) -> str:
    """The delay queue that holds a message `delay` seconds before handing it back to `queue`.
    The delay is part of the name: a queue's arguments cannot change once declared, so another
    delay (a changed setting) is another queue, never a declaration that clashes."""
    return f"{queue}.retry.{round(delay * 1000)}ms"


def declare_retry_queue(channel, queue: str, delay: float) -> str:
    """A durable queue nobody consumes: each message expires after `delay` (x-message-ttl) and is
    dead-lettered back to the work queue. One fixed TTL per queue keeps it first in, first out
    (a per-message TTL only expires the head, so a long delay would hold up short ones behind
    it). Quorum queues dead-letter at most once by default: a message expiring while the work
    queue's leader is being elected would be dropped. `at-least-once` keeps it in the delay
    queue until the work queue confirmed it (a copy may arrive twice: consumers are
    idempotent), and requires `reject-publish` so a full queue refuses new messages (the
    consumer's confirmed publish fails, the delivery is not acked) rather than dropping old."""
    name = retry_queue(queue, delay)
    declare_durable_queue(channel, name, {
        "x-message-ttl": round(delay * 1000),
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queue,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    })
    return name


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


def node_urls(url: str) -> list[str]:
    """RABBITMQ_URL is one AMQP URL or a comma-separated list of them, one per node of a
    cluster: `amqp://u:p@rabbit1:5672/hg,amqp://u:p@rabbit2:5672/hg,...`."""
    urls = [part.strip() for part in url.split(",") if part.strip()]
    if not urls:
        raise ValueError("RABBITMQ_URL names no broker")
    return urls


def connection_parameters(url: str, *, timeout: float = 5.0) -> list[pika.URLParameters]:
    """One set of parameters per node, in the order given: pika tries them in turn, so a
    connection (a publisher's, or a consumer's after it lost its node) goes to the first node
    that answers. A cluster's nodes serve every queue, whichever node leads it."""
    nodes = []
    for node_url in node_urls(url):
        params = pika.URLParameters(node_url)
        params.connection_attempts = 1
        params.socket_timeout = timeout
        params.stack_timeout = timeout * 2
        params.blocked_connection_timeout = 30
        params.heartbeat = 30
        nodes.append(params)
    return nodes


def connect(url: str, *, timeout: float = 5.0) -> pika.BlockingConnection:
    return pika.BlockingConnection(connection_parameters(url, timeout=timeout))


def ping(url: str) -> None:
    """Raise unless a node of the broker accepts a connection now."""
    connect(url, timeout=2.0).close()


class Publisher:
    """Publishes persistent JSON messages and returns only once the broker confirmed them."""

    def __init__(self, url: str):
        self.url = url
        self._local = threading.local()

    def _channel(self):
        channel = getattr(self._local, "channel", None)
        if channel is None or channel.is_closed or channel.connection.is_closed:
            self._reset()
            connection = connect(self.url)
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

    def publish(self, queue: str, payload: dict, *, message_id: str) -> None:
        """Put a persistent message on a durable work queue."""
        properties = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent, content_type="application/json",
            message_id=message_id,
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
                # A channel opened while the queue's leader was being replaced may go on being
                # nacked (see _ConfirmPipeline.publish): the next try takes a fresh one.
                self._reset()
                if attempt == 2:
                    raise BrokerError(f"broker refused message {properties.message_id} for "
                                      f"{destination}: {exc!r}") from exc
            except CONNECTION_ERRORS as exc:
                self._reset()
                if attempt == 2:
                    raise BrokerError(f"broker unreachable: {exc!r}") from exc

    def publish_many(self, messages: list["Outgoing"], *, timeout: float = 10.0) -> list[Exception | None]:
        """Publish several messages and wait for all their confirms together (pipelined), instead
        of one round trip per message as publish() does: the broker confirms a batch of a
        hundred in about the time it confirms one. Returns, per message in order, None once the
        broker confirmed it, or the BrokerError that says why it did not (nacked, unroutable,
        connection lost, no confirm within `timeout`). Messages of one channel reach their
        queues in the order published."""
        if not messages:
            return []
        results: list[Exception | None] = [None] * len(messages)
        todo = list(range(len(messages)))
        # Once more on a fresh connection for what the first attempt could not publish: an idle
        # connection may have been dropped by the broker (its heartbeats go unanswered while
        # nobody publishes), a queue deleted since this connection declared it returns its
        # messages unroutable (declared again, they go through), and a nacked message may be
        # taken on a fresh channel (_ConfirmPipeline.publish).
        for attempt in (1, 2):
            try:
                pipe = self._pipeline()
                outcome = pipe.publish([messages[i] for i in todo], timeout=timeout)
            except CONNECTION_ERRORS as exc:
                self._reset_pipeline()
                outcome = [_Unreachable(f"broker unreachable: {exc!r}")] * len(todo)
            retry = []
            for index, error in zip(todo, outcome, strict=True):
                results[index] = error
                if isinstance(error, (_Unroutable, _Unreachable, _Nacked)) and attempt == 1:
                    retry.append(index)
            if not retry:
                break
            todo = retry
        return results

    def _pipeline(self) -> "_ConfirmPipeline":
        pipe = getattr(self._local, "pipeline", None)
        if pipe is None or not pipe.is_open():
            self._reset_pipeline()
            pipe = self._local.pipeline = _ConfirmPipeline(connect(self.url))
        return pipe

    def _reset_pipeline(self) -> None:
        pipe = getattr(self._local, "pipeline", None)
        self._local.pipeline = None
        if pipe is not None:
            pipe.close()

    def close(self) -> None:
        self._reset()
        self._reset_pipeline()


@dataclass(frozen=True)
class Outgoing:
    """A message for Publisher.publish_many: a persistent one for a durable work queue
    (Outgoing.to_queue), or anything else with its own properties and declaration."""
    exchange: str
    routing_key: str
    body: bytes
    properties: pika.BasicProperties
    mandatory: bool
    declare: object  # declare(channel, destination), once per connection

    @classmethod
    def to_queue(cls, queue: str, payload, *, message_id: str) -> "Outgoing":
        body = payload if isinstance(payload, bytes) else json.dumps(payload, default=str).encode()
        return cls("", queue, body, pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent, content_type="application/json",
            message_id=message_id), True, declare_queue)

    @property
    def destination(self) -> str:
        return self.exchange or self.routing_key


class _Unroutable(BrokerError):
    """The broker returned the message: no queue to route it to (deleted under us)."""


class _Unreachable(BrokerError):
    """The connection failed while publishing (or was already gone)."""


class _Nacked(BrokerError):
    """The broker refused the message (basic.nack)."""


class _ConfirmPipeline:
    """One connection whose channel is in confirm mode and whose confirms are collected as they
    come, so a batch is published in one go and confirmed in about one round trip.

    pika's BlockingChannel waits for each confirm inside basic_publish; its asynchronous channel
    (`_impl`, which the blocking one drives) does not. This publishes on that channel and runs
    the blocking connection's I/O loop until every delivery tag is acked or nacked. Confirms
    come in publish order and may cover several tags at once (`multiple`). Private to pika, so
    pinned with pika (services/requirements.txt) and covered by tests/test_batching.py.
    """

    def __init__(self, connection: pika.BlockingConnection):
        self.connection = connection
        self.channel = connection.channel()
        self._async = self.channel._impl
        self.declared: set[str] = set()
        self._published = 0  # the last delivery tag used: tags count publishes on the channel
        self._pending: dict[int, int] = {}  # delivery tag -> index in the batch
        self._results: list = []
        self._returned: set[int] = set()  # indexes returned as unroutable
        self._by_message_id: dict[str, int] = {}
        selected = []

        def on_selected(frame):
            selected.append(frame)
            self._wake()
        self._async.confirm_delivery(ack_nack_callback=self._on_confirm, callback=on_selected)
        self._async.add_on_return_callback(self._on_return)
        self._run_until(lambda: selected, 10.0)
        if not selected:
            raise pika.exceptions.AMQPChannelError("confirm mode was not acknowledged")

    def is_open(self) -> bool:
        return self.connection.is_open and self.channel.is_open

    def publish(self, messages: list[Outgoing], *, timeout: float) -> list[Exception | None]:
        for message in messages:
            if message.destination not in self.declared:
                message.declare(self.channel, message.destination)
                self.declared.add(message.destination)
        self._results = [BrokerError("no confirm from the broker in time")] * len(messages)
        self._pending, self._returned, self._by_message_id = {}, set(), {}
        for index, message in enumerate(messages):
            self._async.basic_publish(message.exchange, message.routing_key, message.body,
                                      message.properties, mandatory=message.mandatory)
            self._published += 1
            self._pending[self._published] = index
            if message.properties.message_id:
                self._by_message_id[message.properties.message_id] = index
        self._run_until(lambda: not self._pending, timeout)
        if self._pending:
            # Tags now unknown to us would be misread later: this connection is done.
            self.close()
        elif any(isinstance(result, _Nacked) for result in self._results):
            # A nack may be the channel's, not the queue's: a channel opened just after the node
            # leading a quorum queue died (as a relay reconnects at once) had every publish to
            # that queue nacked for minutes (RabbitMQ 3.10), while a channel opened later is
            # confirmed at once. Done with this one: the next publish takes a fresh channel.
            self.close()
        for index in self._returned:
            self.declared.discard(messages[index].destination)
        return self._results

    def _on_return(self, channel, method, properties, body) -> None:
        index = self._by_message_id.get(properties.message_id)
        if index is not None:
            self._returned.add(index)

    def _on_confirm(self, frame) -> None:
        method = frame.method
        tags = ([tag for tag in self._pending if tag <= method.delivery_tag] if method.multiple
                else [method.delivery_tag])
        nacked = isinstance(method, pika.spec.Basic.Nack)
        for tag in tags:
            index = self._pending.pop(tag, None)
            if index is None:
                continue
            if nacked:
                self._results[index] = _Nacked("broker refused the message (nack)")
            elif index in self._returned:
                self._results[index] = _Unroutable("broker returned the message: no queue for it")
            else:
                self._results[index] = None
        if not self._pending:
            self._wake()

    def _wake(self) -> None:
        """Frames of the asynchronous channel arrive below the blocking connection, which only
        stops waiting for its own events: hand it one, so _run_until sees what changed at once."""
        self.connection.add_callback_threadsafe(lambda: None)

    def _run_until(self, done, timeout: float) -> None:
        expired = []
        timer = self.connection.call_later(timeout, lambda: expired.append(True))
        try:
            while not done() and not expired and self.connection.is_open:
                self.connection.process_data_events(time_limit=None)
        finally:
            if self.connection.is_open:
                self.connection.remove_timeout(timer)

    def close(self) -> None:
        if self.connection.is_open:
            try:
                self.connection.close()
            except CONNECTION_ERRORS:
                pass


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
        channel.basic_publish("", name, body, _copy(properties, {ATTEMPTS_HEADER: failures}))
        channel.basic_ack(method.delivery_tag)
        metrics.MESSAGES_RETRIED.labels(queue=queue).inc()

    def _dead_letter(self, channel, queue, method, properties, body, reason: str, *,
                     failures: int = 0) -> None:
        headers = {"x-dead-letter-reason": reason[:1000], "x-original-queue": queue}
        if failures:
            headers[ATTEMPTS_HEADER] = failures
        channel.basic_publish("", dead_letter_queue(queue), body, _copy(properties, headers))
        channel.basic_ack(method.delivery_tag)
        metrics.MESSAGES_DEAD_LETTERED.labels(queue=queue).inc()
        log.error("message dead-lettered", extra={"queue": queue, "reason": reason})


def _failures(properties) -> int:
    value = (properties.headers or {}).get(ATTEMPTS_HEADER, 0)
    return value if isinstance(value, int) and value >= 0 else 0


def _copy(properties, headers: dict) -> pika.BasicProperties:
    """The message's properties for a republished copy, with `headers` added."""
    return pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent,
                                content_type=properties.content_type,
                                message_id=properties.message_id,
                                headers={**(properties.headers or {}), **headers})
