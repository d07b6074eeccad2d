"""Publishing: persistent messages, returned only once the broker confirmed them.

One path: Publisher.publish_many, whatever the message (an outbox row for a work queue, a copy for
a fanout exchange). Its confirms are pipelined: the broker confirms a batch of a hundred in about
the time it confirms one.
"""
import json
import threading
from dataclasses import dataclass

import pika
import pika.exceptions
from pika.adapters.select_connection import IOLoop
from pika.adapters.utils.connection_workflow import AMQPConnectionWorkflowWrongState

from .connection import CONNECTION_ERRORS, BrokerError, connect, connection_parameters
from .topology import declare_queue


@dataclass(frozen=True)
class Outgoing:
    """A message for Publisher.publish_many: a persistent one for a durable work queue
    (Outgoing.to_queue), or anything else with its own properties and declaration."""
    exchange: str
    routing_key: str
    body: bytes
    properties: pika.BasicProperties
    mandatory: bool
    declare: object  # declare(channel, destination) on a blocking channel, once per publisher

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


class Publisher:
    """Publishes messages and waits for the broker's confirms. pika is not thread-safe: each
    thread has its own connection."""

    def __init__(self, url: str):
        self.url = url
        self._local = threading.local()

    def publish_many(self, messages: list[Outgoing], *, timeout: float = 10.0) -> list[Exception | None]:
        """Publish several messages and wait for all their confirms together. Returns, per
        message in order, None once the broker confirmed it, or the BrokerError that says why it
        did not (nacked, unroutable, connection lost, no confirm within `timeout`). Messages of
        one channel reach their queues in the order published."""
        if not messages:
            return []
        results: list[Exception | None] = [None] * len(messages)
        todo = list(range(len(messages)))
        # Once more on a fresh connection for what the first attempt could not publish: an idle
        # connection may have been dropped by the broker (its heartbeats go unanswered while
        # nobody publishes), a queue deleted since it was declared returns its messages
        # unroutable (declared again, they go through), and a nacked message may be taken on a
        # fresh channel (_ConfirmPipeline.publish).
        for attempt in (1, 2):
            batch = [messages[i] for i in todo]
            try:
                self._declare(batch)
                outcome = self._pipeline().publish(batch, timeout=timeout)
            except CONNECTION_ERRORS as exc:
                self._reset_pipeline()
                outcome = [_Unreachable(f"broker unreachable: {exc!r}")] * len(todo)
            except BrokerError as exc:  # a declaration the broker refused (see topology)
                outcome = [exc] * len(todo)
            retry = []
            for index, error in zip(todo, outcome, strict=True):
                results[index] = error
                if isinstance(error, _Unroutable):
                    self._declared().discard(messages[index].destination)
                if isinstance(error, (_Unroutable, _Unreachable, _Nacked)) and attempt == 1:
                    retry.append(index)
            if not retry:
                break
            todo = retry
        return results

    def _declared(self) -> set:
        if not hasattr(self._local, "declared"):
            self._local.declared = set()
        return self._local.declared

    def _declare(self, messages: list[Outgoing]) -> None:
        """Declare the destinations this thread has not declared yet, on a blocking connection
        of their own (the declarations of topology.py are blocking calls): once per destination,
        and again after the broker returned a message as unroutable (deleted under us)."""
        declared = self._declared()
        todo = {m.destination: m.declare for m in messages if m.destination not in declared}
        if not todo:
            return
        connection = connect(self.url)
        try:
            channel = connection.channel()
            for destination, declare in todo.items():
                declare(channel, destination)
                declared.add(destination)
        finally:
            if connection.is_open:
                connection.close()

    def _pipeline(self) -> "_ConfirmPipeline":
        pipe = getattr(self._local, "pipeline", None)
        if pipe is None or not pipe.is_open():
            self._reset_pipeline()
            pipe = self._local.pipeline = _ConfirmPipeline(self.url)
        return pipe

    def _reset_pipeline(self) -> None:
        pipe = getattr(self._local, "pipeline", None)
        self._local.pipeline = None
        if pipe is not None:
            pipe.close()

    def close(self) -> None:
        self._reset_pipeline()


class _ConfirmPipeline:
    """One connection whose channel is in confirm mode and whose confirms are collected as they
    come, so a batch is published in one go and confirmed in about one round trip.

    pika's BlockingChannel waits for each confirm inside basic_publish. This uses pika's public
    asynchronous API instead (SelectConnection, with an I/O loop of its own), running the loop in
    the calling thread only while a batch is published, until every delivery tag is acked or
    nacked. Confirms come in publish order and may cover several tags at once (`multiple`).
    """

    def __init__(self, url: str):
        self.ioloop = IOLoop()
        self.connection = self.channel = None
        self._selected = False
        self._closed = False
        self._failure: Exception | None = None
        self._done = None  # what the running loop waits for (_run_until)
        self._published = 0  # the last delivery tag used: tags count publishes on the channel
        self._pending: dict[int, int] = {}  # delivery tag -> index in the batch
        self._results: list = []
        self._returned: set[int] = set()  # indexes returned as unroutable
        self._by_message_id: dict[str, int] = {}
        nodes = connection_parameters(url)
        workflow = pika.SelectConnection.create_connection(nodes, self._on_connected,
                                                           custom_ioloop=self.ioloop)
        # Each node in turn, as long as its parameters let it take.
        self._run_until(lambda: self._selected or self._closed,
                        sum(node.stack_timeout for node in nodes) + 5.0)
        if not self._selected:
            failure = self._failure
            if self.connection is None and not self._closed:
                try:
                    workflow.abort()  # still trying nodes: stop it before the loop is closed
                    self._run_until(lambda: self._closed, 2.0)
                except AMQPConnectionWorkflowWrongState:
                    pass  # it has just finished
            self.close()
            raise pika.exceptions.AMQPConnectionError(
                f"no confirm-mode channel: {failure!r}" if failure else "confirm mode was not acknowledged")

    # -- callbacks of the I/O loop ------------------------------------------------------------

    def _on_connected(self, connection) -> None:
        if isinstance(connection, Exception):
            self._failure, self._closed = connection, True
        else:
            self.connection = connection
            connection.add_on_close_callback(self._on_connection_closed)
            connection.channel(on_open_callback=self._on_channel_open)
        self._check()

    def _on_channel_open(self, channel) -> None:
        self.channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_selected)

    def _on_selected(self, frame) -> None:
        self._selected = True
        self._check()

    def _on_connection_closed(self, connection, reason) -> None:
        self._lost(reason)

    def _on_channel_closed(self, channel, reason) -> None:
        self._lost(reason)
        if self.connection is not None and self.connection.is_open:
            self.connection.close()

    def _lost(self, reason) -> None:
        """The connection or channel closed: whatever awaits a confirm will never get one."""
        self._failure, self._closed = self._failure or reason, True
        for index in self._pending.values():
            self._results[index] = _Unreachable(f"broker connection lost: {reason!r}")
        self._pending.clear()
        self._check()

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
        self._check()

    def _check(self) -> None:
        if self._done is not None and self._done():
            self._done = None
            self.ioloop.stop()

    def _run_until(self, done, timeout: float) -> None:
        """Run the I/O loop in this thread until done() or the timeout."""
        if done():
            return
        self._done = done
        timer = self.ioloop.call_later(timeout, self.ioloop.stop)
        try:
            self.ioloop.start()
        finally:
            self._done = None
            self.ioloop.remove_timeout(timer)

    # -- the pipeline's own API ---------------------------------------------------------------

    def is_open(self) -> bool:
        return not self._closed and self.channel is not None and self.channel.is_open

    def publish(self, messages: list[Outgoing], *, timeout: float) -> list[Exception | None]:
        if not self.is_open():
            return [_Unreachable("broker connection lost")] * len(messages)
        self._results = [BrokerError("no confirm from the broker in time")] * len(messages)
        self._pending, self._returned, self._by_message_id = {}, set(), {}
        for index, message in enumerate(messages):
            self.channel.basic_publish(message.exchange, message.routing_key, message.body,
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
            # confirmed at once. Done with this one: the next publish takes a fresh one.
            self.close()
        return self._results

    def close(self) -> None:
        """Close the connection (waiting briefly for the broker to agree) and the I/O loop."""
        if self.connection is not None and not self._closed:
            try:
                if self.connection.is_open:
                    self.connection.close()
                self._run_until(lambda: self._closed, 2.0)
            except CONNECTION_ERRORS:
                pass
        self._closed = True
        if self.ioloop is not None:
            self.ioloop.close()
            self.ioloop = None
