"""The WebSockets open in this worker process, and how frames reach them.

Threads. Each socket is served by the gunicorn thread that accepted it (`ClinicianSocket.serve`);
that thread alone writes to the socket, so a slow phone never holds up anybody else's push.
Other threads only append to the socket's `pending` frames and wake it: the fanout subscriber
(live notifications), the session watchdog (logout) and the shutdown hook. simple-websocket's own
reader thread wakes the same event when the client sends something or hangs up.

Nothing missed, nothing doubled. A socket is registered in the hub BEFORE its replay is read from
the database, so a notification is either committed before the replay's snapshot (replayed) or
announced after the registration (pending, sent after the replay). Both may hold the same
notification: every socket remembers the newest ids it sent and drops repeats, which also absorbs
an event announced twice after a redelivery. Repeats are always of recent ids (a live frame is the
newest there is), so the memory keeps the highest ids, and a replay of old ones never pushes a
recent id out of it.

Bounded per session. A replay sends at most REPLAY_PAGE notifications, the newest, and a `more`
frame naming the older gap, which the client pages through with further `resume` frames (at most
RESUMES_BURST at once, then RESUMES_PER_SECOND). A session holds at most WS_SOCKETS_PER_SESSION
sockets in this process: each holds a thread, and a new one closes the oldest (WS_CLOSE_TOO_MANY_SOCKETS).

The PHI access log. Each frame that names patients, once written to a socket, adds one entry per
patient for the socket's clinician (route `ws:notification`, `ws:incident_updated` or `ws:replay`;
address and purpose from the handshake) to the process's BatchedAccessLog: memory only on the
sending thread, written by the log's own thread in batches. A frame dropped as a repeat was not
sent and is not logged.
"""
import collections
import heapq
import logging
import threading
import time

from simple_websocket import ConnectionClosed

from healthguard.api import MAX_JSON_DEPTH, loads_bounded
from healthguard.db import BIGINT_MAX
from healthguard.domain import (
    WS_CLOSE_TOO_MANY_SOCKETS,
    WS_FRAME_ERROR,
    WS_FRAME_INCIDENT_UPDATED,
    WS_FRAME_MORE,
    WS_FRAME_NOTIFICATION,
    WS_FRAME_PING,
    WS_FRAME_PONG,
    WS_FRAME_RESUME,
)
from healthguard.incident_events import patients_named
from healthguard.phi_access import Accessor, BatchedAccessLog

from . import metrics
from .service import as_json, frame_text, latest_notification_id, newest_notifications_between

log = logging.getLogger(__name__)

REPLAY_PAGE = 200  # notifications per replay: the newest; a `more` frame names the older ones
REMEMBERED_IDS = 4096  # per socket: the highest ids sent, against repeats
# Resumes per socket: a burst (a reconnect, a few pages at once), then one a second.
RESUMES_BURST = 5
RESUMES_PER_SECOND = 1.0
DEFAULT_SOCKETS_PER_SESSION = 5
CLOSE_GOING_AWAY = 1001
CLOSE_SERVER_ERROR = 1011
SEND_ERRORS = (ConnectionClosed, OSError)
# The PHI access log's route of each kind of frame that carries patients' data.
LIVE_ROUTE, REPLAY_ROUTE = f"ws:{WS_FRAME_NOTIFICATION}", "ws:replay"
DASHBOARD_ROUTE = f"ws:{WS_FRAME_INCIDENT_UPDATED}"


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= BIGINT_MAX


class Frame:
    """One frame, serialized once for however many sockets it goes to; `patients` whose data it
    carries, logged under `route` for each socket it is sent on."""
    __slots__ = ("text", "notification_id", "event_id", "stored_at", "patients", "route")

    def __init__(self, text, *, notification_id=None, event_id=None, stored_at=None, patients=(),
                 route=None):
        self.text, self.notification_id = text, notification_id
        self.event_id, self.stored_at = event_id, stored_at
        self.patients, self.route = patients, route


class _HighestIds:
    """The `size` highest ids added: an id below all of them, once full, is not remembered (it
    cannot be a repeat of a live frame, which is always among the newest)."""

    def __init__(self, size: int):
        self.size, self._ids, self._heap = size, set(), []

    def __contains__(self, key) -> bool:
        return key in self._ids

    def add(self, key) -> None:
        if key in self._ids:
            return
        if len(self._heap) < self.size:
            heapq.heappush(self._heap, key)
        elif key > self._heap[0]:
            self._ids.discard(heapq.heapreplace(self._heap, key))
        else:
            return
        self._ids.add(key)


class _Recent:
    """A bounded set: remembers the last `size` keys added."""

    def __init__(self, size: int):
        self.size, self._keys, self._order = size, set(), collections.deque()

    def __contains__(self, key) -> bool:
        return key in self._keys

    def add(self, key) -> None:
        self._keys.add(key)
        self._order.append(key)
        if len(self._order) > self.size:
            self._keys.discard(self._order.popleft())


class _Allowance:
    """A token bucket: `burst` at once, refilled at `per_second`."""

    def __init__(self, burst: int, per_second: float):
        self.burst, self.per_second = burst, per_second
        self.tokens, self.at = float(burst), time.monotonic()

    def take(self) -> float:
        """0 when allowed (and spent); otherwise the seconds until the next one."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.per_second)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.per_second


class ClinicianSocket:
    def __init__(self, ws, clinician, *, hub: "Hub", db, ping_seconds: float, accessor: Accessor):
        self.ws, self.clinician, self.hub, self.db = ws, clinician, hub, db
        self.accessor = accessor
        self.employee_id, self.session_id = clinician.employee_id, clinician.session_id
        self.ping_seconds = ping_seconds
        self.pending = collections.deque()  # deque appends and pops are atomic: no lock needed
        self.wakeup = ws.event  # set by simple-websocket on client input or hang-up, and by push()
        self.cursor = 0  # the highest notification id this client has (or said it has)
        self.sent_ids = _HighestIds(REMEMBERED_IDS)
        self.sent_events = _Recent(512)
        self.resumes = _Allowance(RESUMES_BURST, RESUMES_PER_SECOND)
        self.close_code = self.close_reason = None
        self.resync = False

    # Called from other threads.

    def push(self, frame: Frame) -> None:
        self.pending.append(frame)
        self.wakeup.set()

    def end(self, code: int, reason: str) -> None:
        self.close_code, self.close_reason = code, reason
        self.wakeup.set()

    def request_resync(self) -> None:
        self.resync = True
        self.wakeup.set()

    # The socket's own thread.

    def serve(self, last_id: int | None) -> None:
        self.hub.add(self)
        try:
            if last_id is None:
                with self.db.transaction() as cur:
                    self.cursor = latest_notification_id(cur=cur, employee_id=self.employee_id)
            else:
                self._replay(after_id=last_id)
            self._loop()
        except SEND_ERRORS:
            pass
        except Exception:  # e.g. the database went away mid-replay: let the client retry
            log.exception("socket failed", extra={"employee_id": self.employee_id})
            try:
                self.ws.close(CLOSE_SERVER_ERROR, "server error; reconnect with last_id")
            except SEND_ERRORS:
                pass
        finally:
            self.hub.remove(self)

    def _loop(self) -> None:
        next_ping = time.monotonic() + self.ping_seconds
        while True:
            self.wakeup.clear()  # before looking: whatever arrives from now on wakes the wait below
            if self.close_code is not None:
                self.ws.close(self.close_code, self.close_reason)
                return
            while (text := self.ws.receive(timeout=0)) is not None:  # raises once the client left
                self._on_client_message(text)
            if self.resync:
                self.resync = False
                self._replay(after_id=self.cursor)
            while self.pending:
                self._send(self.pending.popleft())
            now = time.monotonic()
            if now >= next_ping:
                self._write(frame_text(WS_FRAME_PING, {}))
                next_ping = now + self.ping_seconds
            self.wakeup.wait(max(0.0, next_ping - time.monotonic()))

    def _on_client_message(self, text) -> None:
        """A client frame is small (simple-websocket closes the socket with 1009 above
        max_message_size); one that is not JSON, or nests deeper than requests may, gets an
        error frame and the socket stays open: a bad frame is never a server error (1011)."""
        try:
            message = loads_bounded(text)
        except (TypeError, ValueError):  # JsonTooDeep is a ValueError
            self._write(frame_text(WS_FRAME_ERROR, {
                "message": f"not a JSON object (or nested deeper than {MAX_JSON_DEPTH} levels); "
                           "send resume, ping or pong"}))
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == WS_FRAME_RESUME:
            last_id, before_id = message.get("last_id"), message.get("before_id")
            if not _is_id(last_id) or not (before_id is None or (_is_id(before_id) and before_id > last_id)):
                self._write(frame_text(WS_FRAME_ERROR, {
                    "message": "resume needs a non-negative integer last_id (and, paging, a before_id "
                               "above it)"}))
                return
            wait = self.resumes.take()
            if wait:
                self._write(frame_text(WS_FRAME_ERROR, {
                    "message": "too many resume frames; send it again later",
                    "retry_after_seconds": round(wait, 1)}))
                return
            self._replay(after_id=last_id, before_id=before_id)
        elif kind == WS_FRAME_PING:
            self._write(frame_text(WS_FRAME_PONG, {}))
        elif kind == WS_FRAME_PONG:
            pass
        else:
            self._write(frame_text(WS_FRAME_ERROR, {"message": "unknown frame; send resume, ping or pong"}))

    def _replay(self, *, after_id: int, before_id: int | None = None) -> None:
        """Send this clinician's newest REPLAY_PAGE notifications with after_id < id < before_id,
        in id order; when older ones remain, a `more` frame names them (the client pages back
        with resume last_id=after_id, before_id=the `more` frame's before_id)."""
        with self.db.transaction() as cur:
            rows = newest_notifications_between(cur=cur, employee_id=self.employee_id, after_id=after_id,
                                                before_id=before_id, limit=REPLAY_PAGE + 1)
        page = rows[:REPLAY_PAGE]
        for row in reversed(page):
            body = as_json(row)
            self._send(Frame(frame_text(WS_FRAME_NOTIFICATION, {**body, "replay": True}),
                             notification_id=body["id"], patients=patients_named(body["data"]),
                             route=REPLAY_ROUTE))
        if len(rows) > REPLAY_PAGE:
            older = {"after_id": after_id, "before_id": page[-1]["notification_id"]}
            self._write(frame_text(WS_FRAME_MORE, older))

    def _send(self, frame: Frame) -> None:
        if frame.notification_id is not None:
            if frame.notification_id in self.sent_ids:
                return
            try:
                self._write(frame.text)
            except SEND_ERRORS:
                metrics.NOTIFICATIONS_SENT.labels("websocket", "failed").inc()
                raise
            self.sent_ids.add(frame.notification_id)
            self.cursor = max(self.cursor, frame.notification_id)
            metrics.NOTIFICATIONS_SENT.labels("websocket", "delivered").inc()
            if frame.stored_at is not None:
                metrics.PUSH_LATENCY.observe(max(0.0, time.time() - frame.stored_at))
        elif frame.event_id is not None:
            if frame.event_id in self.sent_events:
                return
            self._write(frame.text)
            self.sent_events.add(frame.event_id)
        else:
            self._write(frame.text)
        if frame.patients:
            self.hub.access_log.add(self.accessor, frame.route, frame.patients)

    def _write(self, text: str) -> None:
        self.ws.send(text)


class Hub:
    def __init__(self, *, access_log: BatchedAccessLog,
                 sockets_per_session: int = DEFAULT_SOCKETS_PER_SESSION):
        self.access_log = access_log
        self.sockets_per_session = sockets_per_session
        self._lock = threading.Lock()
        self._sockets: set[ClinicianSocket] = set()
        self._by_employee: dict[str, set[ClinicianSocket]] = collections.defaultdict(set)
        # Each session's sockets, oldest first.
        self._by_session: dict[object, list[ClinicianSocket]] = collections.defaultdict(list)

    def add(self, sock: ClinicianSocket) -> None:
        with self._lock:
            self._sockets.add(sock)
            self._by_employee[sock.employee_id].add(sock)
            theirs = self._by_session[sock.session_id]
            theirs.append(sock)
            # A socket already told to close still counts until its thread has closed it, but is
            # not told twice.
            still_open = [other for other in theirs if other.close_code is None]
            for oldest in still_open[:max(0, len(still_open) - self.sockets_per_session)]:
                oldest.end(WS_CLOSE_TOO_MANY_SOCKETS,
                           f"more than {self.sockets_per_session} sockets for this session; "
                           "this, the oldest, is closed")
        metrics.WEBSOCKET_CONNECTIONS.inc()

    def remove(self, sock: ClinicianSocket) -> None:
        with self._lock:
            if sock not in self._sockets:
                return
            self._sockets.discard(sock)
            mine = self._by_employee[sock.employee_id]
            mine.discard(sock)
            if not mine:
                del self._by_employee[sock.employee_id]
            theirs = self._by_session[sock.session_id]
            theirs.remove(sock)
            if not theirs:
                del self._by_session[sock.session_id]
        metrics.WEBSOCKET_CONNECTIONS.dec()

    def sockets(self) -> list[ClinicianSocket]:
        with self._lock:
            return list(self._sockets)

    def deliver(self, announcement: dict) -> None:
        """Queue an announcement from the fanout exchange on the sockets it concerns: each
        notification on its clinician's sockets, the incident update on every socket."""
        stored_at = announcement.get("stored_at")
        with self._lock:
            for body in announcement.get("notifications") or ():
                frame = Frame(frame_text(WS_FRAME_NOTIFICATION, body), notification_id=body["id"],
                              stored_at=stored_at, patients=patients_named(body.get("data")),
                              route=LIVE_ROUTE)
                for sock in self._by_employee.get(body["employee_id"], ()):
                    sock.push(frame)
            update = announcement.get("incident_update")
            if update:
                frame = Frame(frame_text(WS_FRAME_INCIDENT_UPDATED, update), event_id=update["event_id"],
                              patients=patients_named(update), route=DASHBOARD_ROUTE)
                for sock in self._sockets:
                    sock.push(frame)

    def resync_all(self) -> None:
        """After this process (re)subscribed to the announcements: what was announced while it
        was not subscribed is lost to it, so every socket catches up from the database."""
        for sock in self.sockets():
            sock.request_resync()

    def end_sessions(self, session_ids: set, code: int, reason: str) -> int:
        ended = 0
        for sock in self.sockets():
            if sock.session_id in session_ids:
                sock.end(code, reason)
                ended += 1
        return ended

    def close_all(self, code: int = CLOSE_GOING_AWAY, reason: str = "server restarting; reconnect") -> None:
        for sock in self.sockets():
            sock.end(code, reason)
