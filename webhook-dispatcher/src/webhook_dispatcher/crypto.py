"""Signing secrets are encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256, authenticated)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken


class SecretBox:
    """Encrypts and decrypts endpoint signing secrets with the key from ``WEBHOOKS_ENCRYPTION_KEY``."""

    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except ValueError as exc:
            # Never echo the key itself into the error.
            raise ValueError("WEBHOOKS_ENCRYPTION_KEY must be a url-safe base64 encoded 32-byte key") from exc

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise RuntimeError("a stored signing secret does not decrypt with the configured key") from exc


def generate_key() -> str:
    """A fresh encryption key (for tests and for operators: ``python -c ...generate_key()``)."""
    return Fernet.generate_key().decode()
