"""The alert pipeline under faults: several outbox relays at once, RabbitMQ down, an
incident-management process killed mid-stream."""
import threading

import pytest
import requests

from healthguard.broker import Publisher
from healthguard.outbox import OutboxRelay, OutboxRow, enqueue
from tests.support import ThrowawayRabbitMQ, drain_queue, wait_for


def drain(rabbitmq_url: str, queue: str) -> list[dict]:
    """Every message now on `queue`, removed from it, with its message id."""
    return [{"message_id": properties.message_id, **body}
            for body, properties in drain_queue(rabbitmq_url, queue)]


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


def test_outbox_relays_publish_each_message_once_with_several_copies(db, rabbitmq_url,
                                                                      relays):
    relays(rabbitmq_url, copies=3)

    def write(first):
        for n in range(first, first + 50):
            with db.transaction() as cur:
                enqueue(cur, [OutboxRow("alerts.low", f"test-{n}", {"n": n})])

    writers = [threading.Thread(target=write, args=(start,)) for start in (0, 50, 100, 150)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    wait_for(lambda: outbox_size(db) == 0, 20, what="the outbox to drain")
    received = drain(rabbitmq_url, "alerts.low")
    assert sorted(m["n"] for m in received) == list(range(200))  # each exactly once
    assert {m["message_id"] for m in received} == {f"test-{n}" for n in range(200)}


def test_outbox_relay_keeps_messages_while_broker_is_down_and_drains_after(db, relays):
    rabbit = ThrowawayRabbitMQ().start()
    try:
        relays(rabbit.url, copies=2)
        rabbit.stop()
        for n in range(10):
            with db.transaction() as cur:
                enqueue(cur, [OutboxRow("alerts.low", f"down-{n}", {"n": n})])
        # The relays tried and failed: the rows are kept, with their attempts counted.
        wait_for(lambda: _attempted(db), 20, what="a failed publish attempt")
        assert outbox_size(db) == 10
        rabbit.start()
        wait_for(lambda: outbox_size(db) == 0, 60, 0.2, "the outbox to drain after the restart")
        assert sorted(m["n"] for m in drain(rabbit.url, "alerts.low")) == list(range(10))
    finally:
        rabbit.destroy()


def _attempted(db) -> bool:
    with db.transaction() as cur:
        cur.execute("SELECT coalesce(max(attempts), 0) AS n FROM outbox")
        return cur.fetchone()["n"] > 0


DEVICE_KEY = "test-device-key"


def post_alert(ingestion, patient_id="P001", alert_type="CARDIAC_ARREST") -> int:
    response = requests.post(ingestion.url + "/api/v1/alerts", headers={"X-API-Key": DEVICE_KEY},
                             json={"patient_id": patient_id, "alert_type": alert_type}, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["alert_id"]


# These tests stream alarms from one device key as fast as they can, faster than a bedside
# device's flood limit (50 a second): raise it, the limit is test_alert_ingestion's subject.
STREAMING = {"DEVICE_ALERTS_PER_SECOND": "100000"}


def incidents_by_alert(db) -> dict:
    """alert_id -> (number of incidents it belongs to, their statuses, and of its incident: AUTO
    assignments, CREATED and ASSIGNED history rows, and whether every alert correlated into it
    as a repeat has its ALERT_CORRELATED row and is counted in alert_count)."""
    with db.transaction() as cur:
        cur.execute("""
            WITH belongs AS (
                SELECT alert_id, incident_id FROM incidents
                UNION ALL
                SELECT alert_id, incident_id FROM incident_alerts)
            SELECT a.alert_id, count(b.incident_id) AS incidents, array_agg(i.status) AS statuses,
                   max((SELECT count(*) FROM incident_assignments s
                         WHERE s.incident_id = b.incident_id AND s.reason = 'AUTO')) AS auto_assignments,
                   max((SELECT count(*) FROM incident_history h
                         WHERE h.incident_id = b.incident_id AND h.action = 'CREATED')) AS created_rows,
                   max((SELECT count(*) FROM incident_history h
                         WHERE h.incident_id = b.incident_id AND h.action = 'ASSIGNED')) AS assigned_rows,
                   bool_and(i.alert_count = 1 + (SELECT count(*) FROM incident_alerts l
                                                  WHERE l.incident_id = b.incident_id)
                            AND i.alert_count = 1 + (SELECT count(*) FROM incident_history h
                                                     WHERE h.incident_id = b.incident_id
                                                       AND h.action = 'ALERT_CORRELATED')) AS repeats_counted
            FROM alerts a
            LEFT JOIN belongs b USING (alert_id)
            LEFT JOIN incidents i ON i.incident_id = b.incident_id
            GROUP BY a.alert_id
        """)
        return {row["alert_id"]: row for row in cur.fetchall()}


def all_assigned(db, alert_ids) -> bool:
    rows = incidents_by_alert(db)
    return all(a in rows and rows[a]["statuses"] == ["ASSIGNED"] for a in alert_ids)


def assert_exactly_one_incident_each(db, alert_ids):
    """Each accepted alert belongs to exactly one assigned incident: the one opened for it, or the
    one it repeated (correlated into, counted and recorded once)."""
    rows = incidents_by_alert(db)
    assert sorted(rows) == sorted(alert_ids)  # nothing stored that was not accepted, nothing lost
    for alert_id in alert_ids:
        row = rows[alert_id]
        assert (row["incidents"], row["statuses"]) == (1, ["ASSIGNED"]), row
        assert (row["auto_assignments"], row["created_rows"], row["assigned_rows"]) == (1, 1, 1), row
        assert row["repeats_counted"], row


def test_alerts_accepted_while_rabbitmq_is_down_each_become_one_incident(start_service, login_as, db):
    rabbit = ThrowawayRabbitMQ().start()
    try:
        oncall = start_service("oncall")
        ingestion = start_service("alert-ingestion", env={"RABBITMQ_URL": rabbit.url, **STREAMING})
        start_service("incident-management", env={
            "RABBITMQ_URL": rabbit.url, "ONCALL_URL": oncall.url, "ASSIGNMENT_RETRY_SECONDS": "0.5"})
        login_as("S01")
        login_as("S02")
        accepted = [post_alert(ingestion)]
        wait_for(lambda: all_assigned(db, accepted), 15, 0.1, "the first alert to be assigned")
        # Its notification event goes out through the outbox too: let it leave first.
        wait_for(lambda: outbox_size(db) == 0, 15, 0.1, "the first alert's events to be published")
        rabbit.stop()
        accepted += [post_alert(ingestion, patient, "HEART_RATE_HIGH")  # each answers 201
                     for patient in ("P001", "P002", "P003", "P004", "P005") * 2]
        assert outbox_size(db) == 10  # kept, to be published when the broker is back

        rabbit.start()
        wait_for(lambda: all_assigned(db, accepted) and outbox_size(db) == 0, 90, 0.2,
                 "every alert accepted during the outage to become an assigned incident")
        assert_exactly_one_incident_each(db, accepted)
    finally:
        rabbit.destroy()


def test_incident_management_killed_mid_stream_then_two_copies_make_one_incident_per_alert(
        start_service, login_as, db):
    oncall = start_service("oncall")
    ingestion = start_service("alert-ingestion", workers=2, env=STREAMING)
    env = {"ONCALL_URL": oncall.url, "ASSIGNMENT_RETRY_SECONDS": "0.5"}
    first = start_service("incident-management", env=env)
    for specialist in ("S01", "S02", "S05", "S06"):
        login_as(specialist)

    accepted = []

    def post_stream():
        for n in range(80):
            accepted.append(post_alert(ingestion, ("P001", "P004")[n % 2],
                                       ("ST_ELEVATION_DETECTED", "STROKE_SUSPECTED")[n % 2]))

    poster = threading.Thread(target=post_stream)
    poster.start()
    try:
        wait_for(lambda: sum(r["incidents"] for r in incidents_by_alert(db).values()) >= 15, 30, 0.02,
                 "incident management to be handling the stream")
        first.kill()  # SIGKILL mid-stream: open transactions and unacked deliveries are abandoned
    finally:
        poster.join()
    # Killed mid-stream: with no consumer left, alerts accepted since wait without an incident.
    assert not all_assigned(db, accepted)
    start_service("incident-management", env=env)
    start_service("incident-management", env=env, workers=2)  # and a second copy beside it
    wait_for(lambda: all_assigned(db, accepted), 90, 0.2, "every accepted alert to become an incident")
    assert len(accepted) == 80
    assert_exactly_one_incident_each(db, accepted)
