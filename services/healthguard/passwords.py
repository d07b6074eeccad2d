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
from pathlib import Path

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
    """A one-time password to hand over once (first admin, an account administrator's reset): 16
    URL-safe characters, about 96 bits."""
    return secrets.token_urlsafe(12)


@functools.cache
def dummy_hash() -> str:
    """A hash to verify against when the login is unknown (or has no usable password), so every
    failure takes the time of a real verification. Made on first use, not at import."""
    return hash_password(secrets.token_urlsafe(16))


# --- What a new password may be (NIST SP 800-63B, 5.1.1.2) ---------------------------------------
# Length is the rule that matters: at least MIN_LENGTH characters, any characters, no composition
# rules. Beyond it only what an attacker tries first is refused: a common password (the bundled
# list, also as the core of "Password2026!"), one character or a short unit repeated
# ("aaaaaaaaaaaa", "abcabcabcabc"), a run along the alphabet, the digits or the keyboard
# ("abcdefghijkl", "123456789012"), and the account's own login or name.
MIN_LENGTH = 12
MAX_LENGTH = 256
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")
# Rows of a keyboard and the alphabet, for "sequential" passwords.
_SEQUENCES = ("abcdefghijklmnopqrstuvwxyz", "01234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm",
              "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p")
_EDGES = "0123456789!@#$%^&*()_+-=[]{};:'\",.<>/?\\|`~ "


@functools.cache
def common_passwords() -> frozenset:
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def _is_repetition(text: str) -> bool:
    """One unit of up to a third of the text, repeated: "aaaa...", "abab...", "abcabc..."."""
    return any(text == text[:size] * (len(text) // size) + text[:len(text) % size]
               for size in range(1, len(text) // 3 + 1))


def _is_sequence(text: str) -> bool:
    """Mostly a walk along the alphabet, the digits or a keyboard row, either way ("abcdefghijkl",
    "123456789012", "qwertyuiop12"): at least three quarters of its neighbouring pairs are steps."""
    steps = 0
    for a, b in zip(text, text[1:], strict=False):
        if any(a + b in row or b + a in row for row in _SEQUENCES):
            steps += 1
    return steps >= 0.75 * (len(text) - 1)


def _letters(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def weakness(password: str, *, login: str | None = None, name: str | None = None) -> str | None:
    """Why this password may not be chosen, in words for the person choosing it; None if it may."""
    if len(password) < MIN_LENGTH:
        return f"the password must have at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"the password may have at most {MAX_LENGTH} characters"
    folded = password.lower()
    compact = "".join(folded.split())
    core = folded.strip(_EDGES)
    common = common_passwords()
    if folded in common or compact in common or (core and core in common):
        return "this password is one of the most common passwords: choose one nobody would guess"
    if (_is_repetition(compact) or len(set(compact)) <= 2
            or max(map(compact.count, set(compact))) * 2 >= len(compact)):
        return "the password repeats the same characters: choose a longer phrase of your own"
    if _is_sequence(compact):
        return "the password is a run of the keyboard, the alphabet or the digits"
    # What is left once the login and the parts of the name are taken out (letters and digits
    # only: "O'Connor" is "oconnor" in a password) must be a password by itself.
    rest = _letters(password)
    for part in sorted({_letters(p) for p in (login, *(name or "").split()) if p}, key=len, reverse=True):
        if len(part) >= 3:
            rest = rest.replace(part, "")
    if len(rest) < 6 and rest != _letters(password):
        return "the password must not be mostly your login or your name"
    return None
