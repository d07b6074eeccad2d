"""Slow clients straight to a service port (issue 17, finding 5): forty connections trickling
their headers at one byte a second held every gunicorn thread, so probes timed out, and none was
closed. The services' worker (healthguard.gunicorn_worker) reads headers without a thread and
within GUNICORN_HEADER_SECONDS. Real gunicorn, real sockets."""
import select
import socket
import time

import pytest
import requests

from tests.support import ServiceProcess

pytestmark = pytest.mark.module_database

HEADER_SECONDS = 3
ATTACKERS = 40


@pytest.fixture(scope="module")
def oncall(module_service_env):
    # Few threads, so that forty slow clients would hold every one of them if they could.
    service = ServiceProcess("oncall", {**module_service_env, "GUNICORN_THREADS": "4",
                                        "GUNICORN_HEADER_SECONDS": str(HEADER_SECONDS)},
                             background=False).start()
    yield service
    service.stop()


class Trickler:
    """A client that sends a request's headers one byte a second and never finishes them."""
    HEADERS = b"GET /health HTTP/1.1\r\nHost: oncall\r\nX-Slow: " + b"a" * 4000

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sent = 0
        self.answer = b""
        self.closed_after = None
        self.opened = time.monotonic()

    def step(self) -> None:
        """One more byte, and notice whether the server has answered or closed."""
        if self.closed_after is not None:
            return
        readable, _, _ = select.select([self.sock], [], [], 0)
        if readable:
            try:
                data = self.sock.recv(4096)
            except OSError:
                data = b""
            self.answer += data
            if not data:
                self.closed_after = time.monotonic() - self.opened
                self.sock.close()
                return
        try:
            self.sock.send(self.HEADERS[self.sent:self.sent + 1])
            self.sent += 1
        except OSError:
            self.closed_after = time.monotonic() - self.opened
            self.sock.close()


def test_slow_headers_are_closed_in_bounded_time_and_probes_keep_answering(oncall):
    attackers = [Trickler(oncall.port) for _ in range(ATTACKERS)]
    probes = []
    try:
        deadline = time.monotonic() + HEADER_SECONDS + 15
        while time.monotonic() < deadline and any(a.closed_after is None for a in attackers):
            for attacker in attackers:
                attacker.step()
            # A probe as a load balancer sends it, with its own timeout: it is answered while
            # every attacker is connected and trickling.
            probes.append(requests.get(f"{oncall.url}/health", timeout=2).status_code)
            time.sleep(1)
    finally:
        for attacker in attackers:
            attacker.sock.close()
    still_open = [a for a in attackers if a.closed_after is None]
    assert not still_open, f"{len(still_open)} slow clients still connected"
    assert all(a.closed_after < HEADER_SECONDS + 5 for a in attackers), \
        sorted(round(a.closed_after, 1) for a in attackers)
    assert all(a.answer.startswith(b"HTTP/1.1 408 ") for a in attackers), attackers[0].answer
    assert b'"status":408' in attackers[0].answer  # the services' JSON error shape
    assert len(probes) >= HEADER_SECONDS and set(probes) == {200}, probes


def test_a_kept_alive_connection_has_the_same_deadline_for_its_next_request(oncall):
    with socket.create_connection(("127.0.0.1", oncall.port), timeout=HEADER_SECONDS + 10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: oncall\r\n\r\n")
        first = b""
        while b'"service":"oncall"}' not in first:  # the whole first answer, body included
            first += sock.recv(4096)
        assert first.startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: on")  # and then nothing more
        started = time.monotonic()
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < HEADER_SECONDS + 5


def test_headers_over_the_limit_are_refused_and_a_request_in_pieces_is_served(oncall):
    with socket.create_connection(("127.0.0.1", oncall.port), timeout=10) as sock:
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 70000)
        except OSError:
            pass  # the server may close before it has read everything
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 431 "), answer
    # A request whose headers and body arrive in several pieces, the blank line split between
    # two of them, is served as one.
    with socket.create_connection(("127.0.0.1", oncall.port), timeout=10) as sock:
        body = b'{"login": "nobody", "password": "wrong-password"}'
        for piece in (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: oncall\r\n",
                      b"Content-Type: application/json\r\n",
                      f"Content-Length: {len(body)}\r\n\r".encode(), b"\n", body[:10], body[10:]):
            sock.sendall(piece)
            time.sleep(0.2)
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 401 "), answer
