"""Encryption at rest with keys that can be rotated: a comma-separated list of Fernet keys (url-safe
base64 of 32 bytes each) from the environment. The first key encrypts; every key decrypts, so a key
added in front of the old one takes over new writes while what the old one wrote still reads, until
``rotate`` has re-encrypted it and the old key can be dropped (cryptography's ``MultiFernet``)."""

from __future__ import annotations

import base64
import binascii

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from billing_runtime.secret_policy import PUBLISHED_SECRETS

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
        try:
            raw = base64.urlsafe_b64decode(key.encode())
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            return f"{name}: key {position} must be url-safe base64 of 32 bytes ({GENERATE_HINT})"
    if len(set(keys)) != len(keys):
        return f"{name}: a key is listed twice"
    return None


class KeyRing:
    """``encrypt`` with the first key, ``decrypt`` with any (see the module)."""

    def __init__(self, value: str) -> None:
        keys = [part.strip() for part in value.split(",") if part.strip()]
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise UndecryptableError("a stored ciphertext does not open with any configured key") from exc

    def rotate(self, token: str) -> str:
        """The same plaintext, encrypted with the first key (for re-encrypting what older keys wrote)."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise UndecryptableError("a stored ciphertext does not open with any configured key") from exc


def generate_key() -> str:
    return Fernet.generate_key().decode()


__all__ = ["GENERATE_HINT", "KeyRing", "UndecryptableError", "generate_key", "key_ring_problem"]
