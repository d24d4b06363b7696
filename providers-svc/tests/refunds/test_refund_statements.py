"""A statement's refund lines (``GET /internal/statements``): for the sandbox from its bank's answers,
for Click and Octo asked of their simulators (Click: the payment's status says reversed; Octo: the same
``shop_refund_id`` again), never by making a refund. Without them reconciliation would hold every
refund of ours as missing at the provider, and a reversed Click payment as failed there."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from billing_contracts.statements import StatementRecord
from providers_svc.db.click_simulator import ClickSimulatorReversalRow
from providers_svc.keys import refunds_key
from providers_svc.services.statements import refund_lines
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import TENANT, Client, mark_paid, paid_with_simulator, refund_created

pytestmark = pytest.mark.postgres


async def statement(client: Any, internal_headers: Any, account_id: str, *, days: int = 0) -> list[StatementRecord]:
    """The account's statement of the hour around now (``days`` later), every line of it."""
    now = datetime.now(UTC) + timedelta(days=days)
    period = f"from={(now - timedelta(hours=1)).isoformat()}&to={(now + timedelta(hours=1)).isoformat()}"
    response = await client.get(
        f"/internal/statements?account_id={account_id}&{period.replace('+00:00', 'Z')}",
        headers=internal_headers(None, issuer="reconciliation"),
    )
    assert response.status == 200, await response.text()
    raw = [json.loads(line) for line in (await response.text()).splitlines()]
    assert raw[-1] == {"complete": True}
    return [StatementRecord.model_validate(line) for line in raw[:-1]]


def refunds_in(records: list[StatementRecord]) -> dict[str, StatementRecord]:
    return {str(r.refund_id): r for r in records if r.kind == "refund"}


class TestSandbox:
    async def test_the_banks_answer_to_each_refund_is_a_line(
        self, make_client: Any, start_payment: Any, internal_headers: Any, engine: AsyncEngine, monkeypatch: Any
    ) -> None:
        monkeypatch.setattr(refund_lines, "PAGE", 2)  # pages through them
        client = await make_client()
        payment = await start_payment(client, amount=9000)
        paid = await client.post(
            f"/sandbox/pay/{payment['provider_transaction_id']}", data={"outcome": "succeed"}, allow_redirects=False
        )
        assert paid.status in (200, 303), await paid.text()
        await mark_paid(engine, payment["provider_transaction_id"])  # the bank's callback, not awaited here
        verdicts = {}
        for reason, expected in ((None, "succeeded"), ("sandbox:fail", "failed"), ("sandbox:pending", "pending")):
            event = refund_created(
                payment["payment_id"], provider="sandbox", amount=1000, currency="USD", reason=reason
            )
            assert await client.app[refunds_key].accept(event) == expected
            verdicts[event.data.refund.id] = expected

        lines = refunds_in(await statement(client, internal_headers, "sandbox"))
        assert {refund_id: line.status for refund_id, line in lines.items()} == verdicts
        for refund_id, line in lines.items():
            assert (line.provider, line.account_id, line.payment_id) == ("sandbox", "sandbox", payment["payment_id"])
            assert (line.amount, line.currency, line.provider_reference) == (1000, "USD", f"sbref_{refund_id}")
        # The payment's own line is still there, once.
        [payment_line] = [r for r in await statement(client, internal_headers, "sandbox") if r.kind == "payment"]
        assert (payment_line.payment_id, payment_line.status) == (payment["payment_id"], "succeeded")
        # A refund belongs to the period it last changed in.
        assert refunds_in(await statement(client, internal_headers, "sandbox", days=1)) == {}


class TestClick:
    async def test_a_reversal_is_a_refund_line_and_the_payment_reads_refunded(
        self, own_gateway: Client, internal_headers: Any, engine: AsyncEngine
    ) -> None:
        payment = await paid_with_simulator(own_gateway, internal_headers(TENANT), "click", 250_000)
        kept = await paid_with_simulator(own_gateway, internal_headers(TENANT), "click", 70_000)
        event = refund_created(payment["payment_id"], provider="click", amount=250_000, currency="UZS")
        assert await own_gateway.app[refunds_key].accept(event) == "succeeded"
        refused = refund_created(
            kept["payment_id"], provider="click", amount=70_000, currency="UZS", reason="sandbox:fail"
        )
        assert await own_gateway.app[refunds_key].accept(refused) == "failed"

        records = await statement(own_gateway, internal_headers, "pac_simulator_click")
        payments = {r.payment_id: r.status for r in records if r.kind == "payment"}
        assert payments == {payment["payment_id"]: "refunded", kept["payment_id"]: "succeeded"}
        # Click made the one reversal; the refused one has no record at Click, so no line.
        [line] = refunds_in(records).values()
        assert (line.refund_id, line.payment_id) == (event.data.refund.id, payment["payment_id"])
        assert line.status == "succeeded"
        assert (line.amount, line.currency) == (250_000, "UZS")
        assert line.provider_reference.isdigit()  # Click's payment number, as its reversal answered
        async with engine.connect() as conn:
            reversals = (await conn.execute(select(func.count()).select_from(ClickSimulatorReversalRow))).scalar_one()
        assert reversals == 2  # the made one and the refused one: reading the statement reversed nothing


class TestOcto:
    async def test_each_refund_octo_accepted_is_asked_again_and_nothing_is_refunded_twice(
        self, own_gateway: Client, internal_headers: Any
    ) -> None:
        payment = await paid_with_simulator(own_gateway, internal_headers(TENANT), "octo", 500_000)
        made = [
            refund_created(payment["payment_id"], provider="octo", amount=amount, currency="UZS")
            for amount in (100_000, 150_000)
        ]
        for event in made:
            assert await own_gateway.app[refunds_key].accept(event) == "succeeded"

        first = refunds_in(await statement(own_gateway, internal_headers, "pac_simulator_octo"))
        assert {refund_id: (r.status, r.amount) for refund_id, r in first.items()} == {
            made[0].data.refund.id: ("succeeded", 100_000),
            made[1].data.refund.id: ("succeeded", 150_000),
        }
        assert all(r.provider_reference == r.refund_id for r in first.values())  # shop_refund_id
        # Asked again, Octo answers the same refunds: the statement made none (a third 250,000 would
        # still fit in the payment, so a refund made by reading would show here).
        again = refunds_in(await statement(own_gateway, internal_headers, "pac_simulator_octo"))
        assert again == first
        third = refund_created(payment["payment_id"], provider="octo", amount=250_000, currency="UZS")
        assert await own_gateway.app[refunds_key].accept(third) == "succeeded"
        over = refund_created(payment["payment_id"], provider="octo", amount=1_000, currency="UZS")
        assert await own_gateway.app[refunds_key].accept(over) == "failed"
