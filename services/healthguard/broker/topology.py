"""The platform's queues: their names (the alert lanes, notifications) and how every one of them
is declared (quorum, with its dead-letter and delay queues)."""
import pika.exceptions

# The names are the contract's (domain.py), re-exported here beside their declarations.
from ..domain import ALERT_LANES, NOTIFICATIONS_QUEUE, alert_lane  # noqa: F401
from .connection import BrokerError

# Durable work queues between services (their names are healthguard/domain.py's: the alert lanes,
# one per severity, and notifications). Each has a dead-letter queue `<name>.dead` for messages
# that can never be processed, so they are kept (with the reason) instead of looping, and delay
# queues `<name>.retry.<delay>` that hold a failed message for a while before it comes back.


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

