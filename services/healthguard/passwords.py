"""Password hashes: argon2id (argon2-cffi) for every new hash; the older salted scrypt hashes
(``scrypt$N$r$p$salt$hash``) are still verified, and `needs_rehash` tells the sign-in to replace
them with an argon2id hash while it holds the clear password.

An account without a usable password stores a hash starting with ``!`` (see UNUSABLE): nothing
verifies against it, so no password, not even an empty one, signs it in.
"""
import base64
import functools
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# OWASP's argon2id floor (19 MiB, 2 passes, 1 lane): tens of milliseconds per sign-in on a
# server core, while a guess costs an attacker the same memory.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)

# The prefix of a stored hash that matches no password (an account awaiting its first password).
UNUSABLE = "!"


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def _verify_scrypt(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt),
                                n=int(n), r=int(r), p=int(p), dklen=len(expected),
                                maxmem=256 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def verify_password(password: str, stored: str) -> bool:
    if stored.startswith("$argon2"):
        try:
            return _HASHER.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
    if stored.startswith("scrypt$"):
        return _verify_scrypt(password, stored)
    return False  # UNUSABLE, or a scheme we never wrote


def needs_rehash(stored: str) -> bool:
    """True for a hash weaker than what hash_password writes now (scrypt, older argon2 costs)."""
    if stored.startswith("$argon2"):
        try:
            return _HASHER.check_needs_rehash(stored)
        except InvalidHashError:
            return True
    return not stored.startswith(UNUSABLE)


def generate_password() -> str:
    """A one-time password to hand over once (first admin, a supervisor's reset): 16 URL-safe
    characters, about 96 bits."""
    return secrets.token_urlsafe(12)


@functools.cache
def dummy_hash() -> str:
    """A hash to verify against when the login is unknown (or has no usable password), so every
    failure takes the time of a real verification. Made on first use, not at import."""
    return hash_password(secrets.token_urlsafe(16))
