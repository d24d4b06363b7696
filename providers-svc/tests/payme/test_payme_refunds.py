"""Payme's refunds are its cancels after perform (PROTOCOLS.md §2.5): CancelTransaction of a performed
transaction sets state -2 and publishes ``provider.refund.updated`` (succeeded, the full amount, no
refund id of ours, ``provider_refund_id`` = Payme's transaction id) once, however often Payme repeats
it; it is refused with -31007 when the account forbids it or the payment already has a refund."""

from __future__ import annotations

import json
from typing import Any

import pytest
from billing_contracts.envelope import utcnow
from providers_svc.db.models import outbox
from providers_svc.db.refunds import NewRefund
from providers_svc.keys import uow_factory_key
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import AMOUNT

pytestmark = pytest.mark.postgres

REFUND_KEY = "providers.provider.refund.updated.v1"


async def refund_events(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(outbox.c.body).where(outbox.c.routing_key == REFUND_KEY))
        return [json.loads(body) for body in rows.scalars()]


class TestCancelAfterPerform:
    async def test_publishes_one_succeeded_refund_for_repeated_cancels(
        self, new_shop: Any, new_payme_id: Any, tables: Any, engine: AsyncEngine
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        id_ = new_payme_id()
        await shop.payme.create(started["payment_id"], id_=id_)
        await shop.payme.result("PerformTransaction", id=id_)
        first = await shop.payme.result("CancelTransaction", id=id_, reason=5)
        again = await shop.payme.result("CancelTransaction", id=id_, reason=5)
        assert first == again
        assert first["state"] == -2
        [event] = await refund_events(engine)
        data = event["data"]
        assert (data["refund_id"], data["provider_refund_id"], data["status"]) == (None, id_, "succeeded")
        assert (data["amount"], data["currency"], data["payment_id"]) == (AMOUNT, "UZS", started["payment_id"])
        assert (data["observed_via"], data["provider_transaction_id"]) == (
            "callback",
            started["provider_transaction_id"],
        )
        assert event["tenant_id"] == shop.tenant_id
        [reversal] = await tables.reversals()
        assert event["causation_id"] == reversal["id"]
        assert data["provider_updated_at"].startswith(utcnow().date().isoformat())

    async def test_a_payment_with_a_refund_of_ours_answers_31007(
        self, new_shop: Any, new_payme_id: Any, tables: Any, engine: AsyncEngine
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        id_ = new_payme_id()
        await shop.payme.create(started["payment_id"], id_=id_)
        await shop.payme.result("PerformTransaction", id=id_)
        async with shop.client.app[uow_factory_key]() as uow:
            await uow.refunds.create_once(
                NewRefund(
                    refund_id="rfnd_payme00000001",
                    tenant_id=shop.tenant_id,
                    livemode=False,
                    payment_id=started["payment_id"],
                    provider="payme",
                    provider_transaction_id=started["provider_transaction_id"],
                    account_id=shop.account_id,
                    amount=1000,
                    currency="UZS",
                    reason=None,
                ),
                utcnow(),
                utcnow(),
            )
            await uow.commit()
        error = await shop.payme.error("CancelTransaction", id=id_, reason=5)
        assert error["code"] == -31007
        assert (await tables.payme())[0]["state"] == 2
        assert await tables.reversals() == []
        assert await refund_events(engine) == []

    async def test_an_account_that_refuses_answers_31007_and_publishes_nothing(
        self, new_shop: Any, new_payme_id: Any, engine: AsyncEngine
    ) -> None:
        shop = await new_shop(cancel_after_perform="refuse")
        started = await shop.start()
        id_ = new_payme_id()
        await shop.payme.create(started["payment_id"], id_=id_)
        await shop.payme.result("PerformTransaction", id=id_)
        assert (await shop.payme.error("CancelTransaction", id=id_, reason=5))["code"] == -31007
        assert await refund_events(engine) == []
