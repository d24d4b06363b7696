"""The janitor's calls to providers-svc (docs/INTERNAL.md "Reconciliation (issue 13)"): ask a payment's
or a refund's provider for its status; a confirmed outcome providers-svc had not yet published it
publishes then, as the missed provider event. Signed ``iss=reconciliation``, no tenant (a platform call)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import aiohttp
from billing_runtime import tracing
from billing_runtime.internal_auth import INTERNAL_HEADER, sign_internal

log = logging.getLogger(__name__)

SyncKind = Literal["payment", "refund"]
_STATUSES = frozenset({"succeeded", "failed", "pending"})
_UNAVAILABLE = frozenset({502, 503, 504})


@dataclass(frozen=True)
class SyncAnswer:
    # succeeded | failed | pending (the provider's word), not_found (providers-svc knows no such
    # transaction or refund), unavailable (providers-svc or the provider is down), error (anything
    # else: a bug or a misconfiguration, logged).
    result: str
    # providers-svc published the outcome now: the janitor healed a missed event.
    published: bool = False


class ProvidersSync:
    """Opened and closed by the app's cleanup context (its ClientSession must live inside a loop)."""

    def __init__(self, base_url: str, internal_secret: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self._secret = internal_secret
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def sync(self, kind: SyncKind, object_id: str) -> SyncAnswer:
        path = f"/internal/{'payments' if kind == 'payment' else 'refunds'}/{object_id}/sync"
        token = sign_internal(self._secret, issuer="reconciliation", audience="providers", tenant_id=None)
        assert self._session is not None, "open() first"
        try:
            async with self._session.post(
                self.base_url + path, headers=tracing.with_trace({INTERNAL_HEADER: token})
            ) as response:
                status = response.status
                body = await response.json(content_type=None) if status == 200 else None
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            log.warning("providers-svc POST %s failed: %r", path, exc)
            return SyncAnswer("unavailable")
        if status == 200 and isinstance(body, dict) and body.get("status") in _STATUSES:
            return SyncAnswer(str(body["status"]), published=body.get("published") is True)
        if status == 404:
            return SyncAnswer("not_found")
        if status in _UNAVAILABLE:
            return SyncAnswer("unavailable")
        log.error("providers-svc POST %s answered %s unexpectedly", path, status)
        return SyncAnswer("error")
