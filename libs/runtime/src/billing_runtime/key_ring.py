"""Encryption at rest with keys that can be rotated: a comma-separated list of Fernet keys (url-safe
base64 of 32 bytes each) from the environment. The first key encrypts; every key decrypts, so a key
added in front of the old one takes over new writes while what the old one wrote still reads, until
``rotate`` has re-encrypted it and the old key can be dropped (cryptography's ``MultiFernet``).

cryptography is imported by the first encryption or decryption, not at start: its Rust extension is
about 6 MiB of a process's memory (issue 16), and most processes that hold a key ring seldom use it
(the dispatcher's api process encrypts a secret when an endpoint is created or rotated, checkout-web
opens a session cookie on the dashboard only). The keys are checked when the ring is made, so a
wrong key still stops the service at start."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TYPE_CHECKING

from billing_runtime.secret_policy import PUBLISHED_SECRETS

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

GENERATE_HINT = (
    "generate one: python3 -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


class UndecryptableError(Exception):
    """A stored ciphertext that no configured key opens (a key dropped too early, or tampering)."""


def key_ring_problem(value: str, name: str) -> str | None:
    """Why ``value`` cannot be the key list of variable ``name``, or None when it can. Never quotes a key."""
    keys = [part.strip() for part in value.split(",") if part.strip()]
    if not keys:
        return f"{name} is required ({GENERATE_HINT})"
    for position, key in enumerate(keys, start=1):
        if key in PUBLISHED_SECRETS:
            return f"{name}: key {position} is a value published in the repository ({GENERATE_HINT})"
        if not _is_fernet_key(key):
            return f"{name}: key {position} must be url-safe base64 of 32 bytes ({GENERATE_HINT})"
    if len(set(keys)) != len(keys):
        return f"{name}: a key is listed twice"
    return None


def _is_fernet_key(key: str) -> bool:
    """What ``Fernet(key)`` accepts: url-safe base64 of 32 bytes (checked here without cryptography)."""
    try:
        return len(base64.urlsafe_b64decode(key.encode())) == 32
    except (binascii.Error, ValueError):
        return False


class KeyRing:
    """``encrypt`` with the first key, ``decrypt`` with any (see the module)."""

    def __init__(self, value: str) -> None:
        keys = [part.strip() for part in value.split(",") if part.strip()]
        if not keys:
            raise ValueError("a key ring needs at least one key")
        if not all(_is_fernet_key(key) for key in keys):
            raise ValueError("Fernet key must be 32 url-safe base64-encoded bytes.")  # Fernet's own words
        self._keys = tuple(keys)
        self._multi: MultiFernet | None = None

    def _fernet(self) -> MultiFernet:
        if self._multi is None:
            from cryptography.fernet import Fernet, MultiFernet

            self._multi = MultiFernet([Fernet(key.encode()) for key in self._keys])
        return self._multi

    def encrypt(self, plaintext: str) -> str:
        return self._fernet().encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        return _opened(self._fernet().decrypt, token)

    def rotate(self, token: str) -> str:
        """The same plaintext, encrypted with the first key (for re-encrypting what older keys wrote)."""
        return _opened(self._fernet().rotate, token)


def _opened(operation: Callable[[bytes], bytes], token: str) -> str:
    from cryptography.fernet import InvalidToken  # loaded by ``_fernet`` already

    try:
        return operation(token.encode()).decode()
    except InvalidToken as exc:
        raise UndecryptableError("a stored ciphertext does not open with any configured key") from exc


def generate_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


__all__ = ["GENERATE_HINT", "KeyRing", "UndecryptableError", "generate_key", "key_ring_problem"]
