"""The Payme adapter bound to an account: where ``start`` sends the payer (the simulator page, or Payme's
checkout per §2.6 on the account's environment), and what cancel, status and refund read from our records."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from providers_svc.adapters.base import OperationNotSupportedError
from providers_svc.domain.transactions import TransactionStatus
from providers_svc.keys import directory_key, uow_factory_key
from providers_svc.protocols.payme.checkout import PRODUCTION_URL, TEST_URL

pytestmark = pytest.mark.postgres


async def adapter_and_txn(shop: Any, started: dict[str, Any]) -> tuple[Any, Any]:
    async with shop.client.app[uow_factory_key]() as unit:
        txn = await unit.transactions.get(started["provider_transaction_id"])
    adapter = await shop.client.app[directory_key].for_transaction(txn)
    assert adapter is not None
    return adapter, txn


def decoded(url: str, base: str) -> dict[str, str]:
    assert url.startswith(base)
    text = base64.b64decode(url[len(base) :]).decode()
    return dict(part.split("=", 1) for part in text.split(";"))


class TestStart:
    async def test_a_test_account_goes_to_payme_test_checkout(self, new_shop: Any) -> None:
        shop = await new_shop(account_field="pay_id", language="uz")
        started = await shop.start(amount=123_456)
        # The merchant id is sealed at rest: read it back through the account the adapter is bound to.
        adapter, _ = await adapter_and_txn(shop, started)
        assert adapter.account.id == shop.account_id
        params = decoded(started["redirect_url"], TEST_URL)
        assert params == {
            "m": adapter.account.credentials["merchant_id"],
            "ac.pay_id": started["payment_id"],
            "a": "123456",
            "l": "uz",
            "c": "http://127.0.0.1:8080/c/tok_1/return",
        }
        assert started["provider_reference"] is None

    async def test_a_semicolon_in_the_return_url_reaches_payme_as_3b(self, new_shop: Any) -> None:
        # Payme's parameters are ";"-separated with no escape (§2.6): refusing the payment would be worse.
        shop = await new_shop()
        started = await shop.start(return_url="http://127.0.0.1:8080/c/tok_1/return;v=2?x=1;y=2")
        params = decoded(started["redirect_url"], TEST_URL)
        assert set(params) == {"m", "ac.order_id", "a", "l", "c"}
        assert params["c"] == "http://127.0.0.1:8080/c/tok_1/return%3Bv=2?x=1%3By=2"

    async def test_a_production_account_goes_to_payme_checkout(self, new_shop: Any) -> None:
        shop = await new_shop(livemode=True)
        started = await shop.start()
        params = decoded(started["redirect_url"], PRODUCTION_URL)
        assert (params["ac.order_id"], params["a"], params["l"]) == (started["payment_id"], "500000", "ru")

    async def test_a_simulator_account_goes_to_the_simulator_page(
        self, payme_client: Any, internal_headers: Any
    ) -> None:
        client = await payme_client()
        body = {
            "payment_id": "pay_simulated0001",
            "provider": "payme",
            "amount": 5000,
            "currency": "UZS",
            "order_id": "o",
            "description": None,
            "return_url": None,
            "expires_at": None,
        }
        response = await client.post("/internal/payments/start", json=body, headers=internal_headers())
        assert response.status == 200, await response.text()
        started = await response.json()
        assert started["redirect_url"] == (
            f"http://127.0.0.1:9/simulators/payme/pay/{started['provider_transaction_id']}"
        )


class TestCancelStatusRefund:
    async def test_cancel_is_refused_only_once_payme_performed(self, new_shop: Any, new_payme_id: Any) -> None:
        shop = await new_shop()
        started = await shop.start()
        adapter, txn = await adapter_and_txn(shop, started)
        assert await adapter.cancel(txn) is True
        assert (await adapter.fetch_status(txn)).status is TransactionStatus.PENDING
        id_ = new_payme_id()
        await shop.payme.create(started["payment_id"], id_=id_)
        assert await adapter.cancel(txn) is True
        await shop.payme.result("PerformTransaction", id=id_)
        assert await adapter.cancel(txn) is False
        status = await adapter.fetch_status(txn)
        assert (status.status, status.provider_reference) == (TransactionStatus.SUCCEEDED, id_)
        with pytest.raises(OperationNotSupportedError):
            await adapter.refund(txn, refund_id="rfnd_1", amount=100, reason=None)

    async def test_cancel_through_the_internal_api_answers_409_once_performed(
        self, new_shop: Any, new_payme_id: Any, internal_headers: Any
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        id_ = new_payme_id()
        await shop.payme.create(started["payment_id"], id_=id_)
        await shop.payme.result("PerformTransaction", id=id_)
        response = await shop.client.post(
            f"/internal/payments/{started['payment_id']}/cancel", headers=internal_headers(shop.tenant_id)
        )
        assert response.status == 409

    async def test_a_test_accounts_adapter_is_test_only(self, new_shop: Any) -> None:
        shop = await new_shop()
        adapter, _ = await adapter_and_txn(shop, await shop.start())
        assert adapter.test_only is True
        assert (adapter.name, adapter.display_name, adapter.currencies) == ("payme", "Payme", frozenset({"UZS"}))
