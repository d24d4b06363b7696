"""A Payme attempt voided for a switch of provider (services/voids.py): Payme cannot be called, so our
record refuses its later calls in Payme's own error format (PROTOCOLS.md §2): Perform -31008, a new
Create and CheckPerform -31051; a performed transaction cannot be voided."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.postgres

AMOUNT = 500_000


def _void_path(started: dict[str, Any]) -> str:
    return f"/internal/payments/{started['payment_id']}/transactions/{started['provider_transaction_id']}/void"


class TestPaymeVoid:
    async def test_a_voided_attempt_is_refused_in_paymes_format(
        self, new_shop: Any, new_payme_id: Any, internal_headers: Any, db_read: Any
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        id_ = new_payme_id()
        await shop.payme.create(started["payment_id"], id_=id_)  # created at Payme (state 1), not performed
        response = await shop.client.post(_void_path(started), headers=internal_headers(shop.tenant_id))
        assert response.status == 200, await response.text()
        # Payme's Perform of it now fails with -31008 (cannot perform), a new Create with -31051.
        perform = await shop.payme.error("PerformTransaction", id=id_)
        assert perform["code"] == -31008
        assert set(perform["message"]) == {"ru", "uz", "en"}
        created = await shop.payme.create(started["payment_id"], id_=new_payme_id())
        assert created["error"]["code"] == -31051
        check = await shop.payme.error(
            "CheckPerformTransaction", amount=AMOUNT, account={"order_id": started["payment_id"]}
        )
        assert check["code"] == -31051
        rows = [r for r in await db_read("transactions") if r["id"] == started["provider_transaction_id"]]
        assert rows[0]["status"] == "cancelled"
        succeeded = [r for r in await db_read("outbox") if r["routing_key"].endswith("payment.succeeded.v1")]
        assert succeeded == []

    async def test_a_performed_transaction_cannot_be_voided(
        self, new_shop: Any, new_payme_id: Any, internal_headers: Any, db_read: Any
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        id_ = new_payme_id()
        await shop.payme.create(started["payment_id"], id_=id_)
        await shop.payme.result("PerformTransaction", id=id_)
        response = await shop.client.post(_void_path(started), headers=internal_headers(shop.tenant_id))
        assert response.status == 409
        assert (await response.json())["code"] == "not_cancellable"
        rows = [r for r in await db_read("transactions") if r["id"] == started["provider_transaction_id"]]
        assert rows[0]["status"] == "succeeded"
