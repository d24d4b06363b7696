"""Provider verdicts on refunds (``provider.refund.updated``): applied once per event, in the provider's
order, a final state final; refunds the provider started itself become refunds; money a provider
refunded beyond the payment or its reservations is applied honestly and recorded as an anomaly."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from billing_contracts import parse_event
from billing_contracts.events import (
    ProviderPaymentOutcome,
    ProviderPaymentSucceededV1,
    ProviderRefund,
    ProviderRefundUpdatedV1,
)
from billing_runtime.bus import Message
from billing_runtime.bus.rabbit import RabbitBus
from billing_runtime.metrics import Metrics
from billing_runtime.testing import require_rabbitmq
from billing_runtime.testing_status import delete_queues
from payments_svc.app import create_app
from payments_svc.db.models import ParkedRefundVerdict, Payment, PaymentAnomaly, Refund
from payments_svc.events.consumers import LOGGED_EVENTS_QUEUE, PROVIDER_EVENTS_QUEUE, provider_outcome_handler
from payments_svc.keys import lifecycle_deps_key
from payments_svc.services.parked_verdicts import replay_parked
from sqlalchemy import select

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _verdict(
    payment: dict[str, Any],
    status: str,
    *,
    refund_id: str | None = None,
    at: int = 1,
    tenant: str = "ten_a",
    **overrides: Any,
) -> ProviderRefundUpdatedV1:
    data: dict[str, Any] = {
        "payment_id": payment["id"],
        "provider": "sandbox",
        "provider_transaction_id": f"ptx_{payment['id']}_sandbox",
        "refund_id": refund_id,
        "provider_refund_id": "re_1",
        "amount": payment["amount"],
        "currency": payment["currency"],
        "status": status,
        "provider_updated_at": _at(at),
        "livemode": False,
    }
    data.update(overrides)
    return ProviderRefundUpdatedV1(tenant_id=tenant, data=ProviderRefund(**data))


def _message(event: Any) -> Message:
    return Message(f"providers.{event.event_type}.v1", event.model_dump_json().encode(), event.event_id)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics("t")


@pytest.fixture
def handle(app, metrics):  # type: ignore[no-untyped-def]
    return provider_outcome_handler(app[lifecycle_deps_key], metrics)


@pytest.fixture
def pending_refund(paid_payment, refund):  # type: ignore[no-untyped-def]
    """A paid payment and a PENDING refund of it (of ``amount``, all of it by default)."""

    async def make(amount: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        payment = await paid_payment()
        response = await refund(payment, {"amount": amount} if amount else {})
        assert response.status == 201
        return payment, await response.json()

    return make


async def _get(client, auth, path: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = await client.get(path, headers=auth())
    assert response.status == 200
    return await response.json()  # type: ignore[no-any-return]


async def _log(client, auth) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    body = await _get(client, auth, "/v1/events?limit=100")
    return [e for e in body["data"] if e["type"].startswith("refund.")]


async def _reserved(engine, payment_id: str) -> int:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return int((await conn.execute(select(Payment.refund_reserved).where(Payment.id == payment_id))).scalar_one())


async def _parked(engine) -> int:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return len((await conn.execute(select(ParkedRefundVerdict.event_id))).all())


async def _anomalies(engine) -> list[str]:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return list((await conn.execute(select(PaymentAnomaly.kind))).scalars())


class TestSucceeded:
    async def test_a_success_refunds_the_payment_and_is_announced(
        self, client, auth, pending_refund, handle, clean_db, metrics
    ) -> None:
        payment, created = await pending_refund(2000)
        await handle(_message(_verdict(payment, "succeeded", refund_id=created["id"], amount=2000)))

        refund = await _get(client, auth, f"/v1/refunds/{created['id']}")
        assert (refund["status"], refund["provider_refund_id"], refund["sequence"]) == ("SUCCEEDED", "re_1", 2)
        after = await _get(client, auth, f"/v1/payments/{payment['id']}")
        assert (after["status"], after["amount_refunded"]) == ("PARTIALLY_REFUNDED", 2000)
        assert after["sequence"] == payment["sequence"] + 1
        assert await _reserved(clean_db, payment["id"]) == 2000
        logged = await _log(client, auth)
        assert [e["type"] for e in logged] == ["refund.created", "refund.succeeded"]
        assert logged[1]["data"]["refund"] == refund
        assert logged[1]["data"]["payment"] == after
        history = (await _get(client, auth, f"/v1/payments/{payment['id']}/history"))["data"][-1]
        assert (history["from_status"], history["to_status"], history["event_id"]) == (
            "SUCCEEDED",
            "PARTIALLY_REFUNDED",
            logged[1]["id"],
        )
        assert metrics.events_consumed.labels("provider.refund.updated", "succeeded")._value.get() == 1

    async def test_the_rest_refunded_makes_the_payment_refunded(
        self, client, auth, paid_payment, refund, handle
    ) -> None:
        payment = await paid_payment()
        first = await (await refund(payment, {"amount": 2000})).json()
        second = await (await refund(payment, {"amount": 3000})).json()
        await handle(
            _message(_verdict(payment, "succeeded", refund_id=first["id"], amount=2000, provider_refund_id="re_1"))
        )
        await handle(
            _message(_verdict(payment, "succeeded", refund_id=second["id"], amount=3000, provider_refund_id="re_2"))
        )
        after = await _get(client, auth, f"/v1/payments/{payment['id']}")
        assert (after["status"], after["amount_refunded"]) == ("REFUNDED", 5000)
        assert after["sequence"] == payment["sequence"] + 2
        # Nothing is left: a further refund is refused.
        response = await refund(payment, {"amount": 1})
        assert (response.status, (await response.json())["code"]) == (409, "invalid_state")


class TestFailed:
    async def test_a_failure_releases_the_amount_and_is_announced(
        self, client, auth, pending_refund, handle, refund, clean_db
    ) -> None:
        payment, created = await pending_refund()
        failed = _verdict(
            payment, "failed", refund_id=created["id"], failure_code="expired_card", failure_message="Card expired."
        )
        await handle(_message(failed))

        got = await _get(client, auth, f"/v1/refunds/{created['id']}")
        assert (got["status"], got["failure_code"], got["failure_message"]) == (
            "FAILED",
            "expired_card",
            "Card expired.",
        )
        after = await _get(client, auth, f"/v1/payments/{payment['id']}")
        assert (after["status"], after["amount_refunded"], after["sequence"]) == ("SUCCEEDED", 0, payment["sequence"])
        assert await _reserved(clean_db, payment["id"]) == 0
        assert [e["type"] for e in await _log(client, auth)] == ["refund.created", "refund.failed"]
        # Refundable again, all of it.
        assert (await refund(payment)).status == 201


class TestPending:
    async def test_pending_records_the_providers_id_and_nothing_else(
        self, client, auth, pending_refund, handle, clean_db
    ) -> None:
        payment, created = await pending_refund()
        await handle(_message(_verdict(payment, "pending", refund_id=created["id"], provider_refund_id="re_9")))

        got = await _get(client, auth, f"/v1/refunds/{created['id']}")
        assert (got["status"], got["provider_refund_id"], got["sequence"]) == ("PENDING", "re_9", 2)
        after = await _get(client, auth, f"/v1/payments/{payment['id']}")
        assert after == payment | {"amount_refunded": 0}
        assert await _reserved(clean_db, payment["id"]) == 5000
        assert [e["type"] for e in await _log(client, auth)] == ["refund.created"]


class TestOrdering:
    async def test_a_late_pending_after_success_changes_nothing(self, client, auth, pending_refund, handle) -> None:
        payment, created = await pending_refund()
        await handle(_message(_verdict(payment, "succeeded", refund_id=created["id"], at=5)))
        before = await _get(client, auth, f"/v1/refunds/{created['id']}")
        for at in (3, 9):
            await handle(_message(_verdict(payment, "pending", refund_id=created["id"], at=at)))
        assert await _get(client, auth, f"/v1/refunds/{created['id']}") == before
        assert [e["type"] for e in await _log(client, auth)] == ["refund.created", "refund.succeeded"]

    async def test_a_success_older_than_a_pending_state_still_applies(
        self, client, auth, pending_refund, handle
    ) -> None:
        # Out of order: the final state carries the money fact, whatever its time against a pending one.
        payment, created = await pending_refund()
        await handle(_message(_verdict(payment, "pending", refund_id=created["id"], at=9)))
        await handle(_message(_verdict(payment, "succeeded", refund_id=created["id"], at=5)))
        assert (await _get(client, auth, f"/v1/refunds/{created['id']}"))["status"] == "SUCCEEDED"

    async def test_an_older_pending_state_is_stale(self, client, auth, pending_refund, handle, metrics) -> None:
        payment, created = await pending_refund()
        await handle(_message(_verdict(payment, "pending", refund_id=created["id"], at=9, provider_refund_id="re_1")))
        before = await _get(client, auth, f"/v1/refunds/{created['id']}")
        await handle(_message(_verdict(payment, "pending", refund_id=created["id"], at=4, provider_refund_id="re_1")))
        assert await _get(client, auth, f"/v1/refunds/{created['id']}") == before
        assert metrics.events_consumed.labels("provider.refund.updated", "stale")._value.get() == 1

    async def test_a_failure_after_success_is_an_anomaly_never_applied(
        self, client, auth, pending_refund, handle, clean_db
    ) -> None:
        payment, created = await pending_refund()
        await handle(_message(_verdict(payment, "succeeded", refund_id=created["id"], at=5)))
        paid_back = await _get(client, auth, f"/v1/payments/{payment['id']}")
        await handle(_message(_verdict(payment, "failed", refund_id=created["id"], at=7)))
        assert (await _get(client, auth, f"/v1/refunds/{created['id']}"))["status"] == "SUCCEEDED"
        assert await _get(client, auth, f"/v1/payments/{payment['id']}") == paid_back
        assert await _anomalies(clean_db) == ["unexpected_outcome"]


class TestExactlyOnce:
    async def test_a_redelivered_verdict_is_applied_once(self, client, auth, pending_refund, handle, metrics) -> None:
        payment, created = await pending_refund(1000)
        event = _verdict(payment, "succeeded", refund_id=created["id"], amount=1000)
        await handle(_message(event))
        await handle(_message(event))
        after = await _get(client, auth, f"/v1/payments/{payment['id']}")
        assert (after["amount_refunded"], after["sequence"]) == (1000, payment["sequence"] + 1)
        assert [e["type"] for e in await _log(client, auth)] == ["refund.created", "refund.succeeded"]
        assert metrics.events_consumed.labels("provider.refund.updated", "duplicate")._value.get() == 1

    async def test_concurrent_verdicts_of_one_payment_are_each_applied_once(
        self, client, auth, paid_payment, refund, handle, clean_db
    ) -> None:
        payment = await paid_payment()
        refunds = [await (await refund(payment, {"amount": 1000})).json() for _ in range(4)]
        events = [
            _verdict(payment, "succeeded", refund_id=r["id"], amount=1000, provider_refund_id=f"re_{i}")
            for i, r in enumerate(refunds)
        ]
        # Each verdict twice, all at once: they queue on the payment's row lock and the inbox.
        await asyncio.gather(*(handle(_message(e)) for e in events + events))
        after = await _get(client, auth, f"/v1/payments/{payment['id']}")
        assert (after["status"], after["amount_refunded"]) == ("PARTIALLY_REFUNDED", 4000)
        assert after["sequence"] == payment["sequence"] + 4
        assert await _reserved(clean_db, payment["id"]) == 4000
        assert len([e for e in await _log(client, auth) if e["type"] == "refund.succeeded"]) == 4


class TestProviderStarted:
    async def test_a_refund_made_at_the_provider_becomes_a_refund_announced_created_then_succeeded(
        self, client, auth, paid_payment, handle, clean_db, app
    ) -> None:
        payment = await paid_payment()
        event = _verdict(payment, "succeeded", amount=1500, provider_refund_id="re_dash")
        await handle(_message(event))

        listed = (await _get(client, auth, f"/v1/payments/{payment['id']}/refunds"))["data"]
        [made] = listed
        assert (made["status"], made["amount"], made["provider_refund_id"], made["sequence"]) == (
            "SUCCEEDED",
            1500,
            "re_dash",
            2,
        )
        logged = await _log(client, auth)
        assert [e["type"] for e in logged] == ["refund.created", "refund.succeeded"]
        assert [e["data"]["refund"]["sequence"] for e in logged] == [1, 2]
        assert logged[0]["data"]["refund"]["status"] == "PENDING"
        assert [e["data"]["payment"]["sequence"] for e in logged] == [payment["sequence"], payment["sequence"] + 1]
        after = await _get(client, auth, f"/v1/payments/{payment['id']}")
        assert (after["status"], after["amount_refunded"]) == ("PARTIALLY_REFUNDED", 1500)
        async with clean_db.connect() as conn:
            origin = (await conn.execute(select(Refund.origin))).scalar_one()
        assert origin == "provider"
        # A repeat (another event of the same refund) finds it again by the provider's id.
        await handle(_message(_verdict(payment, "succeeded", amount=1500, provider_refund_id="re_dash", at=3)))
        assert len((await _get(client, auth, f"/v1/payments/{payment['id']}/refunds"))["data"]) == 1
        counted = app[lifecycle_deps_key].metrics.refunds
        assert counted.labels("sandbox", "created")._value.get() == 1
        assert counted.labels("sandbox", "succeeded")._value.get() == 1

    async def test_a_provider_started_refund_pending_then_succeeded(
        self, client, auth, paid_payment, handle, refund, clean_db
    ) -> None:
        payment = await paid_payment()
        await handle(_message(_verdict(payment, "pending", amount=1000, provider_refund_id="re_p", at=1)))
        [made] = (await _get(client, auth, f"/v1/payments/{payment['id']}/refunds"))["data"]
        assert made["status"] == "PENDING"
        # Its money is held: only 4000 is left for the tenant.
        response = await refund(payment, {"amount": 4001})
        assert (await response.json())["amount_refundable"] == 4000
        await handle(_message(_verdict(payment, "succeeded", amount=1000, provider_refund_id="re_p", at=2)))
        assert (await _get(client, auth, f"/v1/refunds/{made['id']}"))["status"] == "SUCCEEDED"
        assert [e["type"] for e in await _log(client, auth)] == ["refund.created", "refund.succeeded"]
        assert await _reserved(clean_db, payment["id"]) == 1000

    async def test_a_provider_started_refund_that_failed_moves_no_money(
        self, client, auth, paid_payment, handle, clean_db
    ) -> None:
        payment = await paid_payment()
        await handle(_message(_verdict(payment, "failed", amount=1000, provider_refund_id="re_f", failure_code="x")))
        [made] = (await _get(client, auth, f"/v1/payments/{payment['id']}/refunds"))["data"]
        assert (made["status"], made["failure_code"]) == ("FAILED", "x")
        assert [e["type"] for e in await _log(client, auth)] == ["refund.created", "refund.failed"]
        after = await _get(client, auth, f"/v1/payments/{payment['id']}")
        assert (after["status"], after["amount_refunded"], after["sequence"]) == ("SUCCEEDED", 0, payment["sequence"])
        assert await _reserved(clean_db, payment["id"]) == 0


class TestOverRefunds:
    async def test_a_provider_refund_beside_a_pending_one_is_kept_within_the_bound_and_recorded(
        self, client, auth, pending_refund, handle, clean_db
    ) -> None:
        # The tenant asked for all of it; meanwhile all of it was refunded in the provider's dashboard.
        payment, ours = await pending_refund()
        await handle(_message(_verdict(payment, "succeeded", provider_refund_id="re_dash")))

        after = await _get(client, auth, f"/v1/payments/{payment['id']}")
        assert (after["status"], after["amount_refunded"]) == ("REFUNDED", 5000)
        assert await _reserved(clean_db, payment["id"]) == 5000  # capped: the CHECK holds
        assert await _anomalies(clean_db) == ["refund_over_reserved"]
        # Ours then fails at the provider (it was refunded already): everything adds up again.
        await handle(_message(_verdict(payment, "failed", refund_id=ours["id"], provider_refund_id="re_ours")))
        assert (await _get(client, auth, f"/v1/refunds/{ours['id']}"))["status"] == "FAILED"
        assert await _reserved(clean_db, payment["id"]) == 5000
        assert await _anomalies(clean_db) == ["refund_over_reserved"]

    async def test_a_provider_refunding_more_than_the_payment_is_recorded_as_such(
        self, client, auth, pending_refund, handle, clean_db
    ) -> None:
        payment, ours = await pending_refund()
        await handle(_message(_verdict(payment, "succeeded", provider_refund_id="re_dash")))
        await handle(_message(_verdict(payment, "succeeded", refund_id=ours["id"], provider_refund_id="re_ours")))

        # Both refunds happened (facts); the payment cannot have returned more than it took.
        statuses = [r["status"] for r in (await _get(client, auth, f"/v1/payments/{payment['id']}/refunds"))["data"]]
        assert statuses == ["SUCCEEDED", "SUCCEEDED"]
        after = await _get(client, auth, f"/v1/payments/{payment['id']}")
        assert (after["status"], after["amount_refunded"]) == ("REFUNDED", 5000)
        assert sorted(await _anomalies(clean_db)) == ["refund_exceeds_payment", "refund_over_reserved"]
        async with clean_db.connect() as conn:
            table = PaymentAnomaly.__table__
            row = (await conn.execute(select(table).where(table.c.kind == "refund_exceeds_payment"))).mappings().one()
        assert (row["amount"], row["expected_amount"], row["payment_id"]) == (5000, 5000, payment["id"])
        assert row["event"]["data"]["refund_id"] == ours["id"]


class TestRefusedVerdicts:
    @pytest.mark.parametrize(
        ("overrides", "kind"),
        [
            ({"provider": "other"}, "provider_mismatch"),
            ({"currency": "EUR"}, "currency_mismatch"),
            ({"livemode": True}, "unexpected_outcome"),
            ({"amount": 4999}, "amount_mismatch"),
            ({"refund_id": "rfnd_unknown0000"}, "unexpected_outcome"),
            ({"tenant": "ten_b"}, "unexpected_outcome"),
            ({"payment_id": "pay_unknown0000"}, "unexpected_outcome"),
            ({"refund_id": None, "provider_refund_id": None}, "unexpected_outcome"),
            ({"provider_refund_id": "x" * 129}, "unexpected_outcome"),
            ({"provider_updated_at": datetime(2026, 12, 6, 12, 0)}, "unexpected_outcome"),
        ],
    )
    async def test_a_verdict_that_cannot_be_about_the_refund_is_recorded_not_applied(
        self, client, auth, pending_refund, handle, clean_db, overrides, kind
    ) -> None:
        payment, ours = await pending_refund()
        fields: dict[str, Any] = {"refund_id": ours["id"], **overrides}
        event = _verdict(payment, "succeeded", **fields)
        await handle(_message(event))
        await handle(_message(event))  # once per consumed event
        assert (await _get(client, auth, f"/v1/refunds/{ours['id']}"))["status"] == "PENDING"
        after = await _get(client, auth, f"/v1/payments/{payment['id']}")
        assert (after["status"], after["amount_refunded"]) == ("SUCCEEDED", 0)
        assert await _anomalies(clean_db) == [kind]
        assert [e["type"] for e in await _log(client, auth)] == ["refund.created"]

    async def test_a_refund_of_a_payment_never_captured_is_an_anomaly_once_it_ends_without_money(
        self, client, auth, new_payment, handle, clean_db, app
    ) -> None:
        payment = await new_payment()
        await handle(_message(_verdict(payment, "succeeded", provider_refund_id="re_x")))
        assert await _anomalies(clean_db) == []  # parked: its success may still come
        assert await _parked(clean_db) == 1
        assert (await client.post(f"/v1/payments/{payment['id']}/cancel", headers=auth())).status == 200
        assert await replay_parked(app[lifecycle_deps_key]) == 1  # the worker's sweeper pass
        assert await _anomalies(clean_db) == ["unexpected_outcome"]
        assert await _parked(clean_db) == 0
        assert (await _get(client, auth, f"/v1/payments/{payment['id']}"))["status"] == "CANCELLED"


class TestVerdictBeforeCapture:
    async def test_a_verdict_before_the_payments_success_is_applied_with_the_success(
        self, client, auth, new_payment, handle, clean_db
    ) -> None:
        created = await new_payment()
        paying = await client.post(
            f"/v1/checkout/{created['checkout_token']}/pay", json={"provider": "sandbox"}, headers=auth(None, None)
        )
        assert paying.status == 200, await paying.text()
        # Stripe's charge.refunded of a dashboard refund overtook payment_intent.succeeded.
        verdict = _verdict(created, "succeeded", provider_refund_id="re_early")
        await handle(_message(verdict))
        assert await _anomalies(clean_db) == []
        assert (await _get(client, auth, f"/v1/payments/{created['id']}"))["status"] == "PROVIDER_PENDING"

        outcome = ProviderPaymentOutcome(
            payment_id=created["id"],
            provider="sandbox",
            provider_transaction_id=f"ptx_{created['id']}_sandbox",
            amount=created["amount"],
            currency=created["currency"],
            livemode=False,
        )
        success = ProviderPaymentSucceededV1(tenant_id="ten_a", data=outcome)
        await handle(_message(success))
        after = await _get(client, auth, f"/v1/payments/{created['id']}")
        assert (after["status"], after["amount_refunded"]) == ("REFUNDED", created["amount"])
        assert [e["type"] for e in await _log(client, auth)] == ["refund.created", "refund.succeeded"]
        assert await _parked(clean_db) == 0 and await _anomalies(clean_db) == []
        await handle(_message(verdict))  # a redelivery: the inbox row kept since it was parked
        assert len(await _log(client, auth)) == 2


class TestBus:
    async def test_the_in_process_bus_brings_verdicts_to_the_worker_and_refund_events_out(
        self, client, auth, pending_refund, bus
    ) -> None:
        seen: list[Any] = []

        async def collect(message: Message) -> None:
            seen.append(parse_event(message.body))

        await bus.subscribe("test.refund-events", ["payments.refund.*.v1"], collect)
        payment, ours = await pending_refund()
        verdict = _verdict(payment, "succeeded", refund_id=ours["id"])
        await bus.publish(_message(verdict))
        for _ in range(250):
            if len(seen) >= 2:
                break
            await asyncio.sleep(0.02)
        assert [e.event_type for e in seen] == ["refund.created", "refund.succeeded"]
        assert seen[1].causation_id == verdict.event_id
        assert seen[1].data.payment.status == "REFUNDED"


@pytest.mark.rabbitmq
class TestRabbitMQ:
    async def test_the_worker_consumes_refund_verdicts_from_rabbitmq(
        self, client, auth, pending_refund, clean_db, settings, providers, aiohttp_client
    ) -> None:
        payment, ours = await pending_refund()
        url = require_rabbitmq()
        bus = RabbitBus(url, retry_delay=0.05)
        await bus.start()
        worker = await aiohttp_client(
            create_app(
                settings.model_copy(update={"bus_url": url}),
                engine=clean_db,
                bus=bus,
                providers=providers,
                roles=["worker"],
            )
        )
        publisher = RabbitBus(url)
        await publisher.start()
        try:
            event = _verdict(payment, "succeeded", refund_id=ours["id"])
            await publisher.publish(_message(event))
            await publisher.publish(_message(event))  # a duplicate: applied once
            deadline = asyncio.get_running_loop().time() + 10
            while (got := await _get(client, auth, f"/v1/refunds/{ours['id']}"))["status"] == "PENDING":
                assert asyncio.get_running_loop().time() < deadline, "verdict not applied"
                await asyncio.sleep(0.05)
            assert got["status"] == "SUCCEEDED"
            after = await _get(client, auth, f"/v1/payments/{payment['id']}")
            assert (after["status"], after["amount_refunded"]) == ("REFUNDED", 5000)
            assert [e["type"] for e in await _log(client, auth)] == ["refund.created", "refund.succeeded"]
        finally:
            await publisher.close()
            await worker.close()
            await bus.close()
            await delete_queues(url, PROVIDER_EVENTS_QUEUE, LOGGED_EVENTS_QUEUE)
