"""A Click attempt voided for a switch of provider (services/voids.py): Click has no call to cancel an
unpaid attempt, so our record refuses its Prepare and Complete from then on, in Click's own format
(PROTOCOLS.md: error -9, "Transaction cancelled"); a paid one cannot be voided."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import ClickShop

pytestmark = pytest.mark.postgres


def _void_path(started: dict[str, Any]) -> str:
    return f"/internal/payments/{started['payment_id']}/transactions/{started['provider_transaction_id']}/void"


class TestClickVoid:
    async def test_complete_and_prepare_of_a_voided_attempt_are_refused(self, shop: ClickShop, db_read: Any) -> None:
        started = await shop.start()
        pay = started["payment_id"]
        prepared = await shop.prepare(pay)
        assert prepared["error"] == 0
        response = await shop.client.post(_void_path(started), headers=shop.internal_headers(shop.tenant))
        assert response.status == 200, await response.text()
        done = await shop.complete(pay, prepared["merchant_prepare_id"])
        assert (done["error"], done["error_note"]) == (-9, "Transaction cancelled")
        assert (await shop.prepare(pay, click_trans_id="9002"))["error"] == -9
        [txn] = await db_read("transactions")
        assert txn["status"] == "cancelled"
        routing = [o["routing_key"] for o in await db_read("outbox")]
        assert "providers.provider.payment.succeeded.v1" not in routing

    async def test_a_paid_attempt_cannot_be_voided(self, shop: ClickShop, db_read: Any) -> None:
        started = await shop.start()
        pay = started["payment_id"]
        prepared = await shop.prepare(pay)
        assert (await shop.complete(pay, prepared["merchant_prepare_id"]))["error"] == 0
        response = await shop.client.post(_void_path(started), headers=shop.internal_headers(shop.tenant))
        assert response.status == 409
        assert (await response.json())["code"] == "not_cancellable"
        [txn] = await db_read("transactions")
        assert txn["status"] == "succeeded"
