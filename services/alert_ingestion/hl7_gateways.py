"""HL7 gateways (PCD Alert Reporters): who may send PCD-04 alarms over MLLP, and where their
PCD-05 status goes. A gateway is a device of the registry (its key, its scope, its revocation)
known by its MSH-3/MSH-4; a message is authenticated by that device's key in MSH-8 (Security) or
by coming from an address in the gateway's allowlist.

    python -m alert_ingestion.hl7_gateways register --device-id 7 --application INTELLIVUE \\
        --facility ICU_GW [--allow 10.20.0.0/24] [--status-endpoint 10.20.0.5:2576]
    python -m alert_ingestion.hl7_gateways list

Supervisors do the same over REST: PUT /api/v1/devices/<id>/hl7-gateway, GET /api/v1/hl7-gateways.
The REST route never moves a sending application/facility from one device to another (409); the
CLI does, for an operator replacing a gateway's device.

Both keep to the operator's guard-rails (GatewayRules): an allowlist no wider than
HL7_ALLOWLIST_WIDEST_IPV4_PREFIX (/16) or HL7_ALLOWLIST_WIDEST_IPV6_PREFIX (/64), so never
0.0.0.0/0 or ::/0 (keyless HL7 from anywhere); a status endpoint only inside HL7_DEVICE_NETWORKS,
as the worker connects there (never the database's host and port because a supervisor typed it).
"""
import argparse
import datetime
import hmac
import ipaddress
import re
import socket
import sys
import unicodedata
from dataclasses import dataclass

from healthguard import clock
from healthguard.auth import Device, token_hash
from healthguard.db import Database
from healthguard.errors import ApiError
from healthguard.settings import ConfigError

GATEWAY_SELECT = """
    SELECT g.gateway_id, g.device_id, g.sending_application, g.sending_facility,
           g.allowed_addresses::text[] AS allowed_addresses, g.status_host, g.status_port, g.created_at,
           d.name, d.ward, d.patient_id, d.key_hash, d.revoked_at
    FROM hl7_gateways g JOIN devices d USING (device_id)
"""

# Limits of what a gateway is registered with (the REST models document the same numbers).
MAX_NAME_LENGTH = 64       # MSH-3, MSH-4 first component
MAX_ADDRESSES = 32
MAX_ENDPOINT_LENGTH = 260  # a 253-character host name, ":" and a port
# The standard HL7 v2 delimiters (MSH-1 and MSH-2): a name holding one could never be matched
# against a parsed MSH-3/MSH-4, and would break the PCD-05 header written back with it.
HL7_DELIMITERS = frozenset("|^~\\&")
_HOST_NAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
                        r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?", re.ASCII)
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)


@dataclass(frozen=True)
class GatewayRules:
    """The operator's limits on what a gateway may be registered with."""
    widest_ipv4_prefix: int = 16
    widest_ipv6_prefix: int = 64
    device_networks: tuple = ()  # ipaddress networks where gateways' PCD-05 listeners may be

    def outside_device_networks(self, host: str) -> bool:
        """True unless `host` (an IP address) is in one of the device networks."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return True
        return not any(address in network for network in self.device_networks)


def resolve_endpoint(host: str, port: int) -> list[str]:
    """The IP addresses of a status endpoint's host (itself when it is one). OSError when a host
    name does not resolve."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in found))


def parse_endpoint(text: str) -> tuple[str, int]:
    """host:port of a gateway's PCD-05 listener: an IPv4 address or a host name, or an IPv6
    address in brackets ([fd00::5]:2576); the host is returned without brackets."""
    host, _, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            valid_host = ipaddress.ip_address(host).version == 6
        except ValueError:
            valid_host = False
    else:
        valid_host = bool(_HOST_NAME.fullmatch(host))
    if not valid_host or not _PORT.fullmatch(port) or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not host:port (an IPv6 address in brackets)")
    return host, int(port)


def format_endpoint(host: str | None, port: int | None) -> str | None:
    if host is None:
        return None
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def gateway_json(row: dict) -> dict:
    """A gateway as the REST routes answer it (and the CLI lists it); never its device's key hash."""
    created_at = row["created_at"]
    return {
        "gateway_id": row["gateway_id"], "device_id": row["device_id"], "device_name": row["name"],
        "device_revoked": row["revoked_at"] is not None,
        "sending_application": row["sending_application"], "sending_facility": row["sending_facility"],
        "allowed_addresses": list(row["allowed_addresses"]),
        "status_endpoint": format_endpoint(row["status_host"], row["status_port"]),
        "created_at": created_at.isoformat() if isinstance(created_at, datetime.datetime) else created_at,
    }


def _check_name(value: str, field: str, *, required: bool) -> None:
    segment = "MSH-3" if field == "sending_application" else "MSH-4"
    if required and not value.strip():
        raise ApiError(422, f"the {field.replace('_', ' ')} ({segment}) is required", field=field)
    if len(value) > MAX_NAME_LENGTH:
        raise ApiError(422, f"{segment} is longer than {MAX_NAME_LENGTH} characters", field=field)
    if any(c in HL7_DELIMITERS or unicodedata.category(c) == "Cc" for c in value):
        raise ApiError(422, f"{segment} may not hold an HL7 delimiter (| ^ ~ \\ &) or a control character",
                       field=field)


def _networks(addresses, rules: GatewayRules) -> list[str]:
    addresses = list(addresses)
    if len(addresses) > MAX_ADDRESSES:
        raise ApiError(422, f"at most {MAX_ADDRESSES} allowed addresses", field="allowed_addresses")
    networks = []
    for index, address in enumerate(addresses):
        try:
            network = ipaddress.ip_network(address, strict=False)
        except ValueError:
            raise ApiError(422, f"{address!r} is not an IP address or network (CIDR)",
                           field=f"allowed_addresses.{index}") from None
        widest = rules.widest_ipv4_prefix if network.version == 4 else rules.widest_ipv6_prefix
        if network.prefixlen < widest:
            # An allowlisted address sends without the device key: a wide network is keyless
            # HL7 for everything in it.
            raise ApiError(422, f"{address!r} is wider than a /{widest}: allow the gateways' own "
                                f"addresses or subnet", field=f"allowed_addresses.{index}")
        networks.append(str(network))
    return networks


def _check_status_host(host: str, port: int, rules: GatewayRules) -> None:
    if not rules.device_networks:
        raise ApiError(422, "no device networks are configured (HL7_DEVICE_NETWORKS): a status "
                            "endpoint cannot be registered", field="status_endpoint")
    try:
        addresses = resolve_endpoint(host, port)
    except (OSError, UnicodeError):
        raise ApiError(422, f"{host!r} does not resolve to an address", field="status_endpoint") from None
    outside = [address for address in addresses if rules.outside_device_networks(address)]
    if outside:
        raise ApiError(422, f"the status endpoint {outside[0]} is outside the device networks "
                            f"(HL7_DEVICE_NETWORKS)", field="status_endpoint")


def register_gateway(cur, *, device_id: int, sending_application: str, sending_facility: str = "",
                     allowed_addresses=(), status_endpoint: str | None = None,
                     reassign: bool = False,
                     rules: GatewayRules = GatewayRules()) -> dict:
    """Register (or update) the gateway sending as MSH-3/MSH-4 for a device of the registry.
    404 an unknown device, 409 a revoked one; 422 a name, address or endpoint that cannot be
    used or is outside the `rules`. A sending application/facility already registered for
    another device is a 409, unless `reassign` (the CLI): then it moves to this device."""
    host, port = None, None
    if status_endpoint:
        try:
            if len(status_endpoint) > MAX_ENDPOINT_LENGTH:
                raise ValueError(f"the status endpoint is longer than {MAX_ENDPOINT_LENGTH} characters")
            host, port = parse_endpoint(status_endpoint)
        except ValueError as exc:
            raise ApiError(422, str(exc), field="status_endpoint") from None
        # Before the device's row is locked: a host name's lookup may take seconds.
        _check_status_host(host, port, rules)
    # FOR SHARE: a revocation committing meanwhile waits, and then revokes this gateway with its device.
    cur.execute("SELECT revoked_at FROM devices WHERE device_id = %s FOR SHARE", (device_id,))
    device = cur.fetchone()
    if device is None:
        raise ApiError(404, f"no device {device_id}")
    if device["revoked_at"] is not None:
        raise ApiError(409, f"device {device_id} is revoked: register a new one")
    _check_name(sending_application, "sending_application", required=True)
    _check_name(sending_facility, "sending_facility", required=False)
    networks = _networks(allowed_addresses, rules)
    # One statement, so two registrations of the same pair for different devices cannot both win:
    # the loser's conflicting row fails the WHERE, and nothing is returned.
    cur.execute("""
        INSERT INTO hl7_gateways (device_id, sending_application, sending_facility, allowed_addresses,
                                  status_host, status_port, created_at)
        VALUES (%(device)s, %(application)s, %(facility)s, %(networks)s::cidr[], %(host)s, %(port)s, %(now)s)
        ON CONFLICT (sending_application, sending_facility) DO UPDATE
            SET device_id = EXCLUDED.device_id, allowed_addresses = EXCLUDED.allowed_addresses,
                status_host = EXCLUDED.status_host, status_port = EXCLUDED.status_port
            WHERE %(reassign)s OR hl7_gateways.device_id = EXCLUDED.device_id
        RETURNING gateway_id
    """, {"device": device_id, "application": sending_application, "facility": sending_facility,
          "networks": networks, "host": host, "port": port, "now": clock.now(), "reassign": reassign})
    registered = cur.fetchone()
    if registered is None:
        cur.execute("""SELECT device_id FROM hl7_gateways
                       WHERE sending_application = %s AND sending_facility = %s""",
                    (sending_application, sending_facility))
        owner = cur.fetchone()
        raise ApiError(409, f"{sending_application}^{sending_facility} is the gateway of device "
                            f"{owner['device_id'] if owner else 'another device'}",
                       field="sending_application")
    return get_gateway(cur, gateway_id=registered["gateway_id"])


def get_gateway(cur, *, gateway_id: int) -> dict | None:
    cur.execute(GATEWAY_SELECT + " WHERE g.gateway_id = %s", (gateway_id,))
    return cur.fetchone()


def list_gateways(cur) -> list[dict]:
    cur.execute(GATEWAY_SELECT + " ORDER BY g.gateway_id")
    return cur.fetchall()


def authenticated_gateway(cur, *, sending_application: str, sending_facility: str, security: str,
                          peer: str | None) -> tuple[dict, Device] | None:
    """The registered gateway that sent this message, with its device, or None: an unknown
    MSH-3/MSH-4, a revoked device, or neither its key in MSH-8 nor an allowlisted address."""
    cur.execute(GATEWAY_SELECT + " WHERE g.sending_application = %s AND g.sending_facility = %s",
                (sending_application, sending_facility))
    gateway = cur.fetchone()
    if gateway is None or gateway["revoked_at"] is not None:
        return None
    keyed = bool(security) and hmac.compare_digest(token_hash(security), gateway["key_hash"])
    if not keyed and not allowed_address(peer, gateway["allowed_addresses"]):
        return None
    # Any message on its connection is a beat of the gateway (heartbeats.py).
    cur.execute("SELECT device_heard(%s, %s)", (gateway["device_id"], clock.now()))
    return gateway, Device(device_id=gateway["device_id"], name=gateway["name"], ward=gateway["ward"],
                           patient_id=gateway["patient_id"])


def gateway_networks(cur) -> list:
    """The allowed addresses of every gateway whose device is not revoked, as ipaddress
    networks: the MLLP listener keeps a share of its connections for them."""
    cur.execute("""
        SELECT DISTINCT unnest(g.allowed_addresses)::text AS network
        FROM hl7_gateways g JOIN devices d USING (device_id)
        WHERE d.revoked_at IS NULL
    """)
    return [ipaddress.ip_network(row["network"]) for row in cur.fetchall()]


def allowed_address(peer: str | None, networks) -> bool:
    """True when the peer's address is in one of the networks (text or ipaddress networks)."""
    if not peer or not networks:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    # A listener bound to "::" sees an IPv4 gateway as ::ffff:10.20.0.5.
    address = getattr(address, "ipv4_mapped", None) or address
    return any(address in ipaddress.ip_network(network) for network in networks)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m alert_ingestion.hl7_gateways",
                                     description="Register the HL7 gateways that send PCD-04 alarms.")
    commands = parser.add_subparsers(dest="command", required=True)
    register = commands.add_parser("register", help="register or update a gateway")
    register.add_argument("--device-id", type=int, required=True,
                          help="its device in the registry (POST /api/v1/devices): key and scope")
    register.add_argument("--application", required=True, help="MSH-3 it sends (first component)")
    register.add_argument("--facility", default="", help="MSH-4 it sends (first component)")
    register.add_argument("--allow", action="append", default=[],
                          help="a source address or network accepted without the key in MSH-8")
    register.add_argument("--status-endpoint", help="host:port of its MLLP listener for PCD-05 status")
    commands.add_parser("list", help="the registered gateways")
    args = parser.parse_args(argv)
    try:
        from .settings import GatewayCliSettings  # it imports this module
        settings = GatewayCliSettings.load()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    rules = settings.gateway_rules
    db = Database(settings.DATABASE_URL, maxconn=1)
    try:
        with db.transaction() as cur:
            if args.command == "register":
                try:
                    gateway = register_gateway(
                        cur, device_id=args.device_id, sending_application=args.application,
                        sending_facility=args.facility, allowed_addresses=args.allow,
                        status_endpoint=args.status_endpoint, reassign=True, rules=rules)
                except ApiError as exc:
                    print(f"not registered: {exc}", file=sys.stderr)
                    return 1
                rows = [gateway]
            else:
                rows = list_gateways(cur)
        for gateway in map(gateway_json, rows):
            revoked = "\trevoked" if gateway["device_revoked"] else ""
            allowed = ",".join(gateway["allowed_addresses"]) or "-"
            print(f"{gateway['gateway_id']}\t{gateway['sending_application']}^{gateway['sending_facility']}\t"
                  f"device {gateway['device_id']} ({gateway['device_name']})\tallow {allowed}"
                  f"\tstatus {gateway['status_endpoint'] or '-'}{revoked}")
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
