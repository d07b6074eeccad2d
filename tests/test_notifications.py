"""The notification service's stored side: what the queue consumer keeps or dead-letters, and the
REST history and read state, each clinician seeing only their own."""
import json
import re
import uuid

import pika
import pytest
import requests

from healthguard.broker import Publisher, declare_durable_queue
from notification.app import create_app
from tests.api_contract import checked_document, fuzz
from tests.reach_edges import vapid_key_pair
from tests.support import publish, wait_for

SERVICE_ENV = {"GUNICORN_THREADS": "16"}


@pytest.fixture
def notification(start_service):
    return start_service("notification", env=SERVICE_ENV)


@pytest.fixture
def make_notification(db):
    """Store a notification directly, as the consumer would have."""
    def make(employee_id, *, title="Cardiac arrest in room 312", read=False, event_type="INCIDENT_ASSIGNED"):
        with db.transaction() as cur:
            cur.execute("""
                INSERT INTO notifications (event_id, employee_id, type, title, message, severity, data,
                                           read_at)
                VALUES (%s, %s, %s, %s, 'please respond', 'CRITICAL', '{"room": "312"}',
                        CASE WHEN %s THEN now() END)
                RETURNING notification_id""", (uuid.uuid4().hex, employee_id, event_type, title, read))
            return cur.fetchone()["notification_id"]
    return make


def api(service, token, method, path, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, service.url + "/api/v1/notifications" + path, headers=headers,
                            timeout=10, **kwargs)


def test_history_lists_only_the_callers_own_notifications(notification, login_as, make_notification):
    mine = [make_notification("N01", title=f"alarm {i}", read=(i == 0)) for i in range(5)]
    make_notification("N02", title="not for N01")
    token = login_as("N01")

    page = api(notification, token, "GET", "")
    assert page.status_code == 200
    body = page.json()
    assert [n["id"] for n in body["notifications"]] == mine[::-1]  # newest first
    assert {n["employee_id"] for n in body["notifications"]} == {"N01"}
    assert body["unread_count"] == 4 and body["has_more"] is False
    first = body["notifications"][-1]
    assert first["title"] == "alarm 0" and first["read_at"] is not None and first["data"] == {"room": "312"}

    unread = api(notification, token, "GET", "?unread=true").json()
    assert [n["id"] for n in unread["notifications"]] == mine[:0:-1]

    catching_up = api(notification, token, "GET", f"?after_id={mine[1]}&limit=2").json()
    assert [n["id"] for n in catching_up["notifications"]] == mine[2:4]  # oldest first from there
    assert catching_up["has_more"] is True


@pytest.mark.parametrize("query", ["?limit=0", "?limit=201", "?limit=ten", "?after_id=-1",
                                   "?after_id=99999999999999999999", "?unread=maybe"])
def test_history_refuses_malformed_parameters(notification, login_as, query):
    answer = api(notification, login_as("N01"), "GET", query)
    assert answer.status_code == 400
    assert answer.json()["error"] == "Bad Request"
    assert answer.json()["field"] == query[1:].split("=")[0]  # `field`, as in every service


def test_reading_marks_only_the_callers_own(notification, login_as, make_notification, db):
    mine, other, theirs = make_notification("D01"), make_notification("D01"), make_notification("D02")
    token = login_as("D01")

    read = api(notification, token, "PATCH", f"/{mine}/read")
    assert read.status_code == 200
    assert read.json()["notification"]["read_at"] is not None and read.json()["unread_count"] == 1
    again = api(notification, token, "PATCH", f"/{mine}/read")  # idempotent: first read time kept
    assert again.json()["notification"]["read_at"] == read.json()["notification"]["read_at"]

    for missing in (theirs, 999999, 2**70):  # someone else's looks exactly like no notification
        answer = api(notification, token, "PATCH", f"/{missing}/read")
        assert answer.status_code == 404 and answer.json()["error"] == "Not Found"
    with db.transaction() as cur:
        cur.execute("SELECT read_at FROM notifications WHERE notification_id = %s", (theirs,))
        assert cur.fetchone()["read_at"] is None

    newer = make_notification("D01")
    partial = api(notification, token, "POST", "/read-all", json={"up_to_id": other})
    assert partial.json() == {"marked_read": 1, "unread_count": 1}  # `newer` arrived after the list
    everything = api(notification, token, "POST", "/read-all")
    assert everything.json() == {"marked_read": 1, "unread_count": 0}
    assert api(notification, login_as("D02"), "GET", "").json()["unread_count"] == 1
    assert api(notification, token, "GET", f"?after_id={newer - 1}").json()["notifications"][0]["read_at"]
    bad = api(notification, token, "POST", "/read-all", json={"up_to_id": "soon"})
    assert bad.status_code == 400 and bad.json()["field"] == "up_to_id"
    not_an_object = api(notification, token, "POST", "/read-all", json=[1])
    assert not_an_object.status_code == 400


def test_only_signed_in_clinicians_use_the_routes(notification, login_as, service_env, make_notification):
    nid = make_notification("N01")
    for method, path in (("GET", ""), ("PATCH", f"/{nid}/read"), ("POST", "/read-all")):
        assert api(notification, None, method, path).status_code == 401
        assert api(notification, "not-a-session", method, path).status_code == 401
        as_service = api(notification, service_env["SERVICE_TOKEN"], method, path)
        assert as_service.status_code == 403 and as_service.json()["error"] == "Forbidden"


def test_events_are_stored_per_recipient_and_bad_ones_dead_lettered(
        notification, rabbitmq_url, db, login_as):
    publisher = Publisher(rabbitmq_url)
    good = {"event_id": uuid.uuid4().hex, "type": "INCIDENT_ESCALATED", "recipients": ["D01", "D02"],
            "incident_id": None, "title": "Escalated", "message": "nobody acknowledged", "severity": "HIGH",
            "data": {"status": "ASSIGNED"}, "occurred_at": "2026-02-01T10:00:00Z"}
    bad = {
        "unknown employee": {**good, "event_id": uuid.uuid4().hex, "recipients": ["D01", "X99"]},
        "unknown type": {**good, "event_id": uuid.uuid4().hex, "type": "INCIDENT_EXPLODED"},
        "no title": {**good, "event_id": uuid.uuid4().hex, "title": ""},
        "unknown incident": {**good, "event_id": uuid.uuid4().hex, "incident_id": 424242},
        "newer version": {**good, "event_id": uuid.uuid4().hex, "schema_version": 2},
    }
    try:
        for event in [*bad.values(), good]:
            publish(publisher, "notifications", event, message_id=event["event_id"])
        wait_for(lambda: len(dead_letters(rabbitmq_url)) == len(bad), 15, what="dead letters")
        wait_for(lambda: api(notification, login_as("D02"), "GET", "").json()["unread_count"] == 1, 10,
                 what="the good event stored")
    finally:
        publisher.close()
    reasons = {json.loads(body)["event_id"]: headers["x-dead-letter-reason"]
               for headers, body in dead_letters(rabbitmq_url)}
    assert "X99" in reasons[bad["unknown employee"]["event_id"]]
    assert "INCIDENT_EXPLODED" in reasons[bad["unknown type"]["event_id"]]
    assert "title" in reasons[bad["no title"]["event_id"]]
    assert "424242" in reasons[bad["unknown incident"]["event_id"]]
    assert "schema version 2" in reasons[bad["newer version"]["event_id"]]
    with db.transaction() as cur:
        cur.execute("SELECT employee_id, type, title FROM notifications ORDER BY employee_id")
        assert cur.fetchall() == [{"employee_id": "D01", "type": "INCIDENT_ESCALATED", "title": "Escalated"},
                                  {"employee_id": "D02", "type": "INCIDENT_ESCALATED", "title": "Escalated"}]
    metrics = requests.get(notification.url + "/metrics", timeout=5).text
    assert re.search(r'notifications_sent_total\{channel="store",status="stored"\} 2\.0', metrics)
    assert re.search(r'notifications_sent_total\{channel="store",status="rejected"\} [1-9]', metrics)
    assert "notification_push_latency_seconds_bucket" in metrics
    assert re.search(r"^websocket_connections(\{[^}]*\})? 0\.0$", metrics, re.M)


def dead_letters(rabbitmq_url):
    """Peek at notifications.dead: (headers, body) of each message, all left in place."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        channel = connection.channel()
        declare_durable_queue(channel, "notifications.dead")
        seen = []
        while True:
            method, properties, body = channel.basic_get("notifications.dead")
            if method is None:
                break
            seen.append((properties.headers or {}, body))
        channel.close()  # unacknowledged: back on the queue
        return seen
    finally:
        connection.close()


@pytest.fixture
def app(service_env):
    """The service in-process (WSGI), on the run's database."""
    app = create_app(dict(service_env))
    yield app
    app.extensions["healthguard"].db.close()


def test_openapi_document_is_valid_and_names_every_route_but_the_websocket(app):
    document = checked_document(app, also_undocumented=("/ws",))
    assert "/ws" not in document["paths"]


VAPID_PRIVATE, VAPID_PUBLIC = vapid_key_pair()
# The off-tab reach's operations a generated request hardly ever gets through: it names no
# incident, no verification code, no issued token, no valid address; the methods here are
# badges, which no channel sends yet (409 to a test). tests/test_reach.py runs each for real.
REACH_REFUSED_WHEN_GENERATED = {
    "POST /api/v1/contact-methods", "POST /api/v1/contact-methods/{contact_method_id}/verify",
    "POST /api/v1/contact-methods/{contact_method_id}/test", "GET /api/v1/deliveries",
    "POST /api/v1/channel-ack",
}


def test_schema_valid_requests_are_accepted_and_answers_match_the_document(service_env, start_service, db,
                                                                          login_as, make_notification):
    oncall = start_service("oncall")  # reachability asks it who is on the rota
    app = create_app({**service_env, "ONCALL_URL": oncall.url, "VAPID_PRIVATE_KEY": VAPID_PRIVATE,
                      "VAPID_PUBLIC_KEY": VAPID_PUBLIC, "VAPID_SUBJECT": "mailto:ops@hospital.example"})
    try:
        ids = [make_notification("D01", read=(i == 0)) for i in range(3)] + [make_notification("D02")]
        with db.transaction() as cur:
            cur.execute("""INSERT INTO contact_methods (employee_id, kind, address, verified_at, created_at)
                           SELECT 'D01', 'badge', 'badge-' || n, now(), now() FROM generate_series(1, 20) n
                           RETURNING contact_method_id""")
            methods = [row["contact_method_id"] for row in cur.fetchall()]
        answered = fuzz(app, headers={"Authorization": f"Bearer {login_as('D01')}"},
                        known_ids={"notification_id": ids, "contact_method_id": methods,
                                   "role": ["EMERGENCY_DOCTOR", "NURSE"]})
    finally:
        app.extensions["healthguard"].db.close()
    assert set(answered) == {"GET /api/v1/notifications", "POST /api/v1/notifications/read-all",
                             "PATCH /api/v1/notifications/{notification_id}/read", "POST /api/v1/ws-ticket",
                             "GET /api/v1/preferences/me", "GET /api/v1/preferences/hospital",
                             "POST /api/v1/preferences/me/background-alerts-not-now",
                             "GET /api/v1/contact-methods",
                             "DELETE /api/v1/contact-methods/{contact_method_id}",
                             "POST /api/v1/contact-methods/{contact_method_id}/test",
                             "GET /api/v1/push/vapid-public-key", "GET /api/v1/notification-rules",
                             "PUT /api/v1/notification-rules",
                             "GET /api/v1/notification-rules/defaults/{role}",
                             "PUT /api/v1/notification-rules/defaults/{role}", "GET /api/v1/reachability",
                             "GET /api/v1/reachability/me", *REACH_REFUSED_WHEN_GENERATED}
    succeeded = {label for label, statuses in answered.items() if any(200 <= s < 300 for s in statuses)}
    assert set(answered) - succeeded <= REACH_REFUSED_WHEN_GENERATED, answered

