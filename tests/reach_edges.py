"""The third-party edges of the off-tab channels, as real servers in the test process:
a Web Push service (RFC 8030) that checks each request's VAPID signature (RFC 8292) and decrypts
its aes128gcm payload (RFC 8291) with the subscription's own keys, as a browser's push service and
the browser would; and an SMTP server (aiosmtpd). Plus the key material a browser and make_env.py
would make."""

import base64
import contextlib
import email
import email.policy
import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
from aiosmtpd.controller import Controller
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.support import free_port


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def vapid_key_pair() -> tuple[str, str]:
    """(VAPID_PRIVATE_KEY, VAPID_PUBLIC_KEY) in make_env.py's form: base64url raw scalar, and the
    uncompressed point the browser takes as applicationServerKey."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_numbers().private_value.to_bytes(32, "big")
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(private), b64url(public)


class Subscription:
    """A browser's push subscription: its P-256 key pair and auth secret, at an endpoint of the
    local push service."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)

    def to_json(self) -> dict:
        public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)},
        }

    def decrypt(self, body: bytes) -> bytes:
        return http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm")


def verify_vapid(authorization: str, *, public_key: str, audience: str) -> dict:
    """Check `vapid t=<JWT>, k=<key>` (RFC 8292): the key is ours, the ES256 signature holds, the
    audience is the push service's origin and it has not expired. Returns the claims."""
    scheme, _, params = authorization.partition(" ")
    assert scheme == "vapid", authorization
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    assert fields["k"] == public_key, "signed with another key"
    header, claims, signature = fields["t"].split(".")
    raw = unb64url(signature)
    assert len(raw) == 64
    point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
    try:
        point.verify(
            encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
            f"{header}.{claims}".encode(),
            ec.ECDSA(hashes.SHA256()),
        )
    except InvalidSignature:
        raise AssertionError("the VAPID signature does not verify") from None
    assert json.loads(unb64url(header)) == {"typ": "JWT", "alg": "ES256"}
    decoded = json.loads(unb64url(claims))
    assert decoded["aud"] == audience, decoded
    assert decoded["exp"] > time.time(), decoded
    assert decoded["sub"].startswith(("mailto:", "https:")), decoded
    return decoded


class PushService:
    """A push service on 127.0.0.1: POST /push/<name> for the subscriptions made by
    subscription(name). Each request is verified and decrypted; `answer[name]` is the status it
    gets (201 by default; 410 for a subscription gone); with `hold` set, requests wait until
    released (a sender killed mid-send)."""

    def __init__(self, vapid_public_key: str, *, check: bool = True):
        self.vapid_public_key = vapid_public_key
        self.check = check  # False (the bench): only record the arrival and the Topic
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.subscriptions: dict[str, Subscription] = {}
        self.answer: dict[str, int] = {}
        self.received: list[dict] = []
        self.errors: list[str] = []
        self.hold = False
        self.release = threading.Event()
        self.held: list[dict] = []
        self._lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                service._handle(self)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def subscription(self, name: str) -> Subscription:
        self.subscriptions[name] = Subscription(f"{self.origin}/push/{name}")
        return self.subscriptions[name]

    def _handle(self, request):
        name = request.path.rsplit("/", 1)[-1]
        body = request.rfile.read(int(request.headers.get("Content-Length", 0)))
        entry = {"arrived": time.time(),
            "name": name,
            "topic": request.headers.get("Topic"),
            "ttl": request.headers.get("TTL"),
            "urgency": request.headers.get("Urgency"),
            "client_port": request.client_address[1],
            "encoding": request.headers.get("Content-Encoding"),
        }
        if self.check:
            try:
                self._verify_and_decrypt(request, name, body, entry)
            except Exception as exc:  # recorded, and asserted empty by the tests
                with self._lock:
                    self.errors.append(f"{name}: {exc!r}")
                request.send_response(400)
                request.end_headers()
                return
        with self._lock:
            self.received.append(entry)
            if self.hold:
                self.held.append(entry)
        if self.hold:
            self.release.wait(60)
        status = self.answer.get(name, 201)
        try:
            request.send_response(status)
            if status == 201:
                request.send_header("Location", f"{self.origin}/message/{len(self.received)}")
            request.send_header("Content-Length", "0")
            request.end_headers()
        except OSError:
            pass  # the sender died while we held its request

    def _verify_and_decrypt(self, request, name: str, body: bytes, entry: dict) -> None:
        entry["claims"] = verify_vapid(request.headers.get("Authorization", ""),
                                       public_key=self.vapid_public_key, audience=self.origin)
        assert entry["encoding"] == "aes128gcm", entry["encoding"]
        entry["raw"] = self.subscriptions[name].decrypt(body)
        entry["payload"] = json.loads(entry["raw"])

    def for_incident(self, incident_id: int) -> list[dict]:
        with self._lock:
            return [r for r in self.received if r["payload"].get("incident_id") == incident_id]


class _Inbox:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


class Mailbox:
    """An SMTP server on 127.0.0.1 (aiosmtpd), which can be stopped (down) and started again
    on the same port."""

    def __init__(self):
        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        self.inbox = _Inbox()
        self.controller = None

    def start(self):
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self):
        return list(self.inbox.messages)

    def to(self, address: str) -> list:
        return [m for m in self.messages if m["To"] == address]


def pid_owning_connection(local_port: int, pids) -> int | None:
    """Which of `pids` holds the TCP connection whose local port is `local_port` (the sender of
    a request the push service holds)."""
    inodes = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as table:
            for line in table.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == local_port:
                    inodes.add(fields[9])
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return pid
        except (FileNotFoundError, PermissionError):
            continue
    return None


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@contextlib.contextmanager
def running_edges(vapid_public: str):
    """A push service (checking that VAPID public key) and a mailbox, running until the block
    ends: {"push": PushService, "mail": Mailbox}."""
    push = PushService(vapid_public).start()
    mail = Mailbox().start()
    try:
        yield {"push": push, "mail": mail}
    finally:
        push.stop()
        mail.stop()
