"""Errors from the real platform arrive as exceptions carrying the problem's members."""

from __future__ import annotations

import pytest
from billing_client import AsyncBillingClient, ConflictError, NotFoundError, ValidationError

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


class TestErrors:
    async def test_validation_error_names_the_fields(self, client: AsyncBillingClient) -> None:
        with pytest.raises(ValidationError) as raised:
            await client.payments.create(amount=-1, currency="usd", order_id="o-1")
        error = raised.value
        assert (error.status, error.code) == (422, "validation_error")
        assert error.title and error.request_id and error.problem is not None
        assert "currency" in {e.field for e in error.errors}
        with pytest.raises(ValidationError) as raised:
            await client.payments.create(amount=1, currency="USD", order_id="o-1")
        assert raised.value.code == "validation_error"
        assert "amount" in {e.field for e in raised.value.errors}

    async def test_not_found(self, client: AsyncBillingClient) -> None:
        with pytest.raises(NotFoundError) as raised:
            await client.payments.retrieve("pay_doesnotexist000000")
        assert (raised.value.status, raised.value.code) == (404, "not_found")
        assert raised.value.request_id

    async def test_an_id_cannot_leave_its_path_segment(self, client: AsyncBillingClient) -> None:
        with pytest.raises(NotFoundError):
            await client.refunds.retrieve("../payments")

    async def test_a_key_reused_with_another_body(self, client: AsyncBillingClient) -> None:
        await client.payments.create(amount=5000, currency="USD", order_id="o-1", idempotency_key="k-1")
        with pytest.raises(ValidationError) as raised:
            await client.payments.create(amount=6000, currency="USD", order_id="o-1", idempotency_key="k-1")
        assert raised.value.code == "idempotency_key_reused"

    async def test_invalid_state(self, client: AsyncBillingClient) -> None:
        payment = await client.payments.create(amount=5000, currency="USD", order_id="o-1")
        assert (await client.payments.cancel(payment.id)).status == "CANCELLED"
        with pytest.raises(ConflictError) as raised:
            await client.payments.cancel(payment.id)
        assert (raised.value.status, raised.value.code) == (409, "invalid_state")
        with pytest.raises(ConflictError):
            await client.refunds.create(payment.id)
