"""The MLLP listener: device gateways send IHE PCD-04 alarms (ORU^R40) over TCP, each message
framed <VT> ... <FS><CR>, several per connection, and get an HL7 acknowledgement for each, in
order (original mode). Run by alert ingestion's worker process, never by a web process.

    AA  the alarm is stored: its alert and outbox row committed (an AA is never a lie)
    AE  a message that cannot be used (not HL7, a field missing or wrong, an unknown patient), with
        an ERR segment saying why; the connection stays open for the next message
    AR  an unknown sender (MSH-3/MSH-4 not registered, or neither its key in MSH-8 nor an
        allowlisted address), a patient outside its scope, or (ERR 207) a failure to store it
        now, e.g. the database away: the gateway sends it again

python-hl7's asyncio server frames the messages (hl7.mllp); each message is answered in a small
thread pool (psycopg2 blocks) so several connections are served at once, while one connection's
messages are answered one after the other. A message larger than HL7_MAX_MESSAGE_BYTES is
answered AE and its connection closed: the rest of it would arrive as garbage.

What one client can hold is bounded: at most HL7_MAX_CONNECTIONS connections at once (one more is
closed as soon as it opens), and a connection that brings no complete message for
HL7_IDLE_SECONDS (nothing, or half a message) is closed; both are counted in
hl7_connections_closed_total{reason="too_many"|"idle"}. A gateway reconnects when it next has an
alarm, as MLLP clients do.
"""
import asyncio
import concurrent.futures
import logging
import threading
import time
import uuid

import hl7.mllp
import psycopg2

from healthguard import clock
from healthguard.errors import ApiError
from healthguard.threads import BackgroundThread

from . import hl7_messages
from .hl7_alarms import record_device_alarm
from .hl7_gateways import authenticated_gateway
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
# Another process holding the port must not stop the worker (its outbox relay carries every JSON
# alarm): the listener logs, shows hl7_listener_up 0 and tries again this often.
BIND_RETRY_SECONDS = 5.0
ANSWERING_THREADS = 4


class MllpListener(BackgroundThread):
    name = "hl7-mllp-listener"

    def __init__(self, db, *, host: str, port: int, max_message_bytes: int,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 idle_seconds: float = DEFAULT_IDLE_SECONDS, threads: int = ANSWERING_THREADS):
        super().__init__()
        self.db, self.host, self.port = db, host, port
        self.max_message_bytes, self.threads = max_message_bytes, threads
        self.max_connections, self.idle_seconds = max_connections, idle_seconds
        self._loop = self._stop = None
        self._writers = set()  # the open connections, closed at stop
        self.listening = threading.Event()  # set while the port is bound and accepting

    @property
    def open_connections(self) -> int:
        return len(self._writers)

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
                for writer in list(self._writers):
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
        if len(self._writers) >= self.max_connections:
            HL7_CONNECTIONS_CLOSED.labels(reason="too_many").inc()
            log.warning("HL7 connection refused: too many open", extra={
                "peer": address, "max_connections": self.max_connections})
            writer.close()
            return
        self._writers.add(writer)
        try:
            while True:
                oversized = False
                try:
                    block = await asyncio.wait_for(reader.readblock(), self.idle_seconds)
                except TimeoutError:
                    HL7_CONNECTIONS_CLOSED.labels(reason="idle").inc()
                    log.info("HL7 connection closed: idle", extra={
                        "peer": address, "idle_seconds": self.idle_seconds})
                    break
                except asyncio.IncompleteReadError:
                    break  # the gateway closed the connection
                except hl7.mllp.InvalidBlockError:
                    block = b""  # answered AE below
                except ValueError:  # longer than the limit (python-hl7 dropped what it read)
                    oversized, block = True, b""
                started = time.monotonic()
                if oversized:
                    answer, result = self.refuse_oversized(), "error"
                else:
                    answer, result = await loop.run_in_executor(pool, self.answer, block, address)
                # Counted before the answer goes out: a gateway holding its ACK finds it counted.
                HL7_ACK_SECONDS.observe(time.monotonic() - started)
                HL7_MESSAGES.labels(result=result).inc()
                writer.writeblock(answer)
                await writer.drain()
                if oversized:
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def refuse_oversized(self) -> bytes:
        error = MessageError(f"the message is longer than {self.max_message_bytes} bytes",
                             code=hl7_messages.DATA_TYPE_ERROR)
        return hl7_messages.acknowledgement(None, "AE", control_id=_control_id(), now=clock.now(),
                                            error=error)

    def answer(self, block: bytes, address: str | None) -> tuple[bytes, str]:
        """The acknowledgement of one message and the outcome counted for it."""
        head = None

        def ack(code: str, error: MessageError | None = None) -> bytes:
            return hl7_messages.acknowledgement(head, code, control_id=_control_id(), now=clock.now(),
                                                error=error)
        try:
            message = hl7_messages.parse(block)
            head = hl7_messages.header(message)
            if (head.message_type, head.trigger) != ("ORU", "R40"):
                raise MessageError(f"only ORU^R40 (PCD-04 Report Alert) is accepted, not "
                                   f"{head.message_type}^{head.trigger}",
                                   code=hl7_messages.UNSUPPORTED_MESSAGE_TYPE, location="MSH^1^9")
            with self.db.transaction() as cur:
                found = authenticated_gateway(
                    cur, sending_application=head.sending_application,
                    sending_facility=head.sending_facility, security=head.security, peer=address)
                if found is None:
                    log.warning("HL7 message from an unknown sender refused (AR)", extra={
                        "sender": f"{head.sending_application}^{head.sending_facility}", "peer": address})
                    return ack("AR", MessageError("unknown sender: register the gateway (MSH-3/MSH-4) "
                                                  "and send its device key in MSH-8 or from an "
                                                  "allowed address", code=hl7_messages.UNKNOWN_KEY,
                                                  location="MSH^1^3")), "rejected"
                gateway, device = found
                report = hl7_messages.alert_report(message)
                alert, created = record_device_alarm(cur, gateway=gateway, device=device, report=report)
            # Answered only now: the transaction (alert and outbox row) has committed.
            if created:
                ALERTS_RECEIVED.labels(severity=alert["severity"]).inc()
            return ack("AA"), "accepted" if created else "duplicate"
        except MessageError as exc:
            return ack("AE", exc), "error"
        except ApiError as exc:
            if exc.status == 403:
                return ack("AR", MessageError(exc.message, code=hl7_messages.UNKNOWN_KEY,
                                              location="PID^1^3")), "rejected"
            field = exc.details.get("field")
            code = hl7_messages.UNKNOWN_KEY if field == "patient_id" else hl7_messages.DATA_TYPE_ERROR
            return ack("AE", MessageError(exc.message, code=code,
                                          location="PID^1^3" if field == "patient_id" else "")), "error"
        except (psycopg2.Error, concurrent.futures.CancelledError) as exc:
            log.warning("HL7 alarm not stored now (AR, the gateway retries)",
                        extra={"error": repr(exc)[:300]})
            return ack("AR", MessageError("the alarm could not be stored now: send it again",
                                          code=hl7_messages.APPLICATION_ERROR)), "failed"
        except Exception:
            log.exception("HL7 message could not be handled")
            return ack("AR", MessageError("internal error: send it again",
                                          code=hl7_messages.APPLICATION_ERROR)), "failed"


def _control_id() -> str:
    return "HG" + uuid.uuid4().hex[:18].upper()


def listener_from(db, config) -> MllpListener:
    """The listener with the service's settings: HL7_MLLP_BIND, HL7_MLLP_PORT, HL7_MAX_MESSAGE_BYTES,
    HL7_MAX_CONNECTIONS, HL7_IDLE_SECONDS."""
    from healthguard.config import ConfigError

    def integer(name: str, default: int, low: int, high: int) -> int:
        raw = config.get(name)
        try:
            value = int(raw) if raw not in (None, "") else default
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise ConfigError(f"setting {name} must be an integer from {low} to {high}, got {raw!r}")
        return value
    return MllpListener(db, host=config.get("HL7_MLLP_BIND") or DEFAULT_BIND,
                        port=integer("HL7_MLLP_PORT", DEFAULT_PORT, 0, 65535),
                        max_message_bytes=integer("HL7_MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES,
                                                  1024, 16 * 1024 * 1024),
                        max_connections=integer("HL7_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS, 1, 4096),
                        idle_seconds=integer("HL7_IDLE_SECONDS", DEFAULT_IDLE_SECONDS, 1, 86400))
