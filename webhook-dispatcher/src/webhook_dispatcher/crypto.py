"""Signing secrets are encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256, authenticated), under
the keys of ``WEBHOOKS_ENCRYPTION_KEY``: one key, or several comma-separated to rotate (the first
encrypts, every one decrypts; ``billing_runtime.key_ring``)."""

from __future__ import annotations

from billing_runtime.key_ring import KeyRing, UndecryptableError
from billing_runtime.key_ring import generate_key as generate_key


class SecretBox:
    """Encrypts and decrypts endpoint signing secrets with the keys from ``WEBHOOKS_ENCRYPTION_KEY``."""

    def __init__(self, keys: str) -> None:
        try:
            self._ring = KeyRing(keys)
        except ValueError as exc:
            # Never echo a key into the error.
            raise ValueError("WEBHOOKS_ENCRYPTION_KEY must be url-safe base64 encoded 32-byte keys") from exc

    def encrypt(self, secret: str) -> str:
        return self._ring.encrypt(secret)

    def decrypt(self, token: str) -> str:
        try:
            return self._ring.decrypt(token)
        except UndecryptableError as exc:
            raise RuntimeError("a stored signing secret does not decrypt with the configured keys") from exc


__all__ = ["SecretBox", "generate_key"]
