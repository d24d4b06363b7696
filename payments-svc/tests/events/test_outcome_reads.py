"""The one read a provider outcome is decided on (``db/outcome_reads.py``): the payment, whether refund
verdicts are parked on it, and its attempts oldest first, in one statement."""

import re
from datetime import UTC, datetime

from billing_contracts.events import ProviderPaymentFailedV1, ProviderPaymentOutcome
from billing_runtime.bus import Message
from billing_runtime.metrics import Metrics
from payments_svc.db.models import ParkedRefundVerdict
from payments_svc.db.outcome_reads import _payment_parked_and_attempts, outcome_snapshot
from payments_svc.events.consumers import provider_outcome_handler
from payments_svc.keys import lifecycle_deps_key
from sqlalchemy.dialects import postgresql


def _failed(payment, provider_transaction_id: str) -> Message:  # type: ignore[no-untyped-def]
    event = ProviderPaymentFailedV1(
        tenant_id="ten_a",
        data=ProviderPaymentOutcome(
            payment_id=payment["id"],
            provider="sandbox",
            provider_transaction_id=provider_transaction_id,
            amount=payment["amount"],
            currency=payment["currency"],
        ),
    )
    return Message(
        routing_key="providers.payment.failed.v1", body=event.model_dump_json().encode(), message_id=event.event_id
    )


async def _snapshot(app, tenant_id: str, payment_id: str):  # type: ignore[no-untyped-def]
    async with app[lifecycle_deps_key].uow() as uow:
        return await outcome_snapshot(uow, tenant_id, payment_id)


async def _pay(client, auth, payment, provider: str) -> None:  # type: ignore[no-untyped-def]
    response = await client.post(
        f"/v1/checkout/{payment['checkout_token']}/pay", json={"provider": provider}, headers=auth(None, None)
    )
    assert response.status == 200, await response.text()


class TestOutcomeSnapshot:
    async def test_a_payment_without_attempts_comes_with_none(self, app, new_payment) -> None:
        payment = await new_payment()
        read = await _snapshot(app, "ten_a", payment["id"])
        assert read.payment is not None and read.payment.id == payment["id"]
        assert read.payment.status == "CREATED"
        assert (read.attempts, read.has_parked_verdicts) == ([], False)

    async def test_every_attempt_comes_oldest_first_with_the_payment_once(self, app, client, auth, new_payment) -> None:
        payment = await new_payment()
        await _pay(client, auth, payment, "sandbox")
        read = await _snapshot(app, "ten_a", payment["id"])
        [attempt] = read.attempts
        assert attempt.status == "pending"
        # The first attempt fails: the payment is payable again, and a second one starts (with another
        # provider: a declined one is not offered again).
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        await handle(_failed(payment, attempt.provider_transaction_id))
        await _pay(client, auth, payment, "other")
        read = await _snapshot(app, "ten_a", payment["id"])
        assert read.payment is not None and read.payment.status == "PROVIDER_PENDING"
        assert [a.status for a in read.attempts] == ["failed", "pending"]
        assert read.attempts[0].id == attempt.id
        assert [a.provider for a in read.attempts] == ["sandbox", "other"]
        assert read.attempts[1].provider_transaction_id == read.payment.provider_transaction_id

    async def test_parked_verdicts_are_told(self, app, new_payment) -> None:
        payment = await new_payment()
        async with app[lifecycle_deps_key].uow() as uow:
            uow.session.add(
                ParkedRefundVerdict(
                    event_id="evt_parked",
                    tenant_id="ten_a",
                    payment_id=payment["id"],
                    body="{}",
                    provider_updated_at=datetime.now(UTC),
                    parked_at=datetime.now(UTC),
                )
            )
            await uow.commit()
        read = await _snapshot(app, "ten_a", payment["id"])
        assert read.has_parked_verdicts is True
        assert read.attempts == []

    async def test_an_unknown_or_another_tenants_payment_is_none(self, app, new_payment) -> None:
        payment = await new_payment()
        for tenant_id, payment_id in (("ten_a", "pay_unknown"), ("ten_b", payment["id"])):
            read = await _snapshot(app, tenant_id, payment_id)
            # Verdicts of an unknown payment are due (``parked_verdicts.due`` replays them).
            assert (read.payment, read.has_parked_verdicts, read.attempts) == (None, True, [])


class TestOutcomeReadPlan:
    async def test_the_generic_plan_reads_the_payment_by_its_key(self, engine, new_payment) -> None:  # type: ignore[no-untyped-def]
        # The statement is prepared once per connection and PostgreSQL settles on a generic plan after five
        # executions, made with whatever statistics the tables had then (a new table's: nearly none). With
        # the tenant in the WHERE clause that plan walked ix_payments_tenant_order, reading every payment of
        # the tenant per outcome. The plan must take the primary key whatever the statistics say.
        await new_payment()
        sql = str(_payment_parked_and_attempts().compile(dialect=postgresql.asyncpg.dialect()))
        sql = re.sub(r"\$(\d+)::VARCHAR", r"$\1", sql)
        count = len(set(re.findall(r"\$\d+", sql)))
        types, values = ", ".join(["varchar"] * count), ", ".join(["'pay_x'", "'ten_a'"][:count])
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            await raw.execute("SET plan_cache_mode = force_generic_plan")
            try:
                await raw.execute(f"PREPARE outcome_read({types}) AS {sql}")
                plan = "\n".join(r[0] for r in await raw.fetch(f"EXPLAIN EXECUTE outcome_read({values})"))
                await raw.execute("DEALLOCATE outcome_read")
            finally:
                await raw.execute("RESET plan_cache_mode")
        assert "pk_payments" in plan, plan
        assert "ix_payments_tenant" not in plan, plan
