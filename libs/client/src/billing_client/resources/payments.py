"""``/v1/payments``: create, retrieve, list, cancel, capture, and the payment's attempts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from billing_client.calls import Call, Params, compact, get, keyed_post, path
from billing_client.models import Customer, Payment, PaymentAttempt
from billing_client.pagination import AsyncPager, ListCall, Page, Pager
from billing_client.sending import AsyncSend, Send


def _customer(customer: Customer | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if customer is None:
        return None
    if isinstance(customer, Customer):
        return customer.model_dump(exclude_none=True)
    return dict(customer)


def create_call(
    *,
    amount: int,
    currency: str,
    order_id: str,
    description: str | None,
    customer: Customer | Mapping[str, Any] | None,
    return_url: str | None,
    metadata: Mapping[str, str] | None,
    expires_in: int | None,
    providers: Sequence[str] | None,
    capture_method: str | None,
    idempotency_key: str | None,
) -> Call[Payment]:
    body = compact(
        amount=amount,
        currency=currency,
        order_id=order_id,
        description=description,
        customer=_customer(customer),
        return_url=return_url,
        metadata=dict(metadata) if metadata is not None else None,
        expires_in=expires_in,
        providers=list(providers) if providers is not None else None,
        capture_method=capture_method,
    )
    return keyed_post("/v1/payments", Payment, body, idempotency_key)


def list_call(
    status: str | None, order_id: str | None, limit: int | None, starting_after: str | None
) -> ListCall[Payment]:
    params: Params = compact(status=status, order_id=order_id, limit=limit, starting_after=starting_after)
    return ListCall("/v1/payments", Payment.model_validate, params)


def cancel_call(payment_id: str) -> Call[Payment]:
    # Cancelling twice changes nothing more (the second try may answer 409 invalid_state): repeatable.
    return Call("POST", path("/v1/payments/{}/cancel", payment_id), Payment.model_validate)


def capture_call(payment_id: str, amount: int | None, idempotency_key: str | None) -> Call[Payment]:
    return keyed_post(path("/v1/payments/{}/capture", payment_id), Payment, compact(amount=amount), idempotency_key)


# A module-level alias: inside the resource classes ``list`` is the list method.
PaymentAttempts = list[PaymentAttempt]


def _attempts(body: Any) -> PaymentAttempts:
    return [PaymentAttempt.model_validate(x) for x in body["data"]]


def attempts_call(payment_id: str) -> Call[PaymentAttempts]:
    return Call("GET", path("/v1/payments/{}/attempts", payment_id), _attempts)


class Payments:
    """``client.payments`` of the sync client."""

    def __init__(self, send: Send) -> None:
        self._send = send

    def create(
        self,
        *,
        amount: int,
        currency: str,
        order_id: str,
        description: str | None = None,
        customer: Customer | Mapping[str, Any] | None = None,
        return_url: str | None = None,
        metadata: Mapping[str, str] | None = None,
        expires_in: int | None = None,
        providers: Sequence[str] | None = None,
        capture_method: str | None = None,
        idempotency_key: str | None = None,
    ) -> Payment:
        """Create a payment; retried with one Idempotency-Key (yours, or a uuid4), so it is made once."""
        return self._send(
            create_call(
                amount=amount,
                currency=currency,
                order_id=order_id,
                description=description,
                customer=customer,
                return_url=return_url,
                metadata=metadata,
                expires_in=expires_in,
                providers=providers,
                capture_method=capture_method,
                idempotency_key=idempotency_key,
            )
        )

    def retrieve(self, payment_id: str) -> Payment:
        return self._send(get(path("/v1/payments/{}", payment_id), Payment))

    def list(
        self,
        *,
        status: str | None = None,
        order_id: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> Pager[Payment]:
        """Every payment matching the filters, newest first; ``limit`` is the page size (1-100)."""
        return Pager(self._page, list_call(status, order_id, limit, starting_after))

    def cancel(self, payment_id: str) -> Payment:
        return self._send(cancel_call(payment_id))

    def capture(self, payment_id: str, *, amount: int | None = None, idempotency_key: str | None = None) -> Payment:
        """Capture an AUTHORIZED payment (all that is capturable unless ``amount`` says less)."""
        return self._send(capture_call(payment_id, amount, idempotency_key))

    def attempts(self, payment_id: str) -> PaymentAttempts:
        """Every try at paying this payment, one per provider chosen."""
        return self._send(attempts_call(payment_id))

    def _page(self, call: Call[Page[Payment]]) -> Page[Payment]:
        return self._send(call)


class AsyncPayments:
    """``client.payments`` of the async client."""

    def __init__(self, send: AsyncSend) -> None:
        self._send = send

    async def create(
        self,
        *,
        amount: int,
        currency: str,
        order_id: str,
        description: str | None = None,
        customer: Customer | Mapping[str, Any] | None = None,
        return_url: str | None = None,
        metadata: Mapping[str, str] | None = None,
        expires_in: int | None = None,
        providers: Sequence[str] | None = None,
        capture_method: str | None = None,
        idempotency_key: str | None = None,
    ) -> Payment:
        """Create a payment; retried with one Idempotency-Key (yours, or a uuid4), so it is made once."""
        return await self._send(
            create_call(
                amount=amount,
                currency=currency,
                order_id=order_id,
                description=description,
                customer=customer,
                return_url=return_url,
                metadata=metadata,
                expires_in=expires_in,
                providers=providers,
                capture_method=capture_method,
                idempotency_key=idempotency_key,
            )
        )

    async def retrieve(self, payment_id: str) -> Payment:
        return await self._send(get(path("/v1/payments/{}", payment_id), Payment))

    def list(
        self,
        *,
        status: str | None = None,
        order_id: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> AsyncPager[Payment]:
        """Every payment matching the filters, newest first (``async for``); ``limit`` is the page size."""
        return AsyncPager(self._page, list_call(status, order_id, limit, starting_after))

    async def cancel(self, payment_id: str) -> Payment:
        return await self._send(cancel_call(payment_id))

    async def capture(
        self, payment_id: str, *, amount: int | None = None, idempotency_key: str | None = None
    ) -> Payment:
        """Capture an AUTHORIZED payment (all that is capturable unless ``amount`` says less)."""
        return await self._send(capture_call(payment_id, amount, idempotency_key))

    async def attempts(self, payment_id: str) -> PaymentAttempts:
        """Every try at paying this payment, one per provider chosen."""
        return await self._send(attempts_call(payment_id))

    async def _page(self, call: Call[Page[Payment]]) -> Page[Payment]:
        return await self._send(call)
