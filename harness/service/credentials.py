"""Token secrets: how strong a secret must be, the hash forms a tokens file may hold instead of
the secret, and checking a presented secret against either (constant-time comparisons).

Hash forms (the stdlib's KDFs; make one with `harness hash-token`):

    scrypt$<n>$<r>$<p>$<salt, base64>$<key, base64>
    pbkdf2_sha256$<iterations>$<salt, base64>$<key, base64>

A plaintext secret is never kept: it is replaced at load by a keyed SHA-256 digest (the key is
random per process), so memory holds no token in the clear either. Placeholder and example
secrets (the shipped example files', `changeme`, ...) are refused, whatever their length.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

MIN_SECRET_LENGTH = 16
MIN_DISTINCT_CHARACTERS = 8
PLACEHOLDER_WORDS = ("placeholder", "replace-me", "replace_me", "changeme", "change-me",
                     "example", "password", "xxxxxxxx", "your-token", "<", ">")  # fmt: skip
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
PBKDF2_MIN_ITERATIONS = 100_000
_PROCESS_KEY = secrets.token_bytes(32)


def weakness(secret: str) -> str | None:
    """Why `secret` may not be a token's secret, or None."""
    lowered = secret.lower()
    for word in PLACEHOLDER_WORDS:
        if word in lowered:
            return f"looks like a placeholder or example ({word!r}); generate a real secret"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"too short: at least {MIN_SECRET_LENGTH} characters"
    if len(set(secret)) < MIN_DISTINCT_CHARACTERS:
        return f"too weak: at least {MIN_DISTINCT_CHARACTERS} different characters"
    if secret != secret.strip() or any(c in secret for c in ",\n\r\t "):
        return "may not contain spaces, commas or line breaks"
    return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode(), validate=True)


def hash_secret(secret: str, kind: str = "scrypt") -> str:
    """The hash form of `secret` to put in a tokens file."""
    salt = secrets.token_bytes(16)
    if kind == "pbkdf2_sha256":
        key = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, 600_000)
        return f"pbkdf2_sha256$600000${_b64(salt)}${_b64(key)}"
    key = hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **SCRYPT)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${_b64(salt)}${_b64(key)}"


def is_hash_form(text: str) -> bool:
    return text.startswith(("scrypt$", "pbkdf2_sha256$"))


_SCRYPT_FORM = re.compile(r"^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$")
_PBKDF2_FORM = re.compile(r"^pbkdf2_sha256\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$")


@dataclass(frozen=True)
class Verifier:
    """What a token's secret is checked against; never the secret itself."""

    kind: str  # keyed | scrypt | pbkdf2_sha256
    key: bytes
    salt: bytes = b""
    params: tuple[int, ...] = ()

    @property
    def costly(self) -> bool:
        return self.kind != "keyed"

    def matches(self, presented: str) -> bool:
        data = presented.encode()
        if self.kind == "keyed":
            derived = hmac.new(_PROCESS_KEY, data, hashlib.sha256).digest()
        elif self.kind == "scrypt":
            n, r, p = self.params
            derived = hashlib.scrypt(data, salt=self.salt, n=n, r=r, p=p, dklen=len(self.key),
                                     maxmem=256 * 1024 * 1024)  # fmt: skip
        else:
            derived = hashlib.pbkdf2_hmac("sha256", data, self.salt, self.params[0], len(self.key))
        return hmac.compare_digest(derived, self.key)


def parse_hash(text: str) -> Verifier:
    """The verifier of a hash form; ValueError saying what is wrong with it."""
    if match := _SCRYPT_FORM.match(text):
        n, r, p = (int(x) for x in match.groups()[:3])
        if n < 2**14 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16 or n * r > 2**22:
            raise ValueError("scrypt parameters out of range (n a power of two ≥ 16384, r, p)")
        salt, key = _unb64(match[4]), _unb64(match[5])
        return Verifier("scrypt", key, salt, (n, r, p))
    if match := _PBKDF2_FORM.match(text):
        iterations = int(match[1])
        if not PBKDF2_MIN_ITERATIONS <= iterations <= 10_000_000:
            raise ValueError(f"pbkdf2 iterations must be {PBKDF2_MIN_ITERATIONS}..10000000")
        return Verifier("pbkdf2_sha256", _unb64(match[3]), _unb64(match[2]), (iterations,))
    raise ValueError(
        "not a hash form: expected scrypt$n$r$p$salt$key or pbkdf2_sha256$iterations$salt$key "
        "(make one with `harness hash-token`)"
    )


def keyed(secret: str) -> Verifier:
    """A plaintext secret's in-memory form: a digest keyed by this process's random key."""
    return Verifier("keyed", hmac.new(_PROCESS_KEY, secret.encode(), hashlib.sha256).digest())


def fingerprint(presented: str) -> bytes:
    """A cache key for a presented secret (never stored or logged)."""
    return hmac.new(_PROCESS_KEY, presented.encode(), hashlib.sha256).digest()
