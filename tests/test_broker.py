"""The shared RabbitMQ pieces against a real broker: confirmed publishing, ack only after the
handler's transaction committed, dead-lettering of messages that can never be processed."""
import threading
import uuid

import pika
import pytest

from healthguard.broker import Consumer, PermanentMessageError, Publisher, dead_letter_queue
from tests.support import queue_depth, wait_for


@pytest.fixture
def queue(rabbitmq_url):
    name = f"test-{uuid.uuid4().hex[:8]}"
    yield name
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = connection.channel()
    channel.queue_delete(name)
    channel.queue_delete(dead_letter_queue(name))
    connection.close()


@pytest.fixture
def scratch_table(db):
    """A table of handled message ids, in this test's own database (dropped with it)."""
    with db.transaction() as cur:
        cur.execute("CREATE TABLE test_handled (message_id text PRIMARY KEY)")


def handled(db):
    with db.transaction() as cur:
        cur.execute("SELECT message_id FROM test_handled ORDER BY message_id")
        return [row["message_id"] for row in cur.fetchall()]


def test_message_is_acknowledged_only_after_the_handler_committed(rabbitmq_url, db, queue, scratch_table):
    publisher = Publisher(rabbitmq_url)
    publisher.publish(queue, {"id": "m1"}, message_id="m1")
    attempts = []
    release = threading.Event()

    def handler(message):
        attempts.append(message["id"])
        with db.transaction() as cur:
            cur.execute("INSERT INTO test_handled VALUES (%s) ON CONFLICT DO NOTHING", (message["id"],))
            if not release.is_set():
                raise RuntimeError("crash after the insert, before commit")

    consumer = Consumer(rabbitmq_url, queue, handler, retry_delay=0.2).start()
    try:
        wait_for(lambda: len(attempts) >= 2, 15, what="the failed message to be redelivered")
        # The failing handler's transaction rolled back, and the message is still ours to handle.
        assert handled(db) == []
        consumer.stop()
        assert queue_depth(rabbitmq_url, queue) == 1
        release.set()
        consumer = Consumer(rabbitmq_url, queue, handler).start()
        wait_for(lambda: handled(db) == ["m1"], 15, what="the message to be handled")
        wait_for(lambda: queue_depth(rabbitmq_url, queue) == 0, 15, what="the ack")
    finally:
        consumer.stop()
        publisher.close()


def test_unprocessable_messages_go_to_the_dead_letter_queue_with_a_reason(rabbitmq_url, queue):
    publisher = Publisher(rabbitmq_url)
    seen = []

    def handler(message):
        seen.append(message)
        if message.get("patient_id") == "nobody":
            raise PermanentMessageError("unknown patient nobody")

    publisher.publish(queue, {"patient_id": "nobody"}, message_id="bad-1")
    publisher.publish(queue, {"patient_id": "P001"}, message_id="good-1")
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    connection.channel().basic_publish("", queue, b"{not json")
    connection.close()
    consumer = Consumer(rabbitmq_url, queue, handler).start()
    try:
        wait_for(lambda: queue_depth(rabbitmq_url, dead_letter_queue(queue)) == 2, 15,
                 what="two dead letters")
        assert queue_depth(rabbitmq_url, queue) == 0
    finally:
        consumer.stop()
        publisher.close()
    assert {"patient_id": "P001"} in seen
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = connection.channel()
    reasons = []
    for _ in range(2):
        method, properties, body = channel.basic_get(dead_letter_queue(queue), auto_ack=True)
        reasons.append(properties.headers["x-dead-letter-reason"])
    connection.close()
    assert "unknown patient nobody" in reasons
    assert any(reason.startswith("unparseable message") for reason in reasons)


def test_consumer_reconnects_after_a_broker_restart(db, queue):
    from tests.support import ThrowawayRabbitMQ
    rabbit = ThrowawayRabbitMQ().start()
    received = []
    consumer = Consumer(rabbit.url, queue, lambda m: received.append(m["n"]), max_backoff=1).start()
    publisher = Publisher(rabbit.url)
    try:
        assert consumer.connected.wait(15)
        publisher.publish(queue, {"n": 1}, message_id="n1")
        wait_for(lambda: received == [1], 10, what="the first message")
        rabbit.stop()
        rabbit.start()
        wait_for(consumer.connected.is_set, 30, what="the consumer to reconnect")
        publisher.publish(queue, {"n": 2}, message_id="n2")  # the publisher reconnects too
        wait_for(lambda: 2 in received, 10, what="the message after the restart")
        # At-least-once: an ack in flight when the broker died may bring message 1 back.
        assert set(received) == {1, 2}
    finally:
        consumer.stop()
        publisher.close()
        rabbit.destroy()
