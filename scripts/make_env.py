"""Write .env from .env.example, replacing every `change-me` with its own random secret, and
`VAPID_PRIVATE_KEY`/`VAPID_PUBLIC_KEY` with a fresh Web Push (VAPID, RFC 8292) key pair."""
import base64
import re
import secrets
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]
target = root / ".env"

# NIST P-256 (the only curve VAPID uses). Pure Python, so this runs with any python3, before
# the project's virtualenv exists; a key pair is made once per .env.
P = 2**256 - 2**224 + 2**192 + 2**96 - 1
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
A = P - 3
G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
     0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)


def _add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % P == 0:
        return None
    if p1 == p2:
        slope = (3 * x1 * x1 + A) * pow(2 * y1, -1, P) % P
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (slope * slope - x1 - x2) % P
    return x3, (slope * (x1 - x3) - y1) % P


def _multiply(k, point):
    result = None
    while k:
        if k & 1:
            result = _add(result, point)
        point = _add(point, point)
        k >>= 1
    return result


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def vapid_key_pair() -> tuple[str, str]:
    """(private key: the raw 32-byte scalar, public key: the uncompressed point the browser takes
    as applicationServerKey), both base64url without padding, as pywebpush and browsers read them."""
    private = secrets.randbelow(N - 1) + 1
    x, y = _multiply(private, G)
    public = b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")
    return _b64url(private.to_bytes(32, "big")), _b64url(public)


def with_fresh_secrets(text: str) -> str:
    """.env.example's text with a fresh VAPID key pair and every other `change-me` a random
    secret (also used by the compose test, tests/compose/live_compose.py)."""
    private, public = vapid_key_pair()
    text = re.sub(r"(?m)^VAPID_PRIVATE_KEY=change-me$", f"VAPID_PRIVATE_KEY={private}", text)
    text = re.sub(r"(?m)^VAPID_PUBLIC_KEY=change-me$", f"VAPID_PUBLIC_KEY={public}", text)
    return re.sub(r"(?m)(?<==)change-me$", lambda _: secrets.token_urlsafe(24), text)


def main() -> None:
    if target.exists():
        sys.exit(0)
    target.write_text(with_fresh_secrets((root / ".env.example").read_text()))
    target.chmod(0o600)
    print("wrote .env with fresh random secrets")


if __name__ == "__main__":
    main()
