"""HL7 gateways (PCD Alert Reporters): who may send PCD-04 alarms over MLLP, and where their
PCD-05 status goes. A gateway is a device of the registry (its key, its scope, its revocation)
known by its MSH-3/MSH-4; a message is authenticated by that device's key in MSH-8 (Security) or
by coming from an address in the gateway's allowlist.

    python -m alert_ingestion.hl7_gateways register --device-id 7 --application INTELLIVUE \\
        --facility ICU_GW [--allow 10.20.0.0/24] [--status-endpoint 10.20.0.5:2576]
    python -m alert_ingestion.hl7_gateways list
"""
import argparse
import hmac
import ipaddress
import sys

from healthguard import clock
from healthguard.auth import DEVICE_SEEN_RESOLUTION, Device, token_hash
from healthguard.config import load_config
from healthguard.db import Database
from healthguard.errors import ApiError

GATEWAY_SELECT = """
    SELECT g.gateway_id, g.device_id, g.sending_application, g.sending_facility,
           g.allowed_addresses::text[] AS allowed_addresses, g.status_host, g.status_port,
           d.name, d.ward, d.patient_id, d.key_hash, d.revoked_at
    FROM hl7_gateways g JOIN devices d USING (device_id)
"""


def parse_endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not host:port")
    return host, int(port)


def register_gateway(cur, *, device_id: int, sending_application: str, sending_facility: str = "",
                     allowed_addresses=(), status_endpoint: str | None = None) -> dict:
    """Register (or update) the gateway sending as MSH-3/MSH-4 for a device of the registry."""
    cur.execute("SELECT revoked_at FROM devices WHERE device_id = %s", (device_id,))
    device = cur.fetchone()
    if device is None or device["revoked_at"] is not None:
        raise ApiError(422, f"no unrevoked device {device_id}", field="device_id")
    if not sending_application:
        raise ApiError(422, "the sending application (MSH-3) is required", field="sending_application")
    networks = [str(ipaddress.ip_network(address, strict=False)) for address in allowed_addresses]
    host, port = parse_endpoint(status_endpoint) if status_endpoint else (None, None)
    cur.execute("""
        INSERT INTO hl7_gateways (device_id, sending_application, sending_facility, allowed_addresses,
                                  status_host, status_port, created_at)
        VALUES (%s, %s, %s, %s::cidr[], %s, %s, %s)
        ON CONFLICT (sending_application, sending_facility) DO UPDATE
            SET device_id = EXCLUDED.device_id, allowed_addresses = EXCLUDED.allowed_addresses,
                status_host = EXCLUDED.status_host, status_port = EXCLUDED.status_port
        RETURNING gateway_id
    """, (device_id, sending_application, sending_facility, networks, host, port, clock.now()))
    return get_gateway(cur, gateway_id=cur.fetchone()["gateway_id"])


def get_gateway(cur, *, gateway_id: int) -> dict | None:
    cur.execute(GATEWAY_SELECT + " WHERE g.gateway_id = %s", (gateway_id,))
    return cur.fetchone()


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
    if not keyed and not _allowed(peer, gateway["allowed_addresses"]):
        return None
    cur.execute("""
        UPDATE devices SET last_seen_at = %(now)s
        WHERE device_id = %(device)s
          AND (last_seen_at IS NULL OR last_seen_at <= %(now)s - %(resolution)s::interval)
    """, {"now": clock.now(), "device": gateway["device_id"], "resolution": DEVICE_SEEN_RESOLUTION})
    return gateway, Device(device_id=gateway["device_id"], name=gateway["name"], ward=gateway["ward"],
                           patient_id=gateway["patient_id"])


def _allowed(peer: str | None, networks) -> bool:
    if not peer or not networks:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
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
    url = load_config(optional=("DATABASE_URL",)).get("DATABASE_URL")
    if not url:
        print("missing required setting DATABASE_URL", file=sys.stderr)
        return 2
    db = Database(url, maxconn=1)
    try:
        with db.transaction() as cur:
            if args.command == "register":
                try:
                    gateway = register_gateway(
                        cur, device_id=args.device_id, sending_application=args.application,
                        sending_facility=args.facility, allowed_addresses=args.allow,
                        status_endpoint=args.status_endpoint)
                except (ApiError, ValueError) as exc:
                    print(f"not registered: {exc}", file=sys.stderr)
                    return 1
                rows = [gateway]
            else:
                cur.execute(GATEWAY_SELECT + " ORDER BY g.gateway_id")
                rows = cur.fetchall()
        for row in rows:
            endpoint = f"{row['status_host']}:{row['status_port']}" if row["status_host"] else "-"
            revoked = "\trevoked" if row["revoked_at"] else ""
            allowed = ",".join(row["allowed_addresses"]) or "-"
            print(f"{row['gateway_id']}\t{row['sending_application']}^{row['sending_facility']}\t"
                  f"device {row['device_id']} ({row['name']})\tallow {allowed}"
                  f"\tstatus {endpoint}{revoked}")
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
