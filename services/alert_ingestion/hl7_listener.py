"""The MLLP listener: device gateways send IHE PCD-04 alarms (ORU^R40) over TCP, each message
framed <VT> ... <FS><CR>, several per connection, and get an HL7 acknowledgement for each, in
order (original mode). Run by alert ingestion's worker process, never by a web process.

    AA  the alarm is stored: its alert and outbox row committed (an AA is never a lie)
    AE  a message that will never be accepted as it is, with an ERR segment naming the field:
        not HL7, a field missing or wrong (a NUL, an impossible time or offset), an unknown
        patient, an unknown sender (MSH-3/MSH-4 not registered, or neither its key in MSH-8 nor
        an allowlisted address), a patient outside its scope. Sending it again changes nothing.
    AR  (ERR 207) only what may pass later: the alarm could not be stored now, e.g. the database
        away. The gateway sends it again.
The connection stays open for the next message.

python-hl7's asyncio server frames the messages (hl7.mllp); each message is answered in a small
thread pool (psycopg2 blocks) so several connections are served at once, while one connection's
messages are answered one after the other. A message larger than HL7_MAX_MESSAGE_BYTES is
answered AE and its connection closed: the rest of it would arrive as garbage.

Anyone who reaches the port can open connections, so what a stranger can hold is bounded, and
a registered gateway always finds a place (each refusal or closure counted in
hl7_connections_closed_total by its reason):
- at most HL7_MAX_CONNECTIONS connections at once: one more is closed as it opens (too_many);
- at most HL7_MAX_CONNECTIONS_PER_ADDRESS not yet authenticated from one source address
  (per_address): a stranger's share does not grow with its connections;
- HL7_RESERVED_CONNECTIONS of them are kept for the addresses in registered gateways'
  allowlists: from any other address a connection is closed once only those are left (reserved);
- a connection is authenticated by its first message from a registered gateway (its key in
  MSH-8, or an allowlisted address). Until then it has HL7_MSH_DEADLINE_SECONDS from its opening
  to send one, however many other messages it sends, or it is closed (unauthenticated); a
  message that could not be checked now (AR, the database away) starts the deadline again;
- an authenticated connection that brings no complete message for HL7_IDLE_SECONDS (nothing, or
  half a message) is closed (idle). A gateway reconnects when it next has an alarm, as MLLP
  clients do.
"""
import asyncio
import concurrent.futures
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import NamedTuple

import hl7.mllp
import psycopg2

from healthguard import clock
from healthguard.errors import ApiError
from healthguard.threads import BackgroundThread

from . import hl7_messages
from .hl7_alarms import record_device_alarm
from .hl7_gateways import allowed_address, authenticated_gateway, gateway_networks
from .hl7_messages import MessageError
from .metrics import ALERTS_RECEIVED, HL7_ACK_SECONDS, HL7_CONNECTIONS_CLOSED, HL7_LISTENER_UP, HL7_MESSAGES

log = logging.getLogger(__name__)

DEFAULT_PORT = 2575
DEFAULT_BIND = "127.0.0.1"
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024
# Enough for every gateway of a large hospital with reconnects in between; far below the worker's
# file descriptors, so a client opening connections in a loop cannot starve the relay or the pool.
DEFAULT_MAX_CONNECTIONS = 64
# Gateways keep a connection open between alarms; one silent for this long is closed.
DEFAULT_IDLE_SECONDS = 300
# A gateway sends its message as soon as it connects; a few seconds cover a slow network.
DEFAULT_MSH_DEADLINE_SECONDS = 5
# A gateway host opens one connection, or a few; NAT can put several gateways behind one address.
DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 4
# A quarter of the default 64, for the gateways that send from allowlisted addresses.
DEFAULT_RESERVED_CONNECTIONS = 16
# The gateways' allowlists are read again at most this often, and only while the unreserved
# connections are all taken: a newly registered gateway finds its share within seconds, and a
# flood of connections costs the database one query per interval.
GATEWAY_NETWORKS_REFRESH_SECONDS = 2.0
# A refusal is logged at most this often per reason (the metric counts every one): a flood of
# connections must not become a flood of log lines.
REFUSAL_LOG_SECONDS = 10.0
# Another process holding the port must not stop the worker (its outbox relay carries every JSON
# alarm): the listener logs, shows hl7_listener_up 0 and tries again this often.
BIND_RETRY_SECONDS = 5.0
ANSWERING_THREADS = 4


class Answer(NamedTuple):
    ack: bytes
    result: str  # the outcome counted in hl7_messages_total
    authenticated: bool  # sent by a registered gateway, whatever became of the message


@dataclass
class Connection:
    address: str | None
    opened: float  # the event loop's clock
    authenticated: bool = False


class MllpListener(BackgroundThread):
    name = "hl7-mllp-listener"

    def __init__(self, db, *, host: str, port: int, max_message_bytes: int,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 idle_seconds: float = DEFAULT_IDLE_SECONDS,
                 msh_deadline_seconds: float = DEFAULT_MSH_DEADLINE_SECONDS,
                 max_connections_per_address: int = DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
                 reserved_connections: int = DEFAULT_RESERVED_CONNECTIONS,
                 threads: int = ANSWERING_THREADS):
        super().__init__()
        if not 0 <= reserved_connections < max_connections:
            raise ValueError("the reserved connections must be fewer than the connections")
        self.db, self.host, self.port = db, host, port
        self.max_message_bytes, self.threads = max_message_bytes, threads
        self.max_connections, self.idle_seconds = max_connections, idle_seconds
        self.msh_deadline_seconds = msh_deadline_seconds
        self.max_connections_per_address = max_connections_per_address
        self.reserved_connections = reserved_connections
        self._loop = self._stop = None
        self._connections: dict = {}  # writer -> Connection: the open ones, closed at stop
        self._gateway_networks, self._networks_read_at = [], None
        self._refusals_logged: dict[str, float] = {}
        self._refusals_unlogged: dict[str, int] = {}
        self.listening = threading.Event()  # set while the port is bound and accepting

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    def _interrupt(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop already closed
                pass

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._networks_lock = asyncio.Lock()
        if self._stopping.is_set():
            return
        pool = concurrent.futures.ThreadPoolExecutor(self.threads, thread_name_prefix="hl7-answer")
        try:
            while not self._stopping.is_set():
                try:
                    server = await hl7.mllp.start_hl7_server(
                        lambda reader, writer: self._converse(reader, writer, pool),
                        self.host, self.port, limit=self.max_message_bytes)
                except OSError as exc:
                    HL7_LISTENER_UP.set(0)
                    log.error("cannot listen for HL7 on this address; trying again",
                              extra={"bind": f"{self.host}:{self.port}", "error": repr(exc)})
                    try:
                        await asyncio.wait_for(self._stop.wait(), BIND_RETRY_SECONDS)
                    except TimeoutError:
                        pass
                    continue
                HL7_LISTENER_UP.set(1)
                self.listening.set()
                log.info("listening for HL7 (MLLP)", extra={"bind": f"{self.host}:{self.port}"})
                await self._stop.wait()
                server.close()
                # Gateways keep their connections open: close them, or (Python 3.12+)
                # wait_closed would wait for them.
                for writer in list(self._connections):
                    writer.close()
                await server.wait_closed()
                break
        finally:
            self.listening.clear()
            HL7_LISTENER_UP.set(0)
            # A message being stored finishes (its transaction commits or rolls back); its ACK is
            # not sent, so the gateway sends it again and finds it stored.
            pool.shutdown(wait=True)

    async def _converse(self, reader, writer, pool) -> None:
        peer = writer.get_extra_info("peername")
        address = peer[0] if peer else None
        loop = asyncio.get_running_loop()
        refused = await self._refusal(address, pool)
        if refused is not None:
            self._closed(refused, address)
            writer.close()
            return
        connection = self._connections[writer] = Connection(address, opened=loop.time())
        try:
            while True:
                if connection.authenticated:
                    timeout, reason = self.idle_seconds, "idle"
                else:
                    timeout = connection.opened + self.msh_deadline_seconds - loop.time()
                    reason = "unauthenticated"
                oversized = False
                try:
                    if timeout <= 0:
                        raise TimeoutError
                    block = await asyncio.wait_for(reader.readblock(), timeout)
                except TimeoutError:
                    self._closed(reason, address)
                    break
                except asyncio.IncompleteReadError:
                    break  # the gateway closed the connection
                except hl7.mllp.InvalidBlockError:
                    block = b""  # answered AE below
                except ValueError:  # longer than the limit (python-hl7 dropped what it read)
                    oversized, block = True, b""
                started = time.monotonic()
                if oversized:
                    answer = Answer(self.refuse_oversized(), "error", False)
                else:
                    answer = await loop.run_in_executor(pool, self.answer, block, address)
                connection.authenticated = connection.authenticated or answer.authenticated
                if not connection.authenticated and answer.result == "failed":
                    # Its sender could not be checked now (the database away): the gateway did
                    # its part, and gets a new deadline for sending the message again.
                    connection.opened = loop.time()
                # Counted before the answer goes out: a gateway holding its ACK finds it counted.
                HL7_ACK_SECONDS.observe(time.monotonic() - started)
                HL7_MESSAGES.labels(result=answer.result).inc()
                writer.writeblock(answer.ack)
                await writer.drain()
                if oversized:
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.pop(writer, None)
            writer.close()

    async def _refusal(self, address: str | None, pool) -> str | None:
        """Why a new connection from `address` is closed at once, or None when it may stay."""
        refused = self._refusal_now(address, gateway=None)
        if refused is not None or len(self._connections) < self.max_connections - self.reserved_connections:
            return refused
        # Only the reserve is left: is this a gateway's address? That may wait for the database,
        # so the counts are read again afterwards, and the connection is registered without
        # yielding to the loop in between: no other connection slips in.
        return self._refusal_now(address, gateway=await self._is_gateway_address(address, pool))

    def _refusal_now(self, address: str | None, *, gateway: bool | None) -> str | None:
        open_now = len(self._connections)
        if open_now >= self.max_connections:
            return "too_many"
        strangers = sum(1 for c in self._connections.values() if c.address == address and not c.authenticated)
        if strangers >= self.max_connections_per_address:
            return "per_address"
        if gateway is False and open_now >= self.max_connections - self.reserved_connections:
            return "reserved"
        return None

    async def _is_gateway_address(self, address: str | None, pool) -> bool:
        async with self._networks_lock:  # one reading at a time; the others use its result
            read_at = self._networks_read_at
            if read_at is None or time.monotonic() - read_at >= GATEWAY_NETWORKS_REFRESH_SECONDS:
                try:
                    self._gateway_networks = await asyncio.get_running_loop().run_in_executor(
                        pool, self._read_gateway_networks)
                except (psycopg2.Error, concurrent.futures.CancelledError) as exc:
                    # The last list read stands (none at first): the database is needed to
                    # store the alarm anyway.
                    log.warning("HL7 gateways' addresses not read now", extra={"error": repr(exc)[:300]})
                self._networks_read_at = time.monotonic()
        return allowed_address(address, self._gateway_networks)

    def _read_gateway_networks(self) -> list:
        with self.db.transaction() as cur:
            return gateway_networks(cur)

    def _closed(self, reason: str, address: str | None) -> None:
        """Count a connection refused or closed by the listener, and log it now and then."""
        HL7_CONNECTIONS_CLOSED.labels(reason=reason).inc()
        now = time.monotonic()
        last = self._refusals_logged.get(reason)
        if last is not None and now - last < REFUSAL_LOG_SECONDS:
            self._refusals_unlogged[reason] = self._refusals_unlogged.get(reason, 0) + 1
            return
        self._refusals_logged[reason] = now
        log.warning("HL7 connection closed by the listener", extra={
            "reason": reason, "peer": address,
            "also_closed_since_last_logged": self._refusals_unlogged.pop(reason, 0),
            "max_connections": self.max_connections, "open": len(self._connections),
            "msh_deadline_seconds": self.msh_deadline_seconds, "idle_seconds": self.idle_seconds})

    def refuse_oversized(self) -> bytes:
        error = MessageError(f"the message is longer than {self.max_message_bytes} bytes",
                             code=hl7_messages.DATA_TYPE_ERROR)
        return hl7_messages.acknowledgement(None, "AE", control_id=_control_id(), now=clock.now(),
                                            error=error)

    def answer(self, block: bytes, address: str | None) -> Answer:
        """The acknowledgement of one message, the outcome counted for it, and whether a
        registered gateway sent it."""
        head, gateway = None, None

        def answered(code: str, result: str, error: MessageError | None = None) -> Answer:
            ack = hl7_messages.acknowledgement(head, code, control_id=_control_id(), now=clock.now(),
                                               error=error)
            return Answer(ack, result, gateway is not None)
        try:
            message = hl7_messages.parse(block)
            head = hl7_messages.header(message)
            hl7_messages.refuse_unreadable(message)
            if len(message) == 1:
                # An MSH-only message is a gateway's keep-alive: a beat (device_heard, in
                # authenticated_gateway), acknowledged, nothing stored.
                with self.db.transaction() as cur:
                    found = authenticated_gateway(
                        cur, sending_application=head.sending_application,
                        sending_facility=head.sending_facility, security=head.security, peer=address)
                if found is None:
                    return answered("AE", "rejected", MessageError(
                        "unknown sender of a keep-alive", code=hl7_messages.UNKNOWN_KEY, location="MSH^1^3"))
                gateway = found[0]
                return answered("AA", "keep-alive")
            if (head.message_type, head.trigger) != ("ORU", "R40"):
                raise MessageError(f"only ORU^R40 (PCD-04 Report Alert) is accepted, not "
                                   f"{head.message_type}^{head.trigger}",
                                   code=hl7_messages.UNSUPPORTED_MESSAGE_TYPE, location="MSH^1^9")
            with self.db.transaction() as cur:
                found = authenticated_gateway(
                    cur, sending_application=head.sending_application,
                    sending_facility=head.sending_facility, security=head.security, peer=address)
                if found is None:
                    log.warning("HL7 message from an unknown sender refused (AE)", extra={
                        "sender": f"{head.sending_application}^{head.sending_facility}", "peer": address})
                    return answered("AE", "rejected", MessageError(
                        "unknown sender: register the gateway (MSH-3/MSH-4) and send its device key "
                        "in MSH-8 or from an allowed address", code=hl7_messages.UNKNOWN_KEY,
                        location="MSH^1^3"))
                gateway, device = found
                report = hl7_messages.alert_report(message)
                alert, created = record_device_alarm(cur, gateway=gateway, device=device, report=report)
            # Answered only now: the transaction (alert and outbox row) has committed.
            if created:
                ALERTS_RECEIVED.labels(severity=alert["severity"]).inc()
            return answered("AA", "accepted" if created else "duplicate")
        except MessageError as exc:
            return answered("AE", "error", exc)
        except ApiError as exc:
            # The domain's own refusals, as the JSON route gives them, told where they are.
            field = "patient_id" if exc.status == 403 else exc.details.get("field")  # outside its scope
            if exc.status == 409:  # the alert identifier already used for another patient or alarm
                field = "source_alarm_id"
            code = hl7_messages.UNKNOWN_KEY if field == "patient_id" else hl7_messages.DATA_TYPE_ERROR
            return answered("AE", "rejected" if exc.status == 403 else "error",
                            MessageError(exc.message, code=code, location=FIELD_LOCATIONS.get(field, "")))
        except psycopg2.DataError as exc:
            # A value the database cannot take (the checks above should have named it first):
            # the same message would fail again, so not "send it again".
            log.warning("HL7 message with a value that cannot be stored (AE)",
                        extra={"error": repr(exc)[:300]})
            return answered("AE", "error", MessageError("a value of the message cannot be stored",
                                                        code=hl7_messages.DATA_TYPE_ERROR))
        except (psycopg2.Error, concurrent.futures.CancelledError) as exc:
            log.warning("HL7 alarm not stored now (AR, the gateway retries)",
                        extra={"error": repr(exc)[:300]})
            return answered("AR", "failed", MessageError("the alarm could not be stored now: send it again",
                                                         code=hl7_messages.APPLICATION_ERROR))
        except Exception:
            # A defect of ours, not of the message: kept visible, and the gateway keeps the alarm.
            log.exception("HL7 message could not be handled")
            return answered("AR", "failed", MessageError("internal error: send it again",
                                                         code=hl7_messages.APPLICATION_ERROR))


# Where in a PCD-04 message the fields the domain names (ApiError's field) come from.
FIELD_LOCATIONS = {"patient_id": "PID^1^3", "occurred_at": "OBR^1^7", "source_alarm_id": "OBR^1^3"}


def _control_id() -> str:
    return "HG" + uuid.uuid4().hex[:18].upper()


def listener_from(db, settings) -> MllpListener:
    """The listener with the service's settings (alert_ingestion.settings)."""
    return MllpListener(db, host=settings.HL7_MLLP_BIND, port=settings.HL7_MLLP_PORT,
                        max_message_bytes=settings.HL7_MAX_MESSAGE_BYTES,
                        max_connections=settings.HL7_MAX_CONNECTIONS,
                        idle_seconds=settings.HL7_IDLE_SECONDS,
                        msh_deadline_seconds=settings.HL7_MSH_DEADLINE_SECONDS,
                        max_connections_per_address=settings.HL7_MAX_CONNECTIONS_PER_ADDRESS,
                        reserved_connections=settings.HL7_RESERVED_CONNECTIONS)
