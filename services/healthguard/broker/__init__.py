"""RabbitMQ, in one module per role: topology (the queues and how they are declared), connection
(parameters per node), publisher (confirmed publishing, one path) and consumer (ack after commit,
most urgent first, batches, retries and dead letters).

pika is not thread-safe: every thread gets its own connection (publishers keep one per thread,
each consumer runs in its own thread with its own connection).
"""
from .connection import CONNECTION_ERRORS, BrokerError, connect, connection_parameters, node_urls, ping
from .consumer import ATTEMPTS_HEADER, Consumer, PermanentMessageError, RetryPolicy, SubscriptionThread
from .publisher import Outgoing, Publisher
from .topology import (
    ALERT_LANES,
    NOTIFICATIONS_QUEUE,
    QUORUM,
    alert_lane,
    dead_letter_queue,
    declare_durable_queue,
    declare_queue,
    declare_retry_queue,
    retry_queue,
)

__all__ = [
    "ALERT_LANES", "ATTEMPTS_HEADER", "CONNECTION_ERRORS", "NOTIFICATIONS_QUEUE", "QUORUM",
    "BrokerError", "Consumer", "Outgoing", "PermanentMessageError", "Publisher", "RetryPolicy",
    "SubscriptionThread", "alert_lane", "connect", "connection_parameters", "dead_letter_queue",
    "declare_durable_queue", "declare_queue", "declare_retry_queue", "node_urls", "ping",
    "retry_queue",
]
