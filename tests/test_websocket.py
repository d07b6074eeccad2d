"""The notification service's push path: events on the `notifications` queue reach the right
clinicians' open WebSockets, exactly once, after reconnects, across two instances, and stop at
logout. Real RabbitMQ, PostgreSQL, gunicorn and WebSocket clients throughout."""
import json
import re
import struct
import threading
import uuid
from urllib.parse import urlencode

import pytest
import requests
import websocket

from healthguard.broker import Publisher
from tests import support
from tests.support import wait_for

# Enough threads for the sockets of a test (each open socket holds one); quick session checks.
SERVICE_ENV = {"GUNICORN_THREADS": "48", "WS_SESSION_CHECK_SECONDS": "0.5"}


class SocketClosed(Exception):
    pass


class Client:
    """A clinician's browser tab: one WebSocket, every frame it received kept in order."""

    def __init__(self, service, token=None, *, via_header=False, last_id=None, timeout=10):
        params = {}
        if token and not via_header:
            params["ticket"] = socket_ticket(service, token)
        if last_id is not None:
            params["last_id"] = last_id
        url = f"ws://127.0.0.1:{service.port}/ws" + ("?" + urlencode(params) if params else "")
        header = [f"Authorization: Bearer {token}"] if via_header else None
        self.ws = websocket.create_connection(url, timeout=timeout, header=header)
        self.frames = []
        self.close_code = None

    def read_until(self, predicate, what="frames"):
        """Read (pings answered and skipped) until predicate(self.frames) holds."""
        while not predicate(self.frames):
            opcode, frame = self.ws.recv_data_frame()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                self.close_code = struct.unpack("!H", frame.data[:2])[0] if len(frame.data) >= 2 else None
                raise SocketClosed(f"socket closed ({self.close_code}) while waiting for {what}")
            message = json.loads(frame.data)
            if message["type"] != "ping":
                self.frames.append(message)
        return self.frames

    def wait_closed(self):
        """Read until the server closes the socket; its close code if it sent one."""
        try:
            self.read_until(lambda frames: False, "the close")
        except (SocketClosed, websocket.WebSocketConnectionClosedException, OSError):
            return self.close_code

    def notifications(self):
        return [f for f in self.frames if f["type"] == "notification"]

    def notification_ids(self):
        return [f["id"] for f in self.notifications()]

    def has_event(self, event_id, kind="notification"):
        return lambda frames: any(f.get("event_id") == event_id and f["type"] == kind for f in frames)

    def send(self, message):
        self.ws.send(json.dumps(message))

    def close(self):
        try:
            self.ws.close(timeout=1)
        except (websocket.WebSocketException, OSError):
            pass  # already closed by the server


def socket_ticket(service, token) -> str:
    """What the SPA does before opening a socket: trade the session for a one-time ticket."""
    answer = requests.post(f"http://127.0.0.1:{service.port}/api/v1/ws-ticket",
                           headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert answer.status_code == 201, answer.text
    return answer.json()["ticket"]


@pytest.fixture
def clients():
    """Open clients, all closed after the test (before the services stop)."""
    opened = []

    def open_client(*args, **kwargs):
        client = Client(*args, **kwargs)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()


@pytest.fixture
def publisher(rabbitmq_url):
    publisher = Publisher(rabbitmq_url)
    yield publisher
    publisher.close()


@pytest.fixture
def incident(db):
    """An incident row (notifications.incident_id refers to one)."""
    def make(*, severity="CRITICAL", patient_id="P001"):
        with db.transaction() as cur:
            cur.execute("""
                INSERT INTO alerts (patient_id, alert_type, severity, category, room, occurred_at)
                SELECT p.patient_id, t.alert_type, t.severity, t.category, p.room, now()
                FROM patients p, alert_types t WHERE p.patient_id = %s AND t.alert_type = 'CARDIAC_ARREST'
                RETURNING alert_id, room""", (patient_id,))
            alert = cur.fetchone()
            cur.execute("""
                INSERT INTO incidents (alert_id, patient_id, alert_type, severity, category, room, title,
                                       status)
                VALUES (%s, %s, 'CARDIAC_ARREST', %s, 'CARDIAC', %s, 'Cardiac arrest', 'ASSIGNED')
                RETURNING incident_id""", (alert["alert_id"], patient_id, severity, alert["room"]))
            return cur.fetchone()["incident_id"]
    return make


def incident_event(recipients, incident_id, *, event_type="INCIDENT_ASSIGNED", event_id=None,
                   status="ASSIGNED", title="Cardiac arrest in room 312", **data):
    return {
        "event_id": event_id or uuid.uuid4().hex,
        "type": event_type,
        "recipients": list(recipients),
        "incident_id": incident_id,
        "title": title,
        "message": f"{title}: please respond",
        "severity": "CRITICAL",
        "data": {"status": status, "patient_id": "P001", "room": "312", "alert_type": "CARDIAC_ARREST",
                 "assigned_to": recipients[0] if recipients else None, **data},
        "occurred_at": "2026-02-01T10:00:00+00:00",
    }


def publish(publisher, event):
    support.publish(publisher, "notifications", event, message_id=event["event_id"])
    return event


def stored_count(db, *, employee_id=None, event_id=None):
    with db.transaction() as cur:
        cur.execute("""
            SELECT count(*) AS n FROM notifications
            WHERE (%(employee_id)s::text IS NULL OR employee_id = %(employee_id)s)
              AND (%(event_id)s::text IS NULL OR event_id = %(event_id)s)""",
                    {"employee_id": employee_id, "event_id": event_id})
        return cur.fetchone()["n"]


def stored_ids(db, employee_id):
    with db.transaction() as cur:
        cur.execute("SELECT notification_id FROM notifications WHERE employee_id = %s ORDER BY 1",
                    (employee_id,))
        return [row["notification_id"] for row in cur.fetchall()]


def sockets_open(service) -> float:
    text = requests.get(service.url + "/metrics", timeout=5).text
    match = re.search(r"^websocket_connections(?:\{[^}]*\})? ([0-9.e+-]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_an_assignment_reaches_both_sockets_of_the_assignee_and_nobody_else(
        start_service, login_as, clients, publisher, incident, db):
    service = start_service("notification", env=SERVICE_ENV)
    d01 = login_as("D01")
    tab = clients(service, d01)                        # a browser: token in the URL
    tablet = clients(service, d01, via_header=True)    # a native client: Authorization header
    colleague = clients(service, login_as("D02"))
    wait_for(lambda: sockets_open(service) == 3, 10, what="three sockets registered")
    incident_id = incident()

    event = publish(publisher, incident_event(["D01"], incident_id))

    for client in (tab, tablet):
        client.read_until(lambda frames: len(frames) >= 2, "the notification and the incident update")
        note, update = client.frames
        assert note["type"] == "notification" and note["event_type"] == "INCIDENT_ASSIGNED"
        assert note["incident_id"] == incident_id and note["employee_id"] == "D01"
        assert note["title"] == event["title"] and note["severity"] == "CRITICAL"
        assert note["data"]["room"] == "312" and note["read_at"] is None
        assert update == {**update, "type": "incident_updated", "incident_id": incident_id,
                          "status": "ASSIGNED", "assigned_to": "D01", "event_type": "INCIDENT_ASSIGNED"}
    assert tab.frames[0]["id"] == tablet.frames[0]["id"] == stored_ids(db, "D01")[0]

    # D02's dashboard learns that the incident changed, but never sees D01's notification: the
    # next notification D02 receives is the one addressed to D02.
    colleague.read_until(lambda frames: len(frames) >= 1)
    assert colleague.frames[0]["type"] == "incident_updated"
    mine = publish(publisher, incident_event(["D02"], incident_id, event_type="INCIDENT_REASSIGNED"))
    colleague.read_until(colleague.has_event(mine["event_id"]))
    assert [n["event_id"] for n in colleague.notifications()] == [mine["event_id"]]
    assert stored_count(db, employee_id="D01") == 1 and stored_count(db, employee_id="D02") == 1


def test_the_handshake_refuses_a_missing_invalid_expired_or_revoked_token(
        start_service, login_as, db, service_env):
    service = start_service("notification", env=SERVICE_ENV)
    expired = login_as("N01", expires_in="-1 minute")
    revoked = login_as("N02")
    with db.transaction() as cur:
        cur.execute("UPDATE sessions SET revoked_at = now() WHERE employee_id = 'N02'")
    url = f"ws://127.0.0.1:{service.port}/ws"
    refused = {
        "no token": (url, None),
        "unknown ticket": (url + "?ticket=not-a-ticket", None),
        "expired": (url, [f"Authorization: Bearer {expired}"]),
        "revoked": (url, [f"Authorization: Bearer {revoked}"]),
        "the service token": (url, [f"Authorization: Bearer {service_env['SERVICE_TOKEN']}"]),
    }
    for case, (address, header) in refused.items():
        with pytest.raises(websocket.WebSocketBadStatusException) as refusal:
            websocket.create_connection(address, header=header, timeout=5)
        assert refusal.value.status_code == 401, case
        assert json.loads(refusal.value.resp_body)["error"] == "Unauthorized", case

    with pytest.raises(websocket.WebSocketBadStatusException) as bad:
        websocket.create_connection(url + f"?ticket={socket_ticket(service, login_as('N03'))}&last_id=-4",
                                    timeout=5)
    assert bad.value.status_code == 400 and json.loads(bad.value.resp_body)["field"] == "last_id"
    not_upgraded = requests.get(url.replace("ws://", "http://"), timeout=5)
    assert not_upgraded.status_code in (400, 401)
    assert not_upgraded.headers["Content-Type"].startswith("application/json")
    assert sockets_open(service) == 0


def refusal_status(address, header=None) -> int:
    with pytest.raises(websocket.WebSocketBadStatusException) as refusal:
        websocket.create_connection(address, header=header, timeout=5)
    return refusal.value.status_code


def test_a_ticket_opens_one_socket_once_on_any_instance_and_expires(
        start_service, login_as, clients, clock, db):
    first = start_service("notification", env=SERVICE_ENV)
    second = start_service("notification", env=SERVICE_ENV)
    token = login_as("D01")

    ticket = socket_ticket(first, token)
    with db.transaction() as cur:  # only its hash is stored
        cur.execute("SELECT count(*) AS n FROM socket_tickets WHERE ticket_hash = encode(sha256(%s), 'hex')",
                    (ticket.encode(),))
        assert cur.fetchone()["n"] == 1
        cur.execute("SELECT count(*) AS n FROM socket_tickets WHERE ticket_hash = %s", (ticket,))
        assert cur.fetchone()["n"] == 0
    opened = websocket.create_connection(f"ws://127.0.0.1:{first.port}/ws?ticket={ticket}", timeout=5)
    wait_for(lambda: sockets_open(first) == 1, 10, what="the socket registered")
    # Spent: neither instance opens a second socket with it.
    for instance in (first, second):
        assert refusal_status(f"ws://127.0.0.1:{instance.port}/ws?ticket={ticket}") == 401
    opened.close()

    late = socket_ticket(second, token)
    clock.advance(31)
    assert refusal_status(f"ws://127.0.0.1:{second.port}/ws?ticket={late}") == 401
    fresh = socket_ticket(second, token)  # a new one after the expiry works
    websocket.create_connection(f"ws://127.0.0.1:{second.port}/ws?ticket={fresh}", timeout=5).close()


def test_a_session_token_in_the_url_is_refused_even_when_valid(start_service, login_as, service_env):
    service = start_service("notification", env=SERVICE_ENV)
    token = login_as("D01")
    url = f"ws://127.0.0.1:{service.port}/ws"
    assert refusal_status(f"{url}?token={token}") == 401
    with pytest.raises(websocket.WebSocketBadStatusException) as refusal:  # also beside a good ticket
        websocket.create_connection(f"{url}?ticket={socket_ticket(service, token)}&token={token}", timeout=5)
    assert json.loads(refusal.value.resp_body)["field"] == "token"
    # The service token is not a clinician: it gets no ticket.
    answer = requests.post(f"http://127.0.0.1:{service.port}/api/v1/ws-ticket",
                           headers={"Authorization": f"Bearer {service_env['SERVICE_TOKEN']}"}, timeout=5)
    assert answer.status_code == 403
    assert requests.post(f"http://127.0.0.1:{service.port}/api/v1/ws-ticket", timeout=5).status_code == 401
    assert sockets_open(service) == 0


def test_a_ticket_of_a_session_signed_out_since_opens_nothing(start_service, login_as, db):
    service = start_service("notification", env=SERVICE_ENV)
    token = login_as("N01")
    ticket = socket_ticket(service, token)
    with db.transaction() as cur:
        cur.execute("UPDATE sessions SET revoked_at = now() WHERE token_hash = encode(sha256(%s), 'hex')",
                    (token.encode(),))
    assert refusal_status(f"ws://127.0.0.1:{service.port}/ws?ticket={ticket}") == 401


def test_a_reconnecting_client_gets_what_it_missed_in_order_then_live_ones_without_doubles(
        start_service, login_as, clients, publisher, incident, db):
    service = start_service("notification", env=SERVICE_ENV)
    token = login_as("N01")
    incident_id = incident()
    first = clients(service, token)
    wait_for(lambda: sockets_open(service) == 1, 10, what="the socket registered")
    seen = publish(publisher, incident_event(["N01"], incident_id))
    first.read_until(first.has_event(seen["event_id"]))
    last_id = first.notification_ids()[-1]
    first.close()

    # While away: three notifications.
    for _ in range(3):
        publish(publisher, incident_event(["N01"], incident_id, event_type="INCIDENT_ESCALATED"))
    wait_for(lambda: stored_count(db, employee_id="N01") == 4, 10, what="the missed ones stored")

    # Reconnect with the last id seen, while more keep arriving.
    more = [incident_event(["N01"], incident_id, event_type="INCIDENT_NOTE_ADDED") for _ in range(10)]
    sender = threading.Thread(target=lambda: [publish(publisher, e) for e in more])
    sender.start()
    again = clients(service, token, last_id=last_id)
    sender.join()
    again.read_until(again.has_event(more[-1]["event_id"]), "the last live notification")
    wait_for(lambda: stored_count(db, employee_id="N01") == 14, 10, what="all stored")

    expected = [i for i in stored_ids(db, "N01") if i > last_id]
    assert again.notification_ids() == expected  # every one, once, in order
    replayed = [n for n in again.notifications() if n.get("replay")]
    assert [n["id"] for n in replayed] == expected[:len(replayed)] and len(replayed) >= 3

    # A client may also ask after connecting: {"type": "resume", "last_id": N}.
    third = clients(service, token)
    third.send({"type": "resume", "last_id": expected[-3]})
    third.read_until(lambda frames: len([f for f in frames if f["type"] == "notification"]) >= 2)
    assert third.notification_ids() == expected[-2:]


def test_a_redelivered_event_is_stored_and_pushed_once(
        start_service, login_as, clients, publisher, incident, db):
    service = start_service("notification", env=SERVICE_ENV)
    client = clients(service, login_as("S01"))
    wait_for(lambda: sockets_open(service) == 1, 10, what="the socket registered")
    incident_id = incident()
    event = incident_event(["S01"], incident_id)
    publish(publisher, event)
    publish(publisher, event)  # the same event again, as after a crash before the ack
    sentinel = publish(publisher, incident_event(["S01"], incident_id, event_type="INCIDENT_RESOLVED",
                                                 status="RESOLVED"))
    client.read_until(client.has_event(sentinel["event_id"], "incident_updated"))
    assert [n["event_id"] for n in client.notifications()] == [event["event_id"], sentinel["event_id"]]
    updates = [f["event_id"] for f in client.frames if f["type"] == "incident_updated"]
    assert sorted(updates) == sorted([event["event_id"], sentinel["event_id"]])
    assert stored_count(db, event_id=event["event_id"]) == 1


def test_two_instances_deliver_every_notification_exactly_once_to_every_socket(
        start_service, login_as, clients, publisher, incident, db):
    first = start_service("notification", env=SERVICE_ENV)
    second = start_service("notification", env=SERVICE_ENV)
    d01, n01 = login_as("D01"), login_as("N01")
    sockets = {
        "D01": [clients(first, d01), clients(second, d01)],
        "N01": [clients(first, n01), clients(second, n01, via_header=True)],
    }
    wait_for(lambda: sockets_open(first) == 2 and sockets_open(second) == 2, 10, what="sockets registered")
    incident_id = incident()
    events = [incident_event(recipients, incident_id)
              for recipients in (["D01"], ["N01"], ["D01", "N01"]) * 5]
    for event in events:
        publish(publisher, event)
    wait_for(lambda: stored_count(db) == 20, 15, what="all 20 notifications stored")
    # Announcements leave in id order: once the sentinel arrives, everything before it has.
    sentinel = publish(publisher, incident_event(["D01", "N01"], incident_id, event_type="INCIDENT_RESOLVED"))

    for pair in sockets.values():
        for client in pair:
            client.read_until(client.has_event(sentinel["event_id"], "incident_updated"))
    for employee_id, pair in sockets.items():
        expected = stored_ids(db, employee_id)
        assert len(expected) == 11
        for client in pair:
            assert client.notification_ids() == expected  # each once, in order
            updates = [f["event_id"] for f in client.frames if f["type"] == "incident_updated"]
            assert sorted(updates) == sorted(e["event_id"] for e in [*events, sentinel])
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n, count(DISTINCT (event_id, employee_id)) AS distinct_n "
                    "FROM notifications")
        assert cur.fetchone() == {"n": 22, "distinct_n": 22}


def test_logout_closes_that_sessions_sockets_and_only_those(
        start_service, login_as, clients, publisher, incident, db):
    service = start_service("notification", env=SERVICE_ENV)
    phone_token, desk_token = login_as("D03"), login_as("D03")
    phone = [clients(service, phone_token), clients(service, phone_token)]
    desk = clients(service, desk_token)
    wait_for(lambda: sockets_open(service) == 3, 10, what="sockets registered")

    with db.transaction() as cur:  # what the on-call service's logout does
        cur.execute("UPDATE sessions SET revoked_at = now() WHERE token_hash = encode(sha256(%s), 'hex')",
                    (phone_token.encode(),))

    assert [client.wait_closed() for client in phone] == [4401, 4401]
    event = publish(publisher, incident_event(["D03"], incident()))
    desk.read_until(desk.has_event(event["event_id"]))  # the other session still receives
    wait_for(lambda: sockets_open(service) == 1, 10, what="the closed sockets unregistered")
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(f"ws://127.0.0.1:{service.port}/ws",
                                    header=[f"Authorization: Bearer {phone_token}"], timeout=5)
    refused = requests.post(f"http://127.0.0.1:{service.port}/api/v1/ws-ticket",
                            headers={"Authorization": f"Bearer {phone_token}"}, timeout=5)
    assert refused.status_code == 401


def test_a_client_that_stops_answering_pings_is_dropped(start_service, login_as, clients):
    service = start_service("notification", env={**SERVICE_ENV, "WS_PING_SECONDS": "0.5"})
    silent = clients(service, login_as("E01"))  # never reads, so never answers a ping
    wait_for(lambda: sockets_open(service) == 1, 10, what="the socket registered")
    wait_for(lambda: sockets_open(service) == 0, 15, what="the silent socket dropped")
    silent.wait_closed()


def test_a_sixth_socket_of_one_session_closes_the_oldest_with_4409(
        start_service, login_as, clients, publisher, incident):
    service = start_service("notification", env=SERVICE_ENV)
    token, other_session = login_as("D02"), login_as("D02")
    tabs = []
    for n in range(5):
        tabs.append(clients(service, token))
        wait_for(lambda n=n: sockets_open(service) == n + 1, 10, what="the socket registered")
    elsewhere = clients(service, other_session)  # the same clinician's other session is its own
    wait_for(lambda: sockets_open(service) == 6, 10, what="the other session's socket registered")

    tabs.append(clients(service, token))  # the sixth of this session
    assert tabs[0].wait_closed() == 4409
    wait_for(lambda: sockets_open(service) == 6, 10, what="the oldest unregistered")
    tabs.append(clients(service, token))  # and a seventh closes the next oldest
    assert tabs[1].wait_closed() == 4409
    # The five newest of the session and the other session's socket all still receive.
    event = publish(publisher, incident_event(["D02"], incident()))
    for client in [*tabs[2:], elsewhere]:
        client.read_until(client.has_event(event["event_id"]))
    assert sockets_open(service) == 6


def test_resumes_from_zero_replay_one_page_each_at_a_bounded_rate_and_page_back_through_more(
        start_service, login_as, clients, db):
    """Ten resume frames from last_id 0 over 5,000 stored notifications returned 50,000 frames
    (issue 17, finding 6): now a replay is the newest 200 with a `more` frame for the rest, a
    notification already sent on the socket is not sent again, and resumes past a burst of five
    get an error frame saying when to try again."""
    with db.transaction() as cur:
        cur.execute("""
            INSERT INTO notifications (event_id, employee_id, type, title, message, severity, data)
            SELECT 'history-' || n, 'N02', 'INCIDENT_ASSIGNED', 'Fall in room 12', 'Please respond',
                   'HIGH', '{"status": "ASSIGNED"}'::jsonb
            FROM generate_series(1, 5000) AS n""")
    ids = stored_ids(db, "N02")
    service = start_service("notification", env=SERVICE_ENV)
    client = clients(service, login_as("N02"))
    for _ in range(10):
        client.send({"type": "resume", "last_id": 0})
    client.send({"type": "ping"})  # answered after every resume before it
    client.read_until(lambda frames: frames and frames[-1]["type"] == "pong", "the pong")

    assert client.notification_ids() == ids[-200:]  # the newest 200, in order, once
    assert all(n["replay"] for n in client.notifications())
    more = [f for f in client.frames if f["type"] == "more"]
    assert more and all(f == {"type": "more", "after_id": 0, "before_id": ids[-200]} for f in more)
    refused = [f for f in client.frames if f["type"] == "error"]
    # Five at once, then one a second: the ten arrive together, so about five are refused.
    assert len(more) + len(refused) == 10 and len(refused) >= 3, client.frames
    assert all("too many resume" in f["message"] and f["retry_after_seconds"] > 0 for f in refused)

    # Paging back: each `more` frame names the older gap, and a resume for it replays its newest 200.
    before_id = more[-1]["before_id"]
    for page in (1, 2):
        def next_page(before_id=before_id):
            client.frames.clear()
            client.send({"type": "resume", "last_id": 0, "before_id": before_id})
            client.send({"type": "ping"})
            client.read_until(lambda frames: frames and frames[-1]["type"] == "pong", "the pong")
            return any(f["type"] == "more" for f in client.frames)  # else refused for now
        wait_for(next_page, 10, interval=0.5, what=f"page {page} of the history")
        assert client.notification_ids() == ids[-200 * (page + 1):-200 * page]
        before_id = next(f for f in client.frames if f["type"] == "more")["before_id"]
