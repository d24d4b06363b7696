"""Provider outcome events move payments exactly once (inbox), and only along the state machine."""

import asyncio

from billing_contracts.events import ProviderPaymentFailedV1, ProviderPaymentOutcome, ProviderPaymentSucceededV1
from billing_runtime.bus import Message
from billing_runtime.metrics import Metrics
from payments_svc.db.models import PaymentStatusChange
from payments_svc.events.consumers import provider_outcome_handler
from payments_svc.keys import lifecycle_deps_key
from payments_svc.services import lifecycle
from sqlalchemy import select


async def _pending_payment(client, auth, new_payment):
    created = await new_payment()
    await client.post(
        f"/v1/checkout/{created['checkout_token']}/pay", json={"provider": "sandbox"}, headers=auth(None, None)
    )
    return created


def _outcome(payment, cls=ProviderPaymentSucceededV1, **overrides):
    data = {
        "payment_id": payment["id"],
        "provider": "sandbox",
        "provider_transaction_id": "ptx_1",
        "provider_reference": "sb_ref_1",
        "amount": payment["amount"],
        "currency": payment["currency"],
    }
    data.update(overrides)
    return cls(tenant_id="ten_a", data=ProviderPaymentOutcome(**data))


def _message(event) -> Message:
    return Message(
        routing_key=f"providers.{event.event_type}.v1", body=event.model_dump_json().encode(), message_id=event.event_id
    )


async def _status(client, auth, payment) -> dict:
    return await (await client.get(f"/v1/payments/{payment['id']}", headers=auth())).json()


class TestProviderOutcomes:
    async def test_success_moves_to_succeeded_and_announces_it(self, app, client, auth, new_payment) -> None:
        payment = await _pending_payment(client, auth, new_payment)
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        await handle(_message(_outcome(payment)))
        after = await _status(client, auth, payment)
        assert after["status"] == "SUCCEEDED"
        assert after["provider_reference"] == "sb_ref_1"
        events = await (await client.get("/v1/events?type=payment.succeeded", headers=auth())).json()
        assert len(events["data"]) == 1
        assert events["data"][0]["data"]["payment"]["status"] == "SUCCEEDED"

    async def test_duplicate_delivery_is_applied_once(self, app, client, auth, new_payment, count) -> None:
        payment = await _pending_payment(client, auth, new_payment)
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        message = _message(_outcome(payment))
        for _ in range(3):
            await handle(message)
        assert await count("inbox") == 1
        events = await (await client.get("/v1/events?type=payment.succeeded", headers=auth())).json()
        assert len(events["data"]) == 1

    async def test_concurrent_redeliveries_apply_once(self, app, client, auth, new_payment, count, clean_db) -> None:
        payment = await _pending_payment(client, auth, new_payment)
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        message = _message(_outcome(payment))
        await asyncio.gather(*(handle(message) for _ in range(5)))
        assert await count("inbox") == 1
        async with clean_db.connect() as conn:
            moves = (
                (
                    await conn.execute(
                        select(PaymentStatusChange.to_status).where(PaymentStatusChange.payment_id == payment["id"])
                    )
                )
                .scalars()
                .all()
            )
        assert moves.count("SUCCEEDED") == 1
        events = await (await client.get("/v1/events?type=payment.succeeded", headers=auth())).json()
        assert len(events["data"]) == 1

    async def test_a_redelivered_anomaly_is_recorded_once(self, app, client, auth, new_payment, clean_db) -> None:
        payment = await _pending_payment(client, auth, new_payment)
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        message = _message(_outcome(payment, amount=1))
        await handle(message)
        await handle(message)
        async with clean_db.connect() as conn:
            reasons = (await conn.execute(select(PaymentStatusChange.reason))).scalars().all()
        assert len([r for r in reasons if r and r.startswith("anomaly")]) == 1

    async def test_a_payment_that_moves_between_read_and_write_is_decided_again(
        self, app, client, auth, new_payment, clean_db, monkeypatch
    ) -> None:
        payment = await _pending_payment(client, auth, new_payment)
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        real = lifecycle.outcome_snapshot
        raced: list[bool] = []

        async def snapshot_then_race(uow, tenant_id, payment_id):  # type: ignore[no-untyped-def]
            snap = await real(uow, tenant_id, payment_id)
            if not raced:
                raced.append(True)
                # Between this read and its write, a decline for the same payment is applied.
                await handle(_message(_outcome(payment, ProviderPaymentFailedV1)))
            return snap

        monkeypatch.setattr(lifecycle, "outcome_snapshot", snapshot_then_race)
        await handle(_message(_outcome(payment)))

        # The decline made the payment payable again; the success, decided again, is for no attempt of
        # it (an anomaly: a success for a payment not being paid), never a SUCCEEDED.
        assert (await _status(client, auth, payment))["status"] == "CREATED"
        async with clean_db.connect() as conn:
            rows = (await conn.execute(select(PaymentStatusChange.to_status, PaymentStatusChange.reason))).all()
        assert [to for to, reason in rows if not (reason or "").startswith("anomaly")].count("SUCCEEDED") == 0
        assert len([reason for _, reason in rows if (reason or "").startswith("anomaly")]) == 1
        succeeded = await (await client.get("/v1/events?type=payment.succeeded", headers=auth())).json()
        assert succeeded["data"] == []

    async def test_failure_records_the_reason(self, app, client, auth, new_payment) -> None:
        payment = await _pending_payment(client, auth, new_payment)
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        event = _outcome(payment, ProviderPaymentFailedV1, failure_code="card_declined", failure_message="Declined")
        await handle(_message(event))
        after = await _status(client, auth, payment)
        # A failed attempt leaves the payment payable (CREATED), with the attempt's failure.
        assert (after["status"], after["failure_code"], after["failure_message"]) == (
            "CREATED",
            "card_declined",
            "Declined",
        )

    async def test_amount_mismatch_never_succeeds(self, app, client, auth, new_payment, clean_db) -> None:
        payment = await _pending_payment(client, auth, new_payment)
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        await handle(_message(_outcome(payment, amount=1)))
        assert (await _status(client, auth, payment))["status"] == "PROVIDER_PENDING"
        async with clean_db.connect() as conn:
            reasons = (await conn.execute(select(PaymentStatusChange.reason))).scalars().all()
        assert any(r and r.startswith("anomaly") for r in reasons)

    async def test_success_after_cancel_is_recorded_not_applied(self, app, client, auth, new_payment) -> None:
        payment = await new_payment()
        await client.post(f"/v1/payments/{payment['id']}/cancel", headers=auth())
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        await handle(_message(_outcome(payment)))
        assert (await _status(client, auth, payment))["status"] == "CANCELLED"

    async def test_second_outcome_does_not_flip_a_final_state(self, app, client, auth, new_payment) -> None:
        payment = await _pending_payment(client, auth, new_payment)
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        await handle(_message(_outcome(payment)))
        await handle(_message(_outcome(payment, ProviderPaymentFailedV1)))
        assert (await _status(client, auth, payment))["status"] == "SUCCEEDED"

    async def test_outcome_for_another_tenants_payment_is_ignored(self, app, client, auth, new_payment) -> None:
        payment = await _pending_payment(client, auth, new_payment)
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        foreign = ProviderPaymentSucceededV1(tenant_id="ten_b", data=_outcome(payment).data)
        await handle(_message(foreign))
        assert (await _status(client, auth, payment))["status"] == "PROVIDER_PENDING"

    async def test_unparseable_message_is_dropped(self, app) -> None:
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        await handle(Message(routing_key="providers.x.v1", body=b"{not json", message_id="m1"))

    async def test_bus_delivers_outcomes_to_the_worker(self, app, client, auth, new_payment, bus) -> None:
        payment = await _pending_payment(client, auth, new_payment)
        event = _outcome(payment)
        await bus.publish(_message(event))
        for _ in range(100):
            if (await _status(client, auth, payment))["status"] == "SUCCEEDED":
                break
            await __import__("asyncio").sleep(0.02)
        assert (await _status(client, auth, payment))["status"] == "SUCCEEDED"
