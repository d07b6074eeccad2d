"""A broker that survives losing a node: the platform's queues are quorum queues, replicated on
a throw-away 3-node RabbitMQ cluster; the node leading the alerts queue is killed while alarms
stream in, and every accepted alarm still becomes exactly one incident."""
import json
import threading

import pika
import pytest

from healthguard.broker import (
    Outgoing,
    Publisher,
    alert_lane,
    connect,
    declare_queue,
    declare_retry_queue,
)
from tests.support import ThrowawayRabbitCluster, free_port, wait_for
from tests.test_pipeline_faults import (
    STREAMING,
    all_assigned,
    assert_exactly_one_incident_each,
    incidents_by_alert,
    post_alert,
)


@pytest.fixture(scope="module")
def cluster():
    """One cluster for the module (booting three nodes is most of its time). The node-loss test
    comes last: it leaves one node dead."""
    cluster = ThrowawayRabbitCluster(3)
    try:
        yield cluster.start()
    finally:
        cluster.destroy()  # every node and directory, even when start() failed half-way


# The stream's alarms (ST elevation, suspected stroke) are CRITICAL: they travel in this lane.
ALERTS_QUEUE = alert_lane("CRITICAL")


def test_the_platform_queues_are_quorum_queues_replicated_on_every_node(cluster):
    connection = connect(cluster.url)
    try:
        channel = connection.channel()
        declare_queue(channel, ALERTS_QUEUE)
        declare_retry_queue(channel, ALERTS_QUEUE, 1.0)
    finally:
        connection.close()
    listed = {line.split("\t")[0]: line for line in
              cluster.nodes[1].ctl("-q", "list_queues", "name", "type", "members").splitlines()}
    for queue in (ALERTS_QUEUE, f"{ALERTS_QUEUE}.dead", f"{ALERTS_QUEUE}.retry.1000ms"):
        assert "quorum" in listed[queue], listed
        assert all(node.nodename in listed[queue] for node in cluster.nodes), listed[queue]


def test_a_connection_goes_to_the_first_node_of_the_list_that_answers(cluster):
    nobody = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"  # no broker listens there
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        connect(nobody)
    connection = connect(f"{nobody},{cluster.nodes[1].url}")
    try:
        assert connection.is_open
        assert connection._impl.params.port == cluster.nodes[1].port
    finally:
        connection.close()


def test_a_publisher_cut_off_with_the_leader_gets_its_alarms_confirmed_by_the_survivors(cluster):
    """The outbox relay's case: its connection dies with the node leading the alerts queue and
    it reconnects to a survivor at once, before the cluster has settled on another leader. The
    broker then nacks that new channel's publishes to the queue, and went on nacking them for
    minutes, while a channel opened later publishes at once: a relay that kept its channel
    after a nack retried the same alarms on it, and they stayed in the outbox."""
    connection = connect(cluster.url)
    try:
        channel = connection.channel()
        declare_queue(channel, ALERTS_QUEUE)
        channel.queue_purge(ALERTS_QUEUE)
    finally:
        connection.close()
    leader = cluster.leader(ALERTS_QUEUE)
    survivors = [node for node in cluster.running() if node is not leader]
    publisher = Publisher(",".join(node.url for node in [leader, *survivors]))

    def publish(n: int):
        message = Outgoing.to_queue(ALERTS_QUEUE, {"n": n}, message_id=f"cut-off-{n}")
        return publisher.publish_many([message])[0]

    refusals = []

    def confirmed() -> bool:
        error = publish(2)
        if error is not None:
            refusals.append(repr(error))
        return error is None

    try:
        assert publish(1) is None
        leader.stop()  # SIGKILL: the publisher's connection goes with it
        # As the relay does: a refused message is published again until the broker confirms it.
        try:
            wait_for(confirmed, 60, 0.5, "a survivor to confirm the alarm")
        except TimeoutError:
            raise AssertionError(f"refused {len(refusals)} times, last: {refusals[-1:]}") from None
    finally:
        publisher.close()
        leader.start()  # back in the cluster (its data names it), for the next test
        leader.ctl("await_startup", timeout=90)
    connection = connect(survivors[0].url)
    try:
        channel = connection.channel()
        queued = []

        def both_queued():
            body = channel.basic_get(ALERTS_QUEUE, auto_ack=True)[2]
            if body is not None:
                queued.append(json.loads(body)["n"])
            return len(queued) >= 2
        wait_for(both_queued, 30, 0.2, "both alarms to be in the queue")
        assert sorted(queued) == [1, 2]
        channel.queue_purge(ALERTS_QUEUE)
    finally:
        connection.close()


def test_the_node_leading_the_alerts_queue_dies_mid_stream_and_no_alarm_is_lost_or_doubled(
        cluster, start_service, login_as, db):
    oncall = start_service("oncall")
    # Each service is given every node; its connections go to the first that answers, so the
    # nodes' order is rotated per service: the leader's death cuts publishers AND consumers.
    nodes = [node.url for node in cluster.nodes]
    ingestion = start_service("alert-ingestion", env={"RABBITMQ_URL": ",".join(nodes), **STREAMING})
    incidents_env = {"ONCALL_URL": oncall.url, "ASSIGNMENT_RETRY_SECONDS": "0.5",
                     "MESSAGE_RETRY_SECONDS": "0.5"}
    start_service("incident-management", env={**incidents_env,
                                              "RABBITMQ_URL": ",".join(nodes[1:] + nodes[:1])})
    start_service("incident-management", env={**incidents_env,
                                              "RABBITMQ_URL": ",".join(nodes[2:] + nodes[:2])})
    for specialist in ("S01", "S02", "S05", "S06"):
        login_as(specialist)

    accepted = []
    failures = []

    def post_stream(count: int):
        try:
            for n in range(count):
                accepted.append(post_alert(ingestion, ("P001", "P004")[n % 2],
                                           ("ST_ELEVATION_DETECTED", "STROKE_SUSPECTED")[n % 2]))
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    poster = threading.Thread(target=post_stream, args=(40,))
    poster.start()
    try:
        wait_for(lambda: sum(r["incidents"] for r in incidents_by_alert(db).values()) >= 10, 30, 0.02,
                 "incident management to be handling the stream")
        leader = cluster.leader(ALERTS_QUEUE)
        leader.stop()  # SIGKILL: its connections, its replicas and its leadership are gone at once
    finally:
        poster.join()
    post_stream(20)  # and the stream goes on after the node's death
    assert failures == []  # the ingestion API kept accepting alarms throughout
    assert len(accepted) == 60
    wait_for(lambda: all_assigned(db, accepted), 90, 0.2,
             "every accepted alarm to become an incident on the surviving nodes")
    assert_exactly_one_incident_each(db, accepted)
    # The two survivors elected another leader.
    assert cluster.leader(ALERTS_QUEUE) in cluster.running()
    assert leader not in cluster.running()
