"""A Stripe attempt voided through the internal route for a switch of provider (services/voids.py),
against localstripe: the PaymentIntent is cancelled at Stripe and the transaction here; a paid one is
refused and stays as it is."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import TENANT, StripeShop

pytestmark = pytest.mark.postgres


def _void_path(started: dict[str, Any]) -> str:
    return f"/internal/payments/{started['payment_id']}/transactions/{started['provider_transaction_id']}/void"


class TestStripeVoid:
    async def test_the_intent_is_cancelled_at_stripe(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        response = await shop.client.post(_void_path(started), headers=shop.internal_headers(TENANT))
        assert response.status == 200, await response.text()
        intent = await shop.localstripe.call(
            "GET", f"/v1/payment_intents/{started['provider_reference']}", shop.secret_key
        )
        assert intent["status"] == "canceled"
        [txn] = [t for t in await db_read("transactions") if t["id"] == started["provider_transaction_id"]]
        assert txn["status"] == "cancelled"
        # The payer's page can no longer pay it.
        paid = await shop.pay(started, "visa")
        intent = await shop.localstripe.call(
            "GET", f"/v1/payment_intents/{started['provider_reference']}", shop.secret_key
        )
        assert paid.status != 303 or intent["status"] == "canceled"
        assert intent["status"] == "canceled"

    async def test_a_paid_intent_is_refused(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        assert (await shop.pay(started, "visa")).status == 303
        response = await shop.client.post(_void_path(started), headers=shop.internal_headers(TENANT))
        assert response.status == 409
        assert (await response.json())["code"] == "not_cancellable"
        intent = await shop.localstripe.call(
            "GET", f"/v1/payment_intents/{started['provider_reference']}", shop.secret_key
        )
        assert intent["status"] == "succeeded"
