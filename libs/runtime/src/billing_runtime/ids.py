"""Prefixed, time-ordered, unguessable identifiers (``pay_01J...``): sortable like ULIDs, 80 random bits."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _b32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """Return ``<prefix>_`` + 10 chars of millisecond time + 16 chars of randomness."""
    millis = time.time_ns() // 1_000_000
    return f"{prefix}_{_b32(millis, 10)}{_b32(secrets.randbits(80), 16)}"


def new_token(num_bytes: int = 24) -> str:
    """Return an opaque, unguessable url-safe token."""
    return secrets.token_urlsafe(num_bytes)
