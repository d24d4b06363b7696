"""Payme's statement (``GET /internal/statements`` for a Payme account): what we answered its
``GetStatement`` (a payment line per transaction of the period, by its create time) and a refund line
per performed transaction Payme cancelled (state -2), by its cancel time, under Payme's id."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from billing_contracts.statements import StatementRecord

from .conftest import AMOUNT

pytestmark = pytest.mark.postgres


async def statement(shop: Any, internal_headers: Any, *, days: int = 0) -> list[StatementRecord]:
    now = datetime.now(UTC) + timedelta(days=days)
    period = f"from={(now - timedelta(hours=1)).isoformat()}&to={(now + timedelta(hours=1)).isoformat()}"
    response = await shop.client.get(
        f"/internal/statements?account_id={shop.account_id}&{period.replace('+00:00', 'Z')}",
        headers=internal_headers(None, issuer="reconciliation"),
    )
    assert response.status == 200, await response.text()
    raw = [json.loads(line) for line in (await response.text()).splitlines()]
    assert raw[-1] == {"complete": True}
    return [StatementRecord.model_validate(line) for line in raw[:-1]]


class TestPaymeStatement:
    async def test_payments_as_answered_and_a_refund_line_per_cancel_after_perform(
        self, new_shop: Any, new_payme_id: Any, internal_headers: Any
    ) -> None:
        shop = await new_shop()
        refunded, kept, waiting = await shop.start(), await shop.start(), await shop.start()
        ids = {name: new_payme_id() for name in ("refunded", "kept", "waiting")}
        for name, started in (("refunded", refunded), ("kept", kept), ("waiting", waiting)):
            await shop.payme.create(started["payment_id"], id_=ids[name])
        for name in ("refunded", "kept"):
            await shop.payme.result("PerformTransaction", id=ids[name])
        await shop.payme.result("CancelTransaction", id=ids["refunded"], reason=5)

        records = await statement(shop, internal_headers)
        payments = {r.payment_id: (r.status, r.provider_reference, r.amount) for r in records if r.kind == "payment"}
        assert payments == {
            refunded["payment_id"]: ("refunded", ids["refunded"], AMOUNT),
            kept["payment_id"]: ("succeeded", ids["kept"], AMOUNT),
            waiting["payment_id"]: ("pending", ids["waiting"], AMOUNT),
        }
        [refund] = [r for r in records if r.kind == "refund"]
        assert (refund.provider, refund.account_id) == ("payme", shop.account_id)
        assert refund.payment_id == refunded["payment_id"]
        assert (refund.provider_reference, refund.refund_id, refund.status) == (ids["refunded"], None, "succeeded")
        assert (refund.amount, refund.currency, refund.origin) == (AMOUNT, "UZS", "our_answers")
        assert abs((refund.occurred_at - datetime.now(UTC)).total_seconds()) < 60
        assert records.index(refund) == len(records) - 1  # the payments' lines first
        assert await statement(shop, internal_headers, days=-1) == []
