"""Which address a request comes from, for limits that count per client (the sign-in throttle).

`request.remote_addr` is the peer. Behind nginx the peer is nginx, which puts the client's
address in X-Real-IP; that header is believed only when the peer is one of TRUSTED_PROXIES
(default: loopback and the private networks compose uses). From any other peer it is ignored, so
a client cannot pick the address it is counted under by sending the header itself.
"""
import ipaddress

from .config import ConfigError

DEFAULT_TRUSTED_PROXIES = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"


def trusted_proxies(setting: str | None) -> tuple:
    """The networks of TRUSTED_PROXIES ("" trusts no proxy); ConfigError at start if malformed."""
    text = DEFAULT_TRUSTED_PROXIES if setting is None else setting
    try:
        return tuple(ipaddress.ip_network(part.strip(), strict=False)
                     for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"setting TRUSTED_PROXIES must be comma-separated IP addresses or "
                          f"networks, got {text!r}") from exc


def _address(text: str | None):
    try:
        return ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None


def client_address(request, proxies: tuple) -> str | None:
    """The client's IP address as text: X-Real-IP if the peer is a trusted proxy and the header
    holds one address, else the peer itself."""
    peer = _address(request.remote_addr)
    if peer is not None and any(peer in network for network in proxies):
        forwarded = _address(request.headers.get("X-Real-IP"))
        if forwarded is not None:
            return str(forwarded)
    return str(peer) if peer is not None else None
