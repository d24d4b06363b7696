"""The Stripe adapter against localstripe (a fake Stripe on loopback): what it creates, with which
idempotency keys and metadata, capture (full and partial), cancel, status and refunds; and the Checkout
Session request, which localstripe cannot serve (checked as sent)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import pytest
from providers_svc.adapters.base import ProviderRejectedError
from providers_svc.adapters.stripe.amounts import StripeAmountError, from_stripe, to_stripe
from providers_svc.db.repositories import transaction_snapshot
from providers_svc.domain.transactions import Transaction, TransactionStatus
from providers_svc.keys import uow_factory_key

from .conftest import TENANT, ShopFactory, StripeShop

pytestmark = pytest.mark.postgres


def _form(request: dict[str, Any]) -> dict[str, list[str]]:
    return parse_qs(request["body"])


async def _txn(shop: StripeShop, txn_id: str) -> Transaction:
    async with shop.client.app[uow_factory_key]() as unit:
        txn = await transaction_snapshot(unit, txn_id)
    assert txn is not None
    return txn


async def _paid_intent(shop: StripeShop, started: dict[str, Any]) -> dict[str, Any]:
    """Pay the intent with localstripe's test card, as our payer page does."""
    resp = await shop.pay(started, "visa")
    assert resp.status == 303, await resp.text()
    return await shop.localstripe.call("GET", f"/v1/payment_intents/{started['provider_reference']}", shop.secret_key)


async def _charge(shop: StripeShop, intent: dict[str, Any]) -> dict[str, Any]:
    latest = intent["latest_charge"]
    charge_id = latest["id"] if isinstance(latest, dict) else latest
    return await shop.localstripe.call("GET", f"/v1/charges/{charge_id}", shop.secret_key)


class TestAmounts:
    def test_iso_and_stripe_units_agree_for_most_currencies(self) -> None:
        assert (to_stripe(5000, "USD"), to_stripe(500, "JPY"), to_stripe(1234, "UGX")) == (5000, 500, 1234)
        assert (from_stripe(5000, "usd"), from_stripe(500, "jpy")) == (5000, 500)

    def test_isk_is_counted_in_hundredths_at_stripe(self) -> None:
        assert to_stripe(500, "ISK") == 50000
        assert from_stripe(50000, "isk") == 500
        assert from_stripe(50050, "isk") is None

    def test_mga_is_zero_decimal_at_stripe(self) -> None:
        assert to_stripe(1500, "MGA") == 15
        with pytest.raises(StripeAmountError):
            to_stripe(1550, "MGA")

    def test_three_decimal_currencies_take_multiples_of_ten(self) -> None:
        assert to_stripe(1230, "KWD") == 1230
        with pytest.raises(StripeAmountError):
            to_stripe(1234, "KWD")


class TestStartPaymentIntent:
    async def test_an_intent_with_our_ids_and_a_deterministic_key(self, shop: StripeShop) -> None:
        started = await shop.start()
        intent_id = started["provider_reference"]
        assert intent_id.startswith("pi_")
        ptx = started["provider_transaction_id"]
        assert started["redirect_url"].startswith(f"http://127.0.0.1:9/pay/stripe/{ptx}/")
        intent = await shop.localstripe.call("GET", f"/v1/payment_intents/{intent_id}", shop.secret_key)
        assert (intent["amount"], intent["currency"], intent["status"]) == (5000, "usd", "requires_payment_method")
        assert intent["metadata"] == {"tenant_id": TENANT, "payment_id": started["payment_id"], "transaction_id": ptx}
        [create] = [
            r
            for r in await shop.localstripe.requests("/v1/payment_intents")
            if r["method"] == "POST" and _form(r).get("metadata[transaction_id]") == [ptx]
        ]
        assert create["idempotency_key"] == f"{TENANT}:{started['payment_id']}:{ptx}:payment_intent"
        assert _form(create)["capture_method"] == ["automatic"]
        assert create["stripe_account"] is None

    async def test_a_repeated_start_sends_the_same_key(self, shop: StripeShop) -> None:
        started = await shop.start()
        adapter = await shop.adapter()
        txn = await _txn(shop, started["provider_transaction_id"])
        await adapter.start(txn)
        keys = [
            r["idempotency_key"]
            for r in await shop.localstripe.requests("/v1/payment_intents")
            if r["method"] == "POST" and _form(r).get("metadata[transaction_id]") == [txn.id]
        ]
        assert len(keys) == 2
        assert keys[0] == keys[1]

    async def test_isk_amounts_reach_stripe_in_its_unit(self, shop: StripeShop) -> None:
        started = await shop.start(currency="ISK", amount=500)
        intent = await shop.localstripe.call(
            "GET", f"/v1/payment_intents/{started['provider_reference']}", shop.secret_key
        )
        assert (intent["amount"], intent["currency"]) == (50000, "isk")

    async def test_a_connected_account_is_named_on_every_call(self, stripe_shop_factory: ShopFactory) -> None:
        shop = await stripe_shop_factory(connected_account="acct_1Connected")
        started = await shop.start()
        assert (await shop.pay(started, "visa")).status == 303
        sent = [
            r
            for r in await shop.localstripe.requests("/v1/")
            if started["provider_reference"] in r["path"]
            or _form(r).get("metadata[transaction_id]") == [started["provider_transaction_id"]]
        ]
        assert len(sent) >= 3  # create, attach, confirm (and the page's read)
        assert {r["stripe_account"] for r in sent} == {"acct_1Connected"}


class TestStartCheckoutSession:
    async def test_the_session_request_carries_our_ids_and_key(self, stripe_shop_factory: ShopFactory) -> None:
        shop = await stripe_shop_factory(flow="checkout_session", capture_method="manual")
        body = shop.payment_request(provider="stripe", currency="USD", amount=5000)
        resp = await shop.client.post("/internal/payments/start", json=body, headers=shop.internal_headers(TENANT))
        # localstripe has no Checkout Sessions (404): Stripe's refusal, nothing half-done.
        assert resp.status in (409, 422, 502, 503), await resp.text()
        [sent] = [
            r
            for r in await shop.localstripe.requests("/v1/checkout/sessions")
            if _form(r).get("metadata[payment_id]") == [body["payment_id"]]
        ]
        form = _form(sent)
        ptx = form["client_reference_id"][0]
        assert sent["idempotency_key"] == f"{TENANT}:{body['payment_id']}:{ptx}:checkout_session"
        assert form["mode"] == ["payment"]
        assert form["line_items[0][price_data][unit_amount]"] == ["5000"]
        assert form["line_items[0][price_data][currency]"] == ["usd"]
        assert form["payment_intent_data[metadata][transaction_id]"] == [ptx]
        assert form["payment_intent_data[capture_method]"] == ["manual"]
        assert form["success_url"] == [body["return_url"]]


class TestCaptureCancelRefund:
    async def test_manual_capture_of_part_of_the_amount(self, stripe_shop_factory: ShopFactory) -> None:
        shop = await stripe_shop_factory(capture_method="manual")
        started = await shop.start()
        intent = await _paid_intent(shop, started)
        assert intent["status"] == "requires_capture"
        adapter = await shop.adapter()
        txn = await _txn(shop, started["provider_transaction_id"])
        captured = await adapter.capture_intent(txn, 3000)
        assert captured["status"] == "succeeded"
        # Stripe releases the rest (localstripe refunds it).
        charge = await _charge(shop, captured)
        assert (charge["amount"], charge["captured"], charge["amount_refunded"]) == (5000, True, 2000)
        [sent] = [
            r
            for r in await shop.localstripe.requests("/v1/payment_intents")
            if r["path"].endswith("/capture") and intent["id"] in r["path"]
        ]
        assert sent["idempotency_key"] == f"{TENANT}:{txn.payment_id}:{txn.id}:capture:3000"

    async def test_manual_capture_of_all_of_it(self, stripe_shop_factory: ShopFactory) -> None:
        shop = await stripe_shop_factory(capture_method="manual")
        started = await shop.start()
        await _paid_intent(shop, started)
        txn = await _txn(shop, started["provider_transaction_id"])
        captured = await (await shop.adapter()).capture_intent(txn)
        assert captured["status"] == "succeeded"
        charge = await _charge(shop, captured)
        assert (charge["amount"], charge["captured"], charge["amount_refunded"]) == (5000, True, 0)

    async def test_cancel_releases_the_intent(self, shop: StripeShop) -> None:
        started = await shop.start()
        txn = await _txn(shop, started["provider_transaction_id"])
        assert await (await shop.adapter()).cancel(txn) is True
        intent = await shop.localstripe.call("GET", f"/v1/payment_intents/{txn.provider_reference}", shop.secret_key)
        assert intent["status"] == "canceled"

    async def test_a_paid_intent_is_not_cancellable(self, shop: StripeShop) -> None:
        started = await shop.start()
        await _paid_intent(shop, started)
        txn = await _txn(shop, started["provider_transaction_id"])
        adapter = await shop.adapter()
        assert await adapter.cancel(txn) is False
        status = await adapter.fetch_status(txn)
        assert (status.status, status.provider_reference) == (TransactionStatus.SUCCEEDED, txn.provider_reference)

    async def test_status_of_an_unpaid_and_a_cancelled_intent(self, shop: StripeShop) -> None:
        started = await shop.start()
        txn = await _txn(shop, started["provider_transaction_id"])
        adapter = await shop.adapter()
        assert (await adapter.fetch_status(txn)).status is TransactionStatus.PENDING
        await adapter.cancel(txn)
        status = await adapter.fetch_status(txn)
        assert (status.status, status.failure_code) == (TransactionStatus.FAILED, "stripe_canceled")

    async def test_partial_then_full_refunds_keyed_by_our_refund_ids(self, shop: StripeShop) -> None:
        started = await shop.start()
        await _paid_intent(shop, started)
        txn = await _txn(shop, started["provider_transaction_id"])
        adapter = await shop.adapter()
        first = await adapter.refund(txn, refund_id="rfnd_one", amount=1500, reason="damaged")
        second = await adapter.refund(txn, refund_id="rfnd_two", amount=3500, reason=None)
        assert (first.status, second.status) == ("succeeded", "succeeded")
        assert first.provider_refund_id != second.provider_refund_id
        sent = [
            r
            for r in await shop.localstripe.requests("/v1/refunds")
            if _form(r).get("payment_intent") == [txn.provider_reference]
        ]
        assert [r["idempotency_key"] for r in sent] == ["rfnd_one", "rfnd_two"]
        assert [_form(r)["amount"] for r in sent] == [["1500"], ["3500"]]
        assert _form(sent[0])["metadata[reason]"] == ["damaged"]
        assert _form(sent[0])["metadata[transaction_id]"] == [txn.id]

    async def test_an_unpaid_payment_is_not_refunded(self, shop: StripeShop) -> None:
        started = await shop.start()
        txn = await _txn(shop, started["provider_transaction_id"])
        with pytest.raises(ProviderRejectedError) as caught:
            await (await shop.adapter()).refund(txn, refund_id="rfnd_x", amount=100, reason=None)
        assert caught.value.code == "stripe_not_paid"


class TestCancelThroughTheInternalApi:
    async def test_a_cancelled_payment_releases_its_intent(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        resp = await shop.client.post(
            f"/internal/payments/{started['payment_id']}/cancel", headers=shop.internal_headers(TENANT)
        )
        assert resp.status == 200, await resp.text()
        assert await resp.json() == {"cancelled": True}
        intent = await shop.localstripe.call(
            "GET", f"/v1/payment_intents/{started['provider_reference']}", shop.secret_key
        )
        assert intent["status"] == "canceled"
        [txn] = await db_read("transactions")
        assert txn["status"] == "cancelled"

    async def test_a_payment_paid_at_stripe_is_not_cancellable(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        await _paid_intent(shop, started)  # paid at Stripe; its webhook has not arrived yet
        resp = await shop.client.post(
            f"/internal/payments/{started['payment_id']}/cancel", headers=shop.internal_headers(TENANT)
        )
        assert resp.status == 409
        [txn] = await db_read("transactions")
        assert txn["status"] == "pending"
