"""A payer who opened two providers' pages pays once: the first provider's success closes the payment's
other pending transactions (``siblings_cancel``), so Payme, which asks us before it charges, finds the
order closed; two successes arriving together still leave exactly one provider with the money."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import text

pytestmark = pytest.mark.postgres

AMOUNT = 500_000


async def _start_sandbox(shop: Any, payment_id: str, internal_headers: Any) -> dict[str, Any]:
    body = {"payment_id": payment_id, "provider": "sandbox", "amount": AMOUNT, "currency": "UZS"}
    response = await shop.client.post("/internal/payments/start", json=body, headers=internal_headers(shop.tenant_id))
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def _statuses(engine: Any, payment_id: str) -> dict[str, tuple[str, str | None]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT provider, status, failure_code FROM provider_transactions WHERE payment_id = :p"),
            {"p": payment_id},
        )
        return {r[0]: (r[1], r[2]) for r in rows}


async def _succeeded_events(engine: Any) -> int:
    async with engine.connect() as conn:
        query = "SELECT count(*) FROM outbox WHERE routing_key LIKE '%provider.payment.succeeded%'"
        return int((await conn.execute(text(query))).scalar_one())


async def test_a_sandbox_success_closes_the_payme_order(
    new_shop: Any, internal_headers: Any, sandbox_callback: Any, engine: Any
) -> None:
    shop = await new_shop()
    payme = await shop.start()
    payment_id = payme["payment_id"]
    sandbox = await _start_sandbox(shop, payment_id, internal_headers)
    callback = sandbox_callback(sandbox["provider_transaction_id"], amount=AMOUNT, currency="UZS")
    response = await shop.client.post("/billing/sandbox", data=callback.body, headers=callback.headers)
    assert response.status == 200
    assert await _statuses(engine, payment_id) == {
        "sandbox": ("succeeded", None),
        "payme": ("cancelled", "paid_elsewhere"),
    }
    check = await shop.payme.call("CheckPerformTransaction", amount=AMOUNT, account={"order_id": payment_id})
    assert "error" in check
    created = await shop.payme.create(payment_id)
    assert "error" in created
    assert await _succeeded_events(engine) == 1


async def test_a_payme_perform_closes_the_sandbox_transaction(
    new_shop: Any, internal_headers: Any, sandbox_callback: Any, engine: Any
) -> None:
    shop = await new_shop()
    payme = await shop.start()
    payment_id = payme["payment_id"]
    sandbox = await _start_sandbox(shop, payment_id, internal_headers)
    created = await shop.payme.create(payment_id, id_="a" * 24)
    assert "result" in created, created
    assert "result" in await shop.payme.call("PerformTransaction", id="a" * 24)
    assert await _statuses(engine, payment_id) == {
        "payme": ("succeeded", None),
        "sandbox": ("cancelled", "paid_elsewhere"),
    }
    # The sandbox bank's late word is a contradiction of a final state: an anomaly, not a second outcome.
    callback = sandbox_callback(sandbox["provider_transaction_id"], amount=AMOUNT, currency="UZS")
    await shop.client.post("/billing/sandbox", data=callback.body, headers=callback.headers)
    assert await _succeeded_events(engine) == 1


async def test_two_providers_succeeding_at_once_leave_one_with_the_money(
    new_shop: Any, internal_headers: Any, sandbox_callback: Any, engine: Any
) -> None:
    shop = await new_shop()
    for round_ in range(5):
        payme = await shop.start()
        payment_id = payme["payment_id"]
        sandbox = await _start_sandbox(shop, payment_id, internal_headers)
        payme_id = f"{round_:x}".rjust(24, "b")
        assert "result" in await shop.payme.create(payment_id, id_=payme_id)
        callback = sandbox_callback(
            sandbox["provider_transaction_id"], amount=AMOUNT, currency="UZS", event_id=f"sb{time.time_ns()}"
        )
        sandbox_answer, perform = await asyncio.gather(
            shop.client.post("/billing/sandbox", data=callback.body, headers=callback.headers),
            shop.payme.call("PerformTransaction", id=payme_id),
        )
        assert sandbox_answer.status < 500
        statuses = await _statuses(engine, payment_id)
        assert sorted(s for s, _ in statuses.values()) == ["cancelled", "succeeded"], statuses
        assert ("result" in perform) == (statuses["payme"][0] == "succeeded"), perform
    assert await _succeeded_events(engine) == 5
