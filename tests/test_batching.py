"""Batching (issue 10): the alert consumer handles up to a batch of alarms in one transaction,
the outbox relay and the notification store publish and store in batches. What must keep
holding: one incident per alert (even when a worker is killed mid-batch with two copies
running), the least-busy spread inside one batch, repeats in one batch joining one incident, the
critical lane first, a poison message costing only itself."""
import threading

import pika
import pytest

from healthguard.broker import (
    ALERT_LANES,
    Consumer,
    Outgoing,
    PermanentMessageError,
    Publisher,
    RetryPolicy,
)
from healthguard.messages import AlertMessage
from healthguard.oncall_client import OnCallClient
from healthguard.outbox import OutboxRelay, OutboxRow, enqueue
from incident_management.consume_alerts import open_incidents_for_alerts
from tests.support import (
    drain_queue,
    insert_alerts,
    publish_to_lanes,
    queue_depth,
    wait_for,
    wait_until_in_hand,
)
from tests.test_pipeline_faults import STREAMING, all_assigned, assert_exactly_one_incident_each


class Recorder:
    """Handler and batch handler of a Consumer: records each batch (a message alone is a batch
    of one); the first one is held until `release`, so what is published meanwhile is in hand
    when the consumer takes its next batch."""

    def __init__(self, *, poison=None):
        self.batches, self.release, self.poison = [], threading.Event(), poison
        self.holding = threading.Event()  # the first batch is being handled

    def one(self, message):
        self.batch([message])

    def batch(self, messages):
        if not self.batches:
            self.holding.set()
            self.release.wait(60)  # a bound, not a pause: the test sets it
        if self.poison and any(m["name"] == self.poison for m in messages):
            raise PermanentMessageError(f"{self.poison} can never be handled")
        self.batches.append([m["name"] for m in messages])

    def handled(self):
        return [name for batch in self.batches for name in batch]


def batch_consumer(rabbitmq_url, recorder, *, size=10, retry=RetryPolicy()):
    return Consumer(rabbitmq_url, ALERT_LANES, recorder.one, prefetch=size, batch_size=size,
                    batch_handler=recorder.batch, retry=retry)


def a_critical_behind_lows_in_hand(rabbitmq_url) -> None:
    """Thirty LOW alarms published, ten of them in the consumer's hand (the first held by the
    recorder), then a CRITICAL one published and in hand too."""
    publish_to_lanes(rabbitmq_url, [("alerts.low", {"name": f"low-{n}"}) for n in range(30)])
    wait_until_in_hand(rabbitmq_url, "alerts.low", ready_at_most=20, what="ten lows in hand")
    publish_to_lanes(rabbitmq_url, [("alerts.critical", {"name": "critical"})])
    wait_until_in_hand(rabbitmq_url, "alerts.critical", ready_at_most=0, what="the critical in hand")


def test_a_critical_message_gets_a_batch_of_its_own_ahead_of_the_lower_ones_in_hand(
        database_url, rabbitmq_url):
    recorder = Recorder()
    consumer = batch_consumer(rabbitmq_url, recorder).start()
    try:
        assert consumer.connected.wait(10)
        a_critical_behind_lows_in_hand(rabbitmq_url)
        recorder.release.set()
        wait_for(lambda: len(recorder.handled()) == 31, 20, 0.05, "every message handled")
    finally:
        consumer.stop()
    # The first batch was being handled when the CRITICAL one came; it is the very next, alone.
    assert recorder.batches[1] == ["critical"]
    assert [n for n in recorder.handled() if n != "critical"] == [f"low-{n}" for n in range(30)]
    assert max(len(batch) for batch in recorder.batches) > 1  # lows were taken in batches
    assert all(len(batch) <= 10 for batch in recorder.batches)


def test_below_the_critical_lane_one_batch_takes_every_lane_in_hand_most_severe_first(
        database_url, rabbitmq_url):
    recorder = Recorder()
    consumer = batch_consumer(rabbitmq_url, recorder).start()
    try:
        assert consumer.connected.wait(10)
        publish_to_lanes(rabbitmq_url, [("alerts.low", {"name": "low-0"})])
        assert recorder.holding.wait(20), "the first alarm was never handled"
        # Published least severe first, while low-0 is being handled.
        publish_to_lanes(rabbitmq_url, [("alerts.low", {"name": "low-1"}), ("alerts.low", {"name": "low-2"}),
                                        ("alerts.medium", {"name": "medium"}),
                                        ("alerts.high", {"name": "high-0"}),
                                        ("alerts.high", {"name": "high-1"}),
                                        ("alerts.critical", {"name": "critical"})])
        for lane in ALERT_LANES:
            wait_until_in_hand(rabbitmq_url, lane, ready_at_most=0, what=f"{lane} in hand")
        recorder.release.set()
        wait_for(lambda: len(recorder.handled()) == 7, 20, 0.05, "every message handled")
    finally:
        consumer.stop()
    # The CRITICAL alarm alone, then one batch of the rest, most severe first, each lane in order
    # (a batch per lane took the HIGH ones on their own, and the others waited for them).
    assert recorder.batches == [["low-0"], ["critical"], ["high-0", "high-1", "medium", "low-1", "low-2"]]


def test_acknowledging_a_batch_never_takes_the_lower_messages_still_in_hand_with_it(
        database_url, rabbitmq_url):
    recorder = Recorder()
    consumer = batch_consumer(rabbitmq_url, recorder)
    stopper = threading.Thread(target=consumer.stop)
    recorded = recorder.batch

    def stop_after_the_critical(messages):
        recorded(messages)
        if messages[0]["name"] == "critical":  # stop the consumer with the lows still in hand
            stopper.start()
            wait_for(lambda: consumer._stopping.is_set(), 10, 0.01, "the consumer to be stopping")
    consumer.batch_handler = stop_after_the_critical
    consumer.handler = lambda message: stop_after_the_critical([message])
    consumer.start()
    try:
        assert consumer.connected.wait(10)
        a_critical_behind_lows_in_hand(rabbitmq_url)
        recorder.release.set()
        stopper_started = wait_for(lambda: stopper.ident is not None, 20, 0.05, "the critical handled")
        assert stopper_started
        stopper.join(20)
    finally:
        consumer.stop()
    handled_lows = [n for n in recorder.handled() if n != "critical"]
    assert recorder.handled()[-1] == "critical"
    # The critical batch was acknowledged; the lows in hand and not handled were not: every one
    # of them is back on its queue.
    wait_for(lambda: queue_depth(rabbitmq_url, "alerts.low") == 30 - len(handled_lows), 20, 0.1,
             "the unhandled lows back on their queue")
    assert queue_depth(rabbitmq_url, "alerts.critical") == 0


def test_a_poison_message_in_a_batch_is_dead_lettered_and_the_rest_of_the_batch_handled(
        database_url, rabbitmq_url):
    recorder = Recorder(poison="medium-3")
    consumer = batch_consumer(rabbitmq_url, recorder, retry=RetryPolicy(max_attempts=2, first_delay=0.2))
    consumer.start()
    try:
        assert consumer.connected.wait(10)
        publish_to_lanes(rabbitmq_url, [("alerts.medium", {"name": "first"})])
        wait_for(lambda: queue_depth(rabbitmq_url, "alerts.medium") == 0, 30, 0.05, "the first in hand")
        publish_to_lanes(rabbitmq_url, [("alerts.medium", {"name": f"medium-{n}"}) for n in range(8)]
                + [("alerts.medium", "not json")])
        wait_for(lambda: queue_depth(rabbitmq_url, "alerts.medium") == 0, 30, 0.05, "the batch in hand")
        recorder.release.set()
        wait_for(lambda: len(recorder.handled()) == 8, 20, 0.05, "the good messages handled")
        dead = []
        wait_for(lambda: dead.extend(drain_queue(rabbitmq_url, "alerts.medium.dead")) or len(dead) == 2,
                 20, 0.1, "two dead letters")
    finally:
        consumer.stop()
    assert sorted(recorder.handled()) == sorted(["first"] + [f"medium-{n}" for n in range(8) if n != 3])
    reasons = sorted(properties.headers["x-dead-letter-reason"] for _, properties in dead)
    assert reasons[0] == "medium-3 can never be handled" and reasons[1].startswith("unparseable")


def test_one_batch_spreads_alarms_over_the_least_busy_and_joins_its_repeats_into_one_incident(
        db, clock, login_as, start_service, service_env):
    clock.pin_rota()
    oncall = start_service("oncall")
    for neurologist in ("S05", "S06"):  # on call around the clock; no emergency doctor signed in
        login_as(neurologist)
    # Four alarms routed to neurology in one batch; the last repeats the third.
    alerts = insert_alerts(db, [("P004", "STROKE_SUSPECTED"), ("P005", "STROKE_SUSPECTED"),
                                ("P006", "STROKE_SUSPECTED"), ("P006", "STROKE_SUSPECTED")])
    client = OnCallClient(oncall.url, service_env["SERVICE_TOKEN"])
    try:
        handled = open_incidents_for_alerts([{"alert_id": a} for a in alerts], db=db, oncall=client)
    finally:
        client.close()
    with db.transaction() as cur:
        cur.execute("""
            SELECT i.incident_id, i.alert_id, i.patient_id, i.assigned_to, i.alert_count, i.status,
                   array(SELECT action FROM incident_history h WHERE h.incident_id = i.incident_id
                         ORDER BY history_id) AS history,
                   array(SELECT alert_id FROM incident_alerts l
                         WHERE l.incident_id = i.incident_id) AS repeats
            FROM incidents i ORDER BY i.incident_id""")
        incidents = cur.fetchall()
        cur.execute("SELECT payload FROM outbox WHERE queue = 'notifications' ORDER BY outbox_id")
        events = [row["payload"] for row in cur.fetchall()]
    assert [i["alert_id"] for i in incidents] == alerts[:3]
    assert {i["incident_id"] for i in handled} == {i["incident_id"] for i in incidents}
    assert all(i["status"] == "ASSIGNED" for i in incidents)
    # The second alarm for the role went to the second clinician; the third to the one of them
    # idle longest.
    assert {incidents[0]["assigned_to"], incidents[1]["assigned_to"]} == {"S05", "S06"}
    assert incidents[2]["assigned_to"] == incidents[0]["assigned_to"]
    repeated = incidents[2]
    assert (repeated["alert_count"], repeated["repeats"]) == (2, [alerts[3]])
    assert repeated["history"] == ["CREATED", "ALERT_CORRELATED", "ASSIGNED"]
    assert [(e["type"], e["incident_id"]) for e in events] == [
        ("INCIDENT_ALERT_CORRELATED", repeated["incident_id"]),
        ("INCIDENT_ASSIGNED", incidents[0]["incident_id"]),
        ("INCIDENT_ASSIGNED", incidents[1]["incident_id"]),
        ("INCIDENT_ASSIGNED", repeated["incident_id"])]
    assert events[-1]["data"]["alert_count"] == 2 and events[-1]["recipients"] == [repeated["assigned_to"]]

    # The same batch delivered again (a redelivery after a crash) changes nothing.
    again = open_incidents_for_alerts([{"alert_id": a} for a in alerts], db=db,
                                      oncall=OnCallClient(oncall.url, service_env["SERVICE_TOKEN"]))
    assert again == []
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM incidents")
        assert cur.fetchone()["n"] == 3


def test_worker_killed_mid_batch_with_two_copies_running_makes_one_incident_per_alert(
        db, clock, login_as, start_service):
    clock.pin_rota()
    oncall = start_service("oncall")
    start_service("alert-ingestion", env=STREAMING)  # its relay publishes the backlog
    env = {"ONCALL_URL": oncall.url, "ASSIGNMENT_RETRY_SECONDS": "0.5"}
    first = start_service("incident-management", env=env)
    second = start_service("incident-management", env=env)
    for clinician in ("D01", "D02", "D03", "D04", "S01", "S02", "S05", "S06", "N01", "N02"):
        login_as(clinician)
    # A backlog of 600 alarms, repeats among them (8 patients x 3 alarm types), published at
    # once: both copies take full batches.
    kinds = ("ST_ELEVATION_DETECTED", "STROKE_SUSPECTED", "HEART_RATE_HIGH")
    with db.transaction() as cur:
        cur.execute("""
            INSERT INTO alerts (patient_id, alert_type, severity, category, room, occurred_at)
            SELECT p.patient_id, t.alert_type, t.severity, t.category, p.room, now()
            FROM generate_series(0, 599) n
            JOIN patients p ON p.patient_id = 'P00' || (1 + n %% 8)
            JOIN alert_types t ON t.alert_type = (%s::text[])[1 + n %% 3]
            ORDER BY n
            RETURNING alert_id, severity""", (list(kinds),))
        accepted = []
        for row in cur.fetchall():
            accepted.append(row["alert_id"])
            enqueue(cur, [AlertMessage(alert_id=row["alert_id"], severity=row["severity"]).outbox_row()])

    def handled():
        with db.transaction() as cur:
            cur.execute("SELECT (SELECT count(*) FROM incidents) "
                        "+ (SELECT count(*) FROM incident_alerts) AS n")
            return cur.fetchone()["n"]
    wait_for(lambda: handled() >= 60, 60, 0.01, "both copies to be handling the backlog")
    first.kill()  # SIGKILL mid-batch: its open transaction and unacked deliveries are abandoned
    assert handled() < len(accepted)
    wait_for(lambda: all_assigned(db, accepted), 120, 0.5, "every alert to become an assigned incident")
    assert second.ready()
    assert_exactly_one_incident_each(db, accepted)


def test_pipelined_publishing_confirms_a_batch_in_order_and_outbox_relays_keep_the_order(
        db, rabbitmq_url):
    publisher = Publisher(rabbitmq_url)
    try:
        errors = publisher.publish_many([Outgoing.to_queue("alerts.low", {"n": n}, message_id=f"m-{n}")
                                         for n in range(50)])
        assert errors == [None] * 50
        assert [body["n"] for body, _ in drain_queue(rabbitmq_url, "alerts.low")] == list(range(50))
        # A queue deleted under the publisher: declared again, its messages published once more.
        connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
        connection.channel().queue_delete("alerts.low")
        connection.close()
        again = Outgoing.to_queue("alerts.low", {"n": 1}, message_id="again")
        assert publisher.publish_many([again]) == [None]
        assert [body for body, _ in drain_queue(rabbitmq_url, "alerts.low")] == [{"n": 1}]
    finally:
        publisher.close()

    # Three relays, one incident's events written one after the other: published in that order.
    relays = [OutboxRelay(db, Publisher(rabbitmq_url), batch_size=7, poll_interval=0.2).start()
              for _ in range(3)]
    try:
        for n in range(120):
            with db.transaction() as cur:
                enqueue(cur, [OutboxRow("notifications", f"event-{n}", {"n": n})])
        def outbox_empty():
            with db.transaction() as cur:
                cur.execute("SELECT count(*) AS n FROM outbox")
                return cur.fetchone()["n"] == 0
        wait_for(outbox_empty, 30, 0.1, "the outbox to drain")
    finally:
        for relay in relays:
            relay.stop()
            relay.publisher.close()
    assert [body["n"] for body, _ in drain_queue(rabbitmq_url, "notifications")] == list(range(120))


@pytest.fixture
def notification_worker(start_service):
    return start_service("notification")


def test_notifications_of_a_batch_are_stored_once_each_and_a_bad_event_is_set_aside(
        db, rabbitmq_url, make_incident, notification_worker):
    incident_id = make_incident(assigned_to="D01")
    events = [{"event_id": f"incident-{incident_id}-note_added-{n}", "type": "INCIDENT_NOTE_ADDED",
               "recipients": ["D01", "D02"], "incident_id": incident_id, "title": "t",
               "message": f"note {n}", "severity": "CRITICAL", "data": {}} for n in range(40)]
    bad = {**events[0], "event_id": "bad", "recipients": ["NOBODY"]}
    publisher = Publisher(rabbitmq_url)
    try:
        errors = publisher.publish_many(
            [Outgoing.to_queue("notifications", e, message_id=e["event_id"])
             for e in [*events[:20], bad, *events[20:], *events[:5]]])  # five delivered twice
        assert errors == [None] * 46
    finally:
        publisher.close()

    def stored():
        with db.transaction() as cur:
            cur.execute("SELECT event_id, employee_id FROM notifications ORDER BY notification_id")
            return [(row["event_id"], row["employee_id"]) for row in cur.fetchall()]
    wait_for(lambda: len(stored()) == 80, 30, 0.1, "every event stored for both recipients")
    dead = []
    wait_for(lambda: dead.extend(drain_queue(rabbitmq_url, "notifications.dead")) or dead, 30, 0.1,
             "the bad event dead-lettered")
    wait_for(lambda: queue_depth(rabbitmq_url, "notifications") == 0, 30, 0.1, "the queue drained")
    assert stored() == [(e["event_id"], r) for e in events for r in ("D01", "D02")]
    assert [body["event_id"] for body, _ in dead] == ["bad"]
