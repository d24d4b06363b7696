"""``rebuild``'s reader of the verdicts providers-svc holds (docs/INTERNAL.md "Reconciliation (issue
13)": ``GET /internal/verdicts?after=&limit=``), each the ``provider.payment.*``,
``provider.refund.updated`` or ``provider.dispute.updated`` event that published it. Signed
``iss=reconciliation``, no tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import aiohttp
from billing_contracts.events import (
    ProviderDisputeUpdatedV1,
    ProviderPaymentFailedV1,
    ProviderPaymentSucceededV1,
    ProviderRefundUpdatedV1,
)
from billing_runtime import tracing
from billing_runtime.internal_auth import INTERNAL_HEADER, sign_internal
from pydantic import Discriminator, TypeAdapter, ValidationError

# Every dispute state providers-svc published comes too, each applied as the live event is: the
# earliest withdrawal and the latest release (``recon_disputes``) are merged over all of them.
Verdict = Annotated[
    ProviderPaymentSucceededV1 | ProviderPaymentFailedV1 | ProviderRefundUpdatedV1 | ProviderDisputeUpdatedV1,
    Discriminator("event_type"),
]
_VERDICT: TypeAdapter[Verdict] = TypeAdapter(Verdict)


class VerdictsUnavailable(Exception):
    """providers-svc did not hand out a page (down, or it refused), or one that does not parse: the
    rebuild stops and keeps nothing."""


class ProvidersVerdicts:
    def __init__(self, base_url: str, internal_secret: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self._secret = internal_secret
        self._timeout = timeout

    async def pages(self, page_size: int) -> AsyncIterator[list[Verdict]]:
        """Every verdict providers-svc holds, page by page (an async iterator of lists), from the first."""
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            after: str | None = None
            while True:
                events, after = await self._page(session, after, page_size)
                yield events
                if after is None:
                    return

    async def _page(
        self, session: aiohttp.ClientSession, after: str | None, limit: int
    ) -> tuple[list[Verdict], str | None]:
        params = {"limit": str(limit), **({"after": after} if after is not None else {})}
        token = sign_internal(self._secret, issuer="reconciliation", audience="providers", tenant_id=None)
        url = f"{self.base_url}/internal/verdicts"
        headers = tracing.with_trace({INTERNAL_HEADER: token})
        try:
            async with session.get(url, params=params, headers=headers) as response:
                if response.status != 200:
                    status = response.status
                    raise VerdictsUnavailable(f"providers-svc answered {status} for the verdicts after {after}")
                body: Any = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise VerdictsUnavailable(f"providers-svc is unreachable: {exc!r}") from exc
        data = body.get("data") if isinstance(body, dict) else None
        following = body.get("next") if isinstance(body, dict) else None
        if not isinstance(data, list) or not (following is None or isinstance(following, str)) or following == after:
            raise VerdictsUnavailable("providers-svc answered a page that is not a verdict list")
        try:
            return [_VERDICT.validate_python(item) for item in data], following
        except ValidationError as exc:
            raise VerdictsUnavailable(f"a verdict after {after} does not parse: {exc}") from exc
