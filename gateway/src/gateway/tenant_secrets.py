"""Tenant API secrets: generated once, shown once, stored only as argon2id hashes."""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.db.models import Tenant

SECRET_PREFIX = "sk_"  # noqa: S105 - a public prefix, not a secret

Matched = Literal["current", "previous"]


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


class SecretHasher:
    """Hashes and verifies tenant secrets off the event loop (argon2 is deliberately slow)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        # Checked when the app name is unknown, so that answer costs as much as a wrong secret.
        self._dummy_hash = self._hasher.hash(new_secret())

    async def hash(self, secret: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, secret)

    async def verify_tenant(self, tenant: Tenant | None, secret: str, now: datetime) -> Matched | None:
        """Which of the tenant's secrets ``secret`` is: its current one, or its previous one still in
        its grace period; None for neither."""
        if tenant is None:
            await self._verify(self._dummy_hash, secret)
            return None
        if await self._verify(tenant.secret_hash, secret):
            return "current"
        previous, expires_at = tenant.previous_secret_hash, tenant.previous_secret_expires_at
        if previous is None or expires_at is None or now >= expires_at:
            return None
        return "previous" if await self._verify(previous, secret) else None

    async def _verify(self, encoded: str, secret: str) -> bool:
        return await asyncio.to_thread(self._check, encoded, secret)

    def _check(self, encoded: str, secret: str) -> bool:
        try:
            return self._hasher.verify(encoded, secret)
        except (VerificationError, InvalidHashError):
            return False
