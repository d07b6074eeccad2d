"""The shared RabbitMQ pieces against a real broker: confirmed publishing, ack only after the
handler's transaction committed, retries through delay queues, dead-lettering of messages that
can never be processed."""
import json
import re
import threading
import uuid

import pika
import pytest

from healthguard.broker import (
    ATTEMPTS_HEADER,
    BrokerError,
    Consumer,
    PermanentMessageError,
    Publisher,
    RetryPolicy,
    dead_letter_queue,
    declare_queue,
    declare_retry_queue,
    node_urls,
    retry_queue,
)
from tests.support import _vhost, publish, queue_depth, rabbitmqctl, wait_for

FAST_RETRY = RetryPolicy(max_attempts=5, first_delay=0.2, max_delay=0.4)


@pytest.fixture
def queue(rabbitmq_url):
    name = f"test-{uuid.uuid4().hex[:8]}"
    yield name
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = connection.channel()
    for queue_name in (name, dead_letter_queue(name), *retry_queues(name, FAST_RETRY),
                       *retry_queues(name, RetryPolicy(max_attempts=3, first_delay=1))):
        channel.queue_delete(queue_name)
    connection.close()


def retry_queues(queue, policy):
    return sorted({retry_queue(queue, policy.delay(n)) for n in range(1, policy.max_attempts)})


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
    publish(publisher, queue, {"id": "m1"}, message_id="m1")
    attempts = []
    release = threading.Event()

    def handler(message):
        attempts.append(message["id"])
        with db.transaction() as cur:
            cur.execute("INSERT INTO test_handled VALUES (%s) ON CONFLICT DO NOTHING", (message["id"],))
            if not release.is_set():
                raise RuntimeError("crash after the insert, before commit")

    consumer = Consumer(rabbitmq_url, queue, handler, retry=FAST_RETRY).start()
    try:
        wait_for(lambda: len(attempts) >= 2, 15, what="the failed message to be redelivered")
        # The failing handler's transaction rolled back, and the message is still ours to handle:
        # on the work queue or waiting in a delay queue, once.
        assert handled(db) == []
        consumer.stop()
        assert sum(queue_depth(rabbitmq_url, name)
                   for name in (queue, *retry_queues(queue, FAST_RETRY))) == 1
        release.set()
        consumer = Consumer(rabbitmq_url, queue, handler, retry=FAST_RETRY).start()
        wait_for(lambda: handled(db) == ["m1"], 15, what="the message to be handled")
        wait_for(lambda: queue_depth(rabbitmq_url, queue) == 0, 15, what="the ack")
    finally:
        consumer.stop()
        publisher.close()


def test_a_failing_message_waits_in_a_delay_queue_while_the_next_ones_are_handled(rabbitmq_url, queue):
    """Transient failures: no sleeping in the consumer thread. The failed message is parked in a
    delay queue (TTL, dead-lettered back), the one behind it is handled meanwhile, and after the
    last attempt the message is dead-lettered with the number of attempts and the last error."""
    publisher = Publisher(rabbitmq_url)
    policy = RetryPolicy(max_attempts=3, first_delay=1)
    seen = []

    def handler(message):
        seen.append(message["n"])
        if message["n"] == 1:
            raise RuntimeError("database unreachable")

    publish(publisher, queue, {"n": 1}, message_id="m1")
    publish(publisher, queue, {"n": 2}, message_id="m2")
    consumer = Consumer(rabbitmq_url, queue, handler, prefetch=1, retry=policy).start()
    try:
        wait_for(lambda: queue_depth(rabbitmq_url, dead_letter_queue(queue)) == 1, 20,
                 what="the message to be dead-lettered after its last attempt")
    finally:
        consumer.stop()
        publisher.close()
    # With prefetch 1, a consumer that slept and requeued would have retried 1 before ever
    # seeing 2 (a requeued message goes back to the head of the queue).
    assert seen == [1, 2, 1, 1]
    assert queue_depth(rabbitmq_url, queue) == 0
    assert all(queue_depth(rabbitmq_url, name) == 0 for name in retry_queues(queue, policy))
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    method, properties, body = connection.channel().basic_get(dead_letter_queue(queue), auto_ack=True)
    connection.close()
    assert properties.message_id == "m1" and body == b'{"n": 1}'
    assert properties.headers[ATTEMPTS_HEADER] == 3
    assert properties.headers["x-dead-letter-reason"] == (
        "failed 3 times, last: RuntimeError: database unreachable")
    assert properties.headers["x-original-queue"] == queue


def test_retry_delays_grow_and_are_capped():
    policy = RetryPolicy(max_attempts=6, first_delay=1, max_delay=5)
    assert [policy.delay(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]
    assert retry_queue("alerts", 0.25) == "alerts.retry.250ms"


def test_unprocessable_messages_go_to_the_dead_letter_queue_with_a_reason(rabbitmq_url, queue):
    publisher = Publisher(rabbitmq_url)
    seen = []

    def handler(message):
        seen.append(message)
        if message.get("patient_id") == "nobody":
            raise PermanentMessageError("unknown patient nobody")

    publish(publisher, queue, {"patient_id": "nobody"}, message_id="bad-1")
    publish(publisher, queue, {"patient_id": "P001"}, message_id="good-1")
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = connection.channel()
    channel.confirm_delivery()  # on the queue before the consumer starts
    channel.basic_publish("", queue, b"{not json")
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
        publish(publisher, queue, {"n": 1}, message_id="n1")
        wait_for(lambda: received == [1], 10, what="the first message")
        rabbit.stop()
        rabbit.start()
        wait_for(consumer.connected.is_set, 30, what="the consumer to reconnect")
        publish(publisher, queue, {"n": 2}, message_id="n2")  # the publisher reconnects too
        wait_for(lambda: 2 in received, 10, what="the message after the restart")
        # At-least-once: an ack in flight when the broker died may bring message 1 back.
        assert set(received) == {1, 2}
    finally:
        consumer.stop()
        publisher.close()
        rabbit.destroy()


def test_a_dead_letter_the_broker_refuses_costs_a_reconnect_not_the_consumer(rabbitmq_url, queue):
    """The dead-letter queue full (a policy: one message, refuse new ones), the consumer's
    confirmed publish of a dead letter is nacked. The consumer subscribes again, its thread
    alive, and the message, never acknowledged, comes back; once the queue takes messages again
    it is dead-lettered and the next one handled."""
    vhost, policy, dead = _vhost(rabbitmq_url), f"full-{queue}", dead_letter_queue(queue)
    seen = []

    def handler(message):
        seen.append(message["n"])
        if message["n"] == 1:
            raise PermanentMessageError("can never be handled")

    consumer = Consumer(rabbitmq_url, queue, handler, max_backoff=0.5).start()
    publisher = Publisher(rabbitmq_url)
    try:
        assert consumer.connected.wait(15)
        rabbitmqctl("set_policy", "-p", vhost, "--apply-to", "queues", policy, f"^{re.escape(dead)}$",
                    json.dumps({"max-length": 1, "overflow": "reject-publish"}))
        probes = []  # filling it until it refuses (a quorum queue refuses once over its length)
        wait_for(lambda: _refused(rabbitmq_url, dead, probes), 30, 0.2, "the dead letters refused")
        publish(publisher, queue, {"n": 1}, message_id="n1")
        wait_for(lambda: seen.count(1) >= 2, 30, 0.05, "the refused dead letter's message back")
        assert consumer.is_alive()
        rabbitmqctl("clear_policy", "-p", vhost, policy)
        wait_for(lambda: queue_depth(rabbitmq_url, dead) == len(probes) + 1, 30, 0.1, "the dead letter kept")
        publish(publisher, queue, {"n": 2}, message_id="n2")
        wait_for(lambda: 2 in seen, 15, 0.05, "the next message handled")
        assert consumer.is_alive() and queue_depth(rabbitmq_url, queue) == 0
    finally:
        consumer.stop()
        publisher.close()
        if policy in rabbitmqctl("-q", "list_policies", "-p", vhost):
            rabbitmqctl("clear_policy", "-p", vhost, policy)


def test_a_dead_letter_queue_deleted_under_the_consumer_is_declared_again_not_lost(rabbitmq_url, queue):
    seen = []

    def handler(message):
        seen.append(message["n"])
        raise PermanentMessageError("can never be handled")

    consumer = Consumer(rabbitmq_url, queue, handler, max_backoff=0.5).start()
    publisher = Publisher(rabbitmq_url)
    try:
        assert consumer.connected.wait(15)
        publish(publisher, queue, {"n": 0}, message_id="n0")  # the publisher has declared both
        wait_for(lambda: queue_depth(rabbitmq_url, dead_letter_queue(queue)) == 1, 30, 0.1,
                 "the first dead letter")
        connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
        connection.channel().queue_delete(dead_letter_queue(queue))
        connection.close()
        publish(publisher, queue, {"n": 1}, message_id="n1")
        wait_for(lambda: seen.count(1) >= 1 and queue_depth(rabbitmq_url, dead_letter_queue(queue)) == 1,
                 30, 0.1, "the second dead letter kept in the queue declared again")
        assert consumer.is_alive() and queue_depth(rabbitmq_url, queue) == 0
    finally:
        consumer.stop()
        publisher.close()


def _refused(rabbitmq_url, queue: str, probes: list) -> bool:
    """Whether the broker nacks a confirmed publish to `queue` now; `probes` counts those it
    took instead."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("", queue, b'{"probe": true}')
        probes.append(1)
        return False
    except pika.exceptions.NackError:
        return True
    finally:
        if connection.is_open:
            connection.close()


def queue_types(rabbitmq_url) -> dict:
    """name -> (type, arguments) of the run's queues, as the broker reports them."""
    output = rabbitmqctl("-q", "list_queues", "-p", _vhost(rabbitmq_url), "name", "type", "arguments")
    return {name: (kind, arguments) for name, kind, arguments in
            (line.split("\t", 2) for line in output.splitlines())}


def test_work_dead_letter_and_delay_queues_are_quorum_queues(rabbitmq_url, queue):
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        channel = connection.channel()
        declare_queue(channel, queue)
        declare_retry_queue(channel, queue, 0.2)
    finally:
        connection.close()
    queues = queue_types(rabbitmq_url)
    for name in (queue, dead_letter_queue(queue), retry_queue(queue, 0.2)):
        assert queues[name][0] == "quorum", (name, queues[name])
    # A delay queue hands its messages back at least once: never dropped on the way.
    arguments = queues[retry_queue(queue, 0.2)][1]
    assert "at-least-once" in arguments and "reject-publish" in arguments, arguments


def test_a_classic_queue_left_by_an_older_version_is_reported_by_name(rabbitmq_url, queue):
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    connection.channel().queue_declare(queue, durable=True)  # what the classic version declared
    connection.close()
    publisher = Publisher(rabbitmq_url)
    try:
        with pytest.raises(BrokerError, match=f"queue {queue} exists with another type.*README"):
            publish(publisher, queue, {"n": 1}, message_id="m1")
    finally:
        publisher.close()


def test_rabbitmq_url_may_name_several_nodes():
    assert node_urls("amqp://a/%2F") == ["amqp://a/%2F"]
    assert node_urls(" amqp://a:5672/%2F , amqp://b:5672/%2F,") == ["amqp://a:5672/%2F",
                                                                     "amqp://b:5672/%2F"]
    with pytest.raises(ValueError):
        node_urls(" , ")
