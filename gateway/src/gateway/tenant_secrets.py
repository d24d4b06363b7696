"""Tenant API secrets: generated once, shown once, stored only as argon2id hashes."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Literal, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from billing_runtime.problems import ProblemError

from gateway.allocator import return_large_allocations
from gateway.db.models import Tenant
from gateway.ratelimit import RateLimiter

T = TypeVar("T")

SECRET_PREFIX = "sk_"  # noqa: S105 - a public prefix, not a secret

Matched = Literal["current", "previous"]


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hashing_busy() -> ProblemError:
    return ProblemError(
        503, "auth_busy", "Too many token requests are being checked; retry shortly", headers={"Retry-After": "1"}
    )


class SecretHasher:
    """Hashes and verifies tenant secrets off the event loop (argon2 is deliberately slow), on a
    bounded pool: at most ``concurrency`` hashes run at once (each holds ``memory_cost`` of RAM and
    its lanes' threads), at most ``queue`` more verifications wait, and at most ``rate`` start per
    second. A verification beyond that fails at once with 503 ``auth_busy``: a flood of token
    requests costs bounded CPU and memory and never builds a queue that the payment traffic sharing
    this process would wait behind.

    ``start``/``close`` bracket the pool (a cleanup context)."""

    def __init__(
        self,
        hasher: PasswordHasher | None = None,
        *,
        concurrency: int = 2,
        queue: int = 8,
        rate: RateLimiter | None = None,
        on_busy: Callable[[], object] | None = None,
    ) -> None:
        self._hasher = hasher or PasswordHasher()
        self._rate = rate
        self._on_busy = on_busy
        self._concurrency = concurrency
        self._limit = concurrency + queue
        self._admitted = 0
        self._executor: ThreadPoolExecutor | None = None
        # Each hash's memory_cost goes back to the system when it is freed, not kept by a hasher thread.
        return_large_allocations()
        # Checked when the app name is unknown, so that answer costs as much as a wrong secret.
        self._dummy_hash = self._hasher.hash(new_secret())

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="argon2")

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    @property
    def admitted(self) -> int:
        """Verifications running or waiting now (for metrics and tests)."""
        return self._admitted

    async def _run(self, fn: Callable[..., T], *args: str) -> T:
        if self._executor is None:
            self.start()
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def hash(self, secret: str) -> str:
        # Admin calls (create, rotate) share the pool but are never refused: they are authenticated.
        return await self._run(self._hasher.hash, secret)

    @contextlib.contextmanager
    def admission(self) -> Iterator[None]:
        """Enter to verify a secret: 503 ``auth_busy`` at once, before any database read or hash,
        when ``concurrency + queue`` verifications are already running or waiting, or when the
        process's hashing budget (``rate``, hashes per second) is spent: the pool bounds memory and
        threads, the budget bounds the share of the CPU that verifications can take from payments."""
        if self._admitted >= self._limit or (self._rate is not None and self._rate.acquire("verify") is not None):
            if self._on_busy is not None:
                self._on_busy()
            raise hashing_busy()
        self._admitted += 1
        try:
            yield
        finally:
            self._admitted -= 1

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
        return await self._run(self._check, encoded, secret)

    def _check(self, encoded: str, secret: str) -> bool:
        try:
            return self._hasher.verify(encoded, secret)
        except (VerificationError, InvalidHashError):
            return False
