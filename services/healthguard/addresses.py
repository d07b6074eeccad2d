"""Which address a request comes from, for limits that count per client (the sign-in throttle) and
for the account audit.

`request.remote_addr` is the peer. Behind nginx the peer is nginx, which puts the client's
address in X-Real-IP; that header is believed only when the peer is one of TRUSTED_PROXIES. By
default no proxy is trusted: a client that can reach a service port directly must not pick the
address it is counted under by sending the header itself (issue 17: 435 guesses from one address,
each with a new X-Real-IP, went unthrottled while loopback and every private network were
trusted). The deployments name their own nginx: `make up` loopback (nginx runs beside the
services), compose the `web-ui` service by its host name.

TRUSTED_PROXIES is a comma-separated list of IP addresses, networks (CIDR) and host names. A
host name is looked up when a request needs it, and again after NAME_TTL_SECONDS, so a proxy
container that was re-created with a new address is recognised, and one not started yet (the
name does not resolve) is simply not trusted until it is.
"""
import ipaddress
import re
import socket
import threading
import time

from .settings import ConfigError

# The header is believed from nobody unless the deployment names its proxy.
DEFAULT_TRUSTED_PROXIES = ""
NAME_TTL_SECONDS = 30.0
# A DNS name (compose service names included): letters, digits, hyphens and dots.
_HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def _resolve(name: str) -> frozenset:
    try:
        answers = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return frozenset()
    return frozenset(ipaddress.ip_address(answer[4][0].split("%")[0]) for answer in answers)


class TrustedProxies:
    """The proxies whose X-Real-IP names the client: fixed networks, and host names resolved on
    demand (cached NAME_TTL_SECONDS, a failed look-up included, so a missing name costs one
    look-up per interval, not one per request)."""

    def __init__(self, networks=(), names=(), *, resolve=_resolve, ttl: float = NAME_TTL_SECONDS):
        self.networks = tuple(networks)
        self.names = tuple(names)
        self._resolve, self._ttl = resolve, ttl
        self._lock = threading.Lock()
        self._resolved: dict[str, tuple[float, frozenset]] = {}

    def __bool__(self) -> bool:
        return bool(self.networks or self.names)

    def _addresses_of(self, name: str) -> frozenset:
        now = time.monotonic()
        with self._lock:
            cached = self._resolved.get(name)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        addresses = self._resolve(name)
        with self._lock:
            self._resolved[name] = (now, addresses)
        return addresses

    def __contains__(self, peer) -> bool:
        if any(peer in network for network in self.networks):
            return True
        mapped = getattr(peer, "ipv4_mapped", None)
        return any(peer in self._addresses_of(name) or (mapped is not None and mapped in
                                                         self._addresses_of(name))
                   for name in self.names)


def trusted_proxies(setting: str | None, *, resolve=_resolve) -> TrustedProxies:
    """The proxies of TRUSTED_PROXIES (unset or "": none); ConfigError at start if malformed."""
    text = DEFAULT_TRUSTED_PROXIES if setting is None else setting
    networks, names = [], []
    for part in (part.strip() for part in text.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
            continue
        except ValueError:
            pass
        if "/" in part or not _HOST_NAME.match(part) or part.replace(".", "").isdigit():
            raise ConfigError(f"setting TRUSTED_PROXIES must be comma-separated IP addresses, "
                              f"networks or host names, got {text!r}")
        names.append(part)
    return TrustedProxies(networks, names, resolve=resolve)


def _address(text: str | None):
    try:
        return ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None


def client_address(request, proxies: TrustedProxies) -> str | None:
    """The client's IP address as text: X-Real-IP if the peer is a trusted proxy and the header
    holds one address, else the peer itself."""
    peer = _address(request.remote_addr)
    if peer is not None and proxies and peer in proxies:
        forwarded = _address(request.headers.get("X-Real-IP"))
        if forwarded is not None:
            return str(forwarded)
    return str(peer) if peer is not None else None
