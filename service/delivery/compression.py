"""Content coding of answers: brotli or gzip, by the client's Accept-Encoding (RFC 9110)."""

from __future__ import annotations

import gzip

import brotli

BROTLI, GZIP = "br", "gzip"
# fast settings: answers are compressed once per cache entry, or per request when uncached
BROTLI_QUALITY = 5
GZIP_LEVEL = 6


def negotiate_encoding(accept_encoding: str | None) -> str | None:
    """The coding to send: the one with the highest quality the client accepts, brotli on a
    tie; None for identity (no header, or neither coding acceptable)."""
    if not accept_encoding:
        return None
    qualities: dict[str, float] = {}
    for part in accept_encoding.split(","):
        coding, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if coding:
            qualities[coding.lower()] = quality
    wildcard = qualities.get("*", 0.0)
    best: tuple[float, int, str] | None = None
    for preference, coding in enumerate((GZIP, BROTLI)):  # later wins a tie: brotli
        quality = qualities.get(coding, wildcard)
        if quality > 0 and (best is None or (quality, preference) > best[:2]):
            best = (quality, preference, coding)
    return best[2] if best else None


def compress(body: bytes, coding: str) -> bytes:
    if coding == BROTLI:
        return bytes(brotli.compress(body, quality=BROTLI_QUALITY))
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
