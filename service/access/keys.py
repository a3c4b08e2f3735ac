"""The API key format: recognisable, checksummed, stored only as a hash and a visible prefix.

`gsk_s_` (staff) or `gsk_p_` (partner), 30 random base62 characters, then a 6-character
base62 CRC32 of everything before it, as GitHub's tokens do: a mistyped or truncated key is
told apart from a wrong one without a database, and secret scanners can recognise a leak.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import zlib
from dataclasses import dataclass

from service.access.models import KeyKind

ALPHABET = string.digits + string.ascii_letters
RANDOM_LENGTH = 30
CHECKSUM_LENGTH = 6
VISIBLE_RANDOM = 8  # random characters kept in the visible prefix
KIND_MARK = {KeyKind.STAFF: "s", KeyKind.PARTNER: "p"}
KEY_PATTERN = re.compile(
    rf"^gsk_(?P<mark>[sp])_(?P<body>[0-9A-Za-z]{{{RANDOM_LENGTH}}})"
    rf"(?P<checksum>[0-9A-Za-z]{{{CHECKSUM_LENGTH}}})$"
)


class MalformedKey(ValueError):
    """Not a key of this service, or one with a typo in it."""


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def _checksum(text: str) -> str:
    return _base62(zlib.crc32(text.encode("ascii")), CHECKSUM_LENGTH)


def hash_secret(key: str) -> str:
    """Keys carry 178 random bits, so one SHA-256 is enough; a slow hash would add nothing."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class NewKey:
    secret: str  # shown once, never stored
    prefix: str
    secret_hash: str


def generate(kind: KeyKind) -> NewKey:
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    head = f"gsk_{KIND_MARK[kind]}_{body}"
    secret = head + _checksum(head)
    return NewKey(secret=secret, prefix=prefix_of(secret), secret_hash=hash_secret(secret))


def prefix_of(key: str) -> str:
    return key[: len("gsk_s_") + VISIBLE_RANDOM]


def parse(key: str) -> tuple[KeyKind, str]:
    """The key's kind and visible prefix, once its format and checksum hold."""
    match = KEY_PATTERN.match(key.strip())
    if match is None:
        raise MalformedKey(
            "not an API key of this service: keys look like gsk_s_... (staff) or gsk_p_... "
            "(partner), 38 characters"
        )
    head = key.strip()[:-CHECKSUM_LENGTH]
    if not hmac.compare_digest(_checksum(head), match["checksum"]):
        raise MalformedKey("the API key's checksum does not match: it was mistyped or truncated")
    kind = KeyKind.STAFF if match["mark"] == "s" else KeyKind.PARTNER
    return kind, prefix_of(key.strip())


def matches(key: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(key.strip()), secret_hash)
