"""``rebuild``'s reader of payments-svc's event log, every tenant's (docs/INTERNAL.md "Reconciliation
(issue 13)": ``GET /internal/events?after=&limit=``). Signed ``iss=reconciliation``, no tenant."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from billing_runtime import tracing
from billing_runtime.internal_auth import INTERNAL_HEADER, sign_internal

log = logging.getLogger(__name__)


class EventLogUnavailable(Exception):
    """payments-svc did not hand out a page (down, or it refused): the rebuild stops and keeps nothing."""


@dataclass(frozen=True)
class EventPage:
    events: list[dict[str, Any]]
    has_more: bool


class PaymentsEventLog:
    def __init__(self, base_url: str, internal_secret: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self._secret = internal_secret
        self._timeout = timeout

    async def pages(self, page_size: int) -> AsyncIterator[EventPage]:
        """Every event of the log, page by page (an async iterator of ``EventPage``), from the first."""
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            after: str | None = None
            while True:
                page = await self._page(session, after, page_size)
                yield page
                if not page.has_more or not page.events:
                    return
                after = str(page.events[-1]["id"])

    async def _page(self, session: aiohttp.ClientSession, after: str | None, limit: int) -> EventPage:
        params = {"limit": str(limit), **({"after": after} if after is not None else {})}
        token = sign_internal(self._secret, issuer="reconciliation", audience="payments", tenant_id=None)
        url = f"{self.base_url}/internal/events"
        try:
            async with session.get(
                url, params=params, headers=tracing.with_trace({INTERNAL_HEADER: token})
            ) as response:
                if response.status != 200:
                    raise EventLogUnavailable(f"payments-svc answered {response.status} for the events after {after}")
                body = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise EventLogUnavailable(f"payments-svc is unreachable: {exc!r}") from exc
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or not all(isinstance(e, dict) and "id" in e for e in data):
            raise EventLogUnavailable("payments-svc answered a page that is not an event list")
        return EventPage(data, body.get("has_more") is True)
