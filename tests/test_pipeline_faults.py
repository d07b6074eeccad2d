"""The alert pipeline under faults: several outbox relays at once, RabbitMQ down, an
incident-management process killed mid-stream."""
import json
import threading

import pika
import pytest
from healthguard.broker import Publisher
from healthguard.outbox import OutboxRelay, enqueue

from tests.support import ThrowawayRabbitMQ, wait_for


def drain(rabbitmq_url: str, queue: str) -> list[dict]:
    """Every message now on `queue`, removed from it."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = connection.channel()
    channel.queue_declare(queue, durable=True)
    messages = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        messages.append({"message_id": properties.message_id, **json.loads(body)})
    connection.close()
    return messages


def outbox_size(db) -> int:
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM outbox")
        return cur.fetchone()["n"]


@pytest.fixture
def relays(db):
    started = []

    def start(url, copies=1):
        for _ in range(copies):
            started.append(OutboxRelay(db, Publisher(url), batch_size=20, poll_interval=0.5).start())
        return started

    yield start
    for relay in started:
        relay.stop()
        relay.publisher.close()


def test_outbox_relays_publish_each_message_once_with_several_copies(db, rabbitmq_url, clean_state,
                                                                      relays):
    relays(rabbitmq_url, copies=3)

    def write(first):
        for n in range(first, first + 50):
            with db.transaction() as cur:
                enqueue(cur, queue="alerts", message_id=f"test-{n}", payload={"n": n})

    writers = [threading.Thread(target=write, args=(start,)) for start in (0, 50, 100, 150)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    wait_for(lambda: outbox_size(db) == 0, 20, what="the outbox to drain")
    received = drain(rabbitmq_url, "alerts")
    assert sorted(m["n"] for m in received) == list(range(200))  # each exactly once
    assert {m["message_id"] for m in received} == {f"test-{n}" for n in range(200)}


def test_outbox_relay_keeps_messages_while_broker_is_down_and_drains_after(db, clean_state, relays):
    rabbit = ThrowawayRabbitMQ().start()
    try:
        relays(rabbit.url, copies=2)
        rabbit.stop()
        for n in range(10):
            with db.transaction() as cur:
                enqueue(cur, queue="alerts", message_id=f"down-{n}", payload={"n": n})
        # The relays tried and failed: the rows are kept, with their attempts counted.
        wait_for(lambda: _attempted(db), 20, what="a failed publish attempt")
        assert outbox_size(db) == 10
        rabbit.start()
        wait_for(lambda: outbox_size(db) == 0, 60, 0.2, "the outbox to drain after the restart")
        assert sorted(m["n"] for m in drain(rabbit.url, "alerts")) == list(range(10))
    finally:
        rabbit.destroy()


def _attempted(db) -> bool:
    with db.transaction() as cur:
        cur.execute("SELECT coalesce(max(attempts), 0) AS n FROM outbox")
        return cur.fetchone()["n"] > 0
