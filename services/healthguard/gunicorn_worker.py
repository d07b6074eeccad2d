"""gunicorn's threaded worker (gthread), with a deadline on a request's headers.

gthread hands a connection to a thread as soon as it is accepted or kept alive, and the thread
then blocks until the headers are complete: a client sending one byte a second holds the thread
for as long as it likes, and forty such clients held every thread of a service, so its probes
timed out (issue 17, finding 5). nginx closes such a client after client_header_timeout, but a
service port reached directly had no such limit.

Here the worker's own event loop reads the headers, with no thread, until the blank line that
ends them; only then does a thread take the connection, with those bytes handed to gunicorn's
parser. A client that has not finished its headers within GUNICORN_HEADER_SECONDS (10 s, nginx's
client_header_timeout) is answered 408 and closed, as is one whose headers pass
MAX_HEADER_BYTES. The same holds for every request on a kept-alive connection. The body is read
by the view's thread as before.

gunicorn's own refusals (`write_json_error`) are JSON in the services' error shape, not HTML."""
import errno
import os
import selectors
import socket
import time
from collections import deque
from functools import partial

from gunicorn.workers.gthread import TConn, ThreadWorker

HEADERS_END = b"\r\n\r\n"
# nginx sends at most 4 buffers of 8 KiB of headers (large_client_header_buffers); a client
# straight to a service gets twice that before it is refused.
MAX_HEADER_BYTES = 64 * 1024
DEFAULT_HEADER_SECONDS = 10.0


def _answer(status: str, message: str) -> bytes:
    """A closing HTTP answer in the services' JSON error shape (the app never saw the request)."""
    code, _, phrase = status.partition(" ")
    body = f'{{"error":"{phrase}","message":"{message}","status":{code}}}'.encode()
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body


TOO_SLOW = _answer("408 Request Timeout", "the request headers did not arrive in time")
TOO_LARGE = _answer("431 Request Header Fields Too Large", "the request headers are too large")
# What gunicorn's own refusals say, by status, instead of its HTML page (whose text quotes the
# request line, query string included).
GUNICORN_REFUSALS = {
    400: "the request is malformed",
    403: "not allowed",
    414: "the request line is too long",
    417: "the expectation cannot be met",
    431: "the request headers are too large",
    500: "internal error; it has been logged",
    501: "this transfer coding is not supported",
}


def write_json_error(sock, status_int, reason, mesg):
    """gunicorn.util.write_error's replacement (gunicorn_conf installs it): a request gunicorn
    refuses before the app sees it (a malformed or too long request line, bad headers) gets the
    services' JSON error body, through nginx as well as straight."""
    message = GUNICORN_REFUSALS.get(status_int, "the request was refused")
    sock.sendall(_answer(f"{status_int} {reason}", message))


def header_seconds() -> float:
    raw = os.environ.get("GUNICORN_HEADER_SECONDS", str(DEFAULT_HEADER_SECONDS))
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 300:
        raise SystemExit(f"healthguard: setting GUNICORN_HEADER_SECONDS must be a number of seconds "
                         f"above 0 and at most 300, got {raw!r}")
    return seconds


class HeaderDeadlineWorker(ThreadWorker):
    """gthread, reading each request's headers in the event loop within a deadline."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.header_seconds = header_seconds()
        # Connections whose headers are still arriving, oldest deadline first (the deadline is
        # the same span for all, so appending keeps the order).
        self.reading_headers: deque[TConn] = deque()

    def accept(self, listener):
        try:
            client_sock, client_addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, client_sock, client_addr, listener.getsockname())  # non-blocking
        self._read_headers(conn)

    def on_client_socket_readable(self, conn, client):
        """A kept-alive connection's next request: its headers have the same deadline."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        conn.sock.setblocking(False)
        self._read_headers(conn)

    def _read_headers(self, conn: TConn) -> None:
        conn.header_bytes = bytearray()
        conn.header_deadline = time.monotonic() + self.header_seconds
        self.reading_headers.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_header_bytes, conn))

    def _on_header_bytes(self, conn: TConn, _sock) -> None:
        try:
            data = conn.sock.recv(16384)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client left
            self._drop(conn)
            return
        seen = len(conn.header_bytes)
        conn.header_bytes += data
        # Only the new bytes (and the three before them) can complete the blank line.
        complete = conn.header_bytes.find(HEADERS_END, max(0, seen - 3)) >= 0
        if not complete and len(conn.header_bytes) > MAX_HEADER_BYTES:
            self._drop(conn, answer=TOO_LARGE)
        elif complete:
            self._stop_reading(conn)
            self.enqueue_req(conn)

    def handle(self, conn):
        """In the thread: give the parser the headers read so far, then serve as gthread does."""
        early = getattr(conn, "header_bytes", None)
        if early:
            conn.header_bytes = None
            conn.sock.setblocking(True)
            conn.init()  # the parser, on a new connection; a kept-alive one has its own
            unreader = conn.parser.unreader
            unreader.buf.seek(0, os.SEEK_END)  # after anything it still holds, in wire order
            unreader.buf.write(bytes(early))
        return super().handle(conn)

    def murder_pending(self):
        super().murder_pending()
        now = time.monotonic()
        while self.reading_headers and (not self.alive or self.reading_headers[0].header_deadline <= now):
            conn = self.reading_headers[0]
            # Nothing received at all is an idle connection (a browser's spare one): closed quietly.
            self._drop(conn, answer=TOO_SLOW if conn.header_bytes else None)

    def _stop_reading(self, conn: TConn) -> None:
        self.reading_headers.remove(conn)
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass

    def _drop(self, conn: TConn, answer: bytes | None = None) -> None:
        self._stop_reading(conn)
        if answer is not None:
            try:
                conn.sock.send(answer)  # best effort: the socket buffer takes it, or it is lost
                conn.sock.shutdown(socket.SHUT_WR)
                # Closing with unread bytes would reset the connection and could lose the answer:
                # read what has arrived, without waiting for more (this is the event loop).
                for _ in range(16):
                    if not conn.sock.recv(16384):
                        break
            except OSError:  # BlockingIOError included: nothing more has arrived
                pass
        self.nr_conns -= 1
        conn.close()
