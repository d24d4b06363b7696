"""``/v1/payments/{id}/refunds`` and ``/v1/refunds/{id}``."""

from __future__ import annotations

from billing_client.calls import Call, compact, get, keyed_post, path
from billing_client.models import Refund
from billing_client.pagination import AsyncPager, ListCall, Page, Pager
from billing_client.sending import AsyncSend, Send


def create_call(payment_id: str, amount: int | None, reason: str | None, key: str | None) -> Call[Refund]:
    body = compact(amount=amount, reason=reason)
    return keyed_post(path("/v1/payments/{}/refunds", payment_id), Refund, body, key)


def list_call(payment_id: str, limit: int | None, starting_after: str | None) -> ListCall[Refund]:
    params = compact(limit=limit, starting_after=starting_after)
    return ListCall(path("/v1/payments/{}/refunds", payment_id), Refund.model_validate, params)


class Refunds:
    """``client.refunds`` of the sync client."""

    def __init__(self, send: Send) -> None:
        self._send = send

    def create(
        self,
        payment_id: str,
        *,
        amount: int | None = None,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> Refund:
        """Refund ``amount`` (all that is left if omitted); accepted PENDING, final when the provider says."""
        return self._send(create_call(payment_id, amount, reason, idempotency_key))

    def retrieve(self, refund_id: str) -> Refund:
        return self._send(get(path("/v1/refunds/{}", refund_id), Refund))

    def list(self, payment_id: str, *, limit: int | None = None, starting_after: str | None = None) -> Pager[Refund]:
        """Every refund of a payment, newest first."""
        return Pager(self._page, list_call(payment_id, limit, starting_after))

    def _page(self, call: Call[Page[Refund]]) -> Page[Refund]:
        return self._send(call)


class AsyncRefunds:
    """``client.refunds`` of the async client."""

    def __init__(self, send: AsyncSend) -> None:
        self._send = send

    async def create(
        self,
        payment_id: str,
        *,
        amount: int | None = None,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> Refund:
        """Refund ``amount`` (all that is left if omitted); accepted PENDING, final when the provider says."""
        return await self._send(create_call(payment_id, amount, reason, idempotency_key))

    async def retrieve(self, refund_id: str) -> Refund:
        return await self._send(get(path("/v1/refunds/{}", refund_id), Refund))

    def list(
        self, payment_id: str, *, limit: int | None = None, starting_after: str | None = None
    ) -> AsyncPager[Refund]:
        """Every refund of a payment, newest first (``async for``)."""
        return AsyncPager(self._page, list_call(payment_id, limit, starting_after))

    async def _page(self, call: Call[Page[Refund]]) -> Page[Refund]:
        return await self._send(call)
