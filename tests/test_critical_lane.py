"""Critical alarms first (issue 9): alerts travel in one queue per severity and the consumer
always handles the most severe message it holds, so a CRITICAL alarm overtakes a backlog of lower
ones, from the broker to the assignment; a retried message comes back to its own lane."""
import threading

import pytest

from healthguard.broker import ALERT_LANES, Consumer, RetryPolicy, alert_lane
from healthguard.messages import AlertMessage
from healthguard.outbox import enqueue
from tests.support import PlatformApi, pipeline, publish_to_lanes, queue_depth, wait_for, wait_until_in_hand


def test_lanes_are_named_by_severity_most_severe_first():
    assert ALERT_LANES == ("alerts.critical", "alerts.high", "alerts.medium", "alerts.low")
    assert alert_lane("HIGH") == "alerts.high"
    with pytest.raises(ValueError):
        alert_lane("URGENT")


def test_a_critical_message_overtakes_a_backlog_of_lower_ones(database_url, rabbitmq_url):
    # database_url: the work queues (the lanes among them) are emptied for this test.
    handled, release = [], threading.Event()

    def handler(message):
        release.wait(10)  # the first message is held until the backlog is on the queues
        handled.append(message["name"])

    consumer = Consumer(rabbitmq_url, ALERT_LANES, handler, prefetch=2).start()
    try:
        assert consumer.connected.wait(10)
        publish_to_lanes(rabbitmq_url, [("alerts.low", {"name": f"low-{n}"}) for n in range(30)])
        wait_until_in_hand(rabbitmq_url, "alerts.low", ready_at_most=28, what="low alarms in hand")
        publish_to_lanes(rabbitmq_url, [("alerts.medium", {"name": f"medium-{n}"}) for n in range(5)]
                + [("alerts.high", {"name": "high"}), ("alerts.critical", {"name": "critical"})])
        # Two of each lane in hand (prefetch 2): the critical, the high, two mediums.
        wait_until_in_hand(rabbitmq_url, "alerts.critical", ready_at_most=0, what="the CRITICAL in hand")
        wait_until_in_hand(rabbitmq_url, "alerts.high", ready_at_most=0, what="the HIGH alarm in hand")
        wait_until_in_hand(rabbitmq_url, "alerts.medium", ready_at_most=3, what="two MEDIUM alarms in hand")
        release.set()
        wait_for(lambda: len(handled) == 37, 20, 0.05, "every message to be handled")
    finally:
        consumer.stop()
    # The low alarm already being handled finishes first; then what is in hand, most severe first,
    # whatever the backlog. (The three mediums still on the broker come a round trip after their
    # lane's acks, and a low in hand may go meanwhile: a lane's prefetch is the bound, so their
    # place after the first two is not asserted; it failed once in CI when it was.)
    assert handled[:5] == ["low-0", "critical", "high", "medium-0", "medium-1"]
    assert sorted(handled) == sorted([f"low-{n}" for n in range(30)] + [f"medium-{n}" for n in range(5)]
                                     + ["critical", "high"])
    # Each lane keeps its own order.
    assert [name for name in handled if name.startswith("medium")] == [f"medium-{n}" for n in range(5)]
    assert [name for name in handled if name.startswith("low")] == [f"low-{n}" for n in range(30)]


def test_a_failed_critical_message_is_retried_through_its_own_lane(database_url, rabbitmq_url):
    attempts = []

    def handler(message):
        attempts.append(message["name"])
        if len(attempts) == 1:
            raise RuntimeError("database away for a moment")

    consumer = Consumer(rabbitmq_url, ALERT_LANES, handler, prefetch=1,
                        retry=RetryPolicy(max_attempts=3, first_delay=0.2)).start()
    try:
        assert consumer.connected.wait(10)
        publish_to_lanes(rabbitmq_url, [("alerts.critical", {"name": "critical"})])
        wait_for(lambda: len(attempts) == 2, 15, 0.05, "the retry to come back")
    finally:
        consumer.stop()
    assert attempts == ["critical", "critical"]
    assert all(queue_depth(rabbitmq_url, f"{lane}.dead") == 0 for lane in ALERT_LANES)


@pytest.fixture
def services(service_env):
    with pipeline(service_env, incident_env={"ASSIGNMENT_RETRY_SECONDS": "60"}) as running:
        yield running


def test_a_critical_alarm_is_assigned_before_a_backlog_of_low_ones_is_worked_off(
        services, db, login_as, clock, rabbitmq_url):
    clock.pin_rota()
    for doctor in ("D01", "D02", "D03", "D04"):
        login_as(doctor)
    backlog = 400
    with db.transaction() as cur:  # a flood already accepted: alerts and their outbox rows
        cur.execute("""
            INSERT INTO alerts (patient_id, alert_type, severity, category, room, occurred_at)
            SELECT p.patient_id, t.alert_type, t.severity, t.category, p.room, now()
            FROM generate_series(1, %s) n
            JOIN patients p ON p.patient_id = 'P00' || (1 + n %% 8)
            JOIN alert_types t ON t.alert_type = 'SENSOR_DISCONNECTED'
            RETURNING alert_id""", (backlog,))
        for row in cur.fetchall():
            enqueue(cur, [AlertMessage(alert_id=row["alert_id"], severity="LOW").outbox_row()])
    api = PlatformApi(services)
    wait_for(lambda: queue_depth(rabbitmq_url, "alerts.low") > backlog // 2, 20, 0.05,
             "the backlog to be on the low lane")
    incident = api.incident_of(api.post_alert("P002", "CARDIAC_ARREST"), timeout=20)
    assert incident["assignee"]["role"] == "EMERGENCY_DOCTOR"
    with db.transaction() as cur:
        cur.execute("""
            SELECT count(*) AS n FROM alerts a
            WHERE a.alert_type = 'SENSOR_DISCONNECTED'
              AND (EXISTS (SELECT 1 FROM incidents i WHERE i.alert_id = a.alert_id)
                   OR EXISTS (SELECT 1 FROM incident_alerts l WHERE l.alert_id = a.alert_id))""")
        handled_before = cur.fetchone()["n"]
    # Handled before the CRITICAL one: those handled while it was being posted, not the backlog.
    assert handled_before < backlog // 2, handled_before
