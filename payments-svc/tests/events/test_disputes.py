"""Provider disputes (``provider.dispute.updated``) show on their payment, in the provider's order, each
state exactly once (inbox); the tenant hears ``dispute.created`` and ``dispute.closed``; states that
cannot be about the payment are anomalies, never applied."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from billing_contracts import parse_event
from billing_contracts.events import ProviderDispute, ProviderDisputeUpdatedV1, ProviderPaymentOutcome
from billing_contracts.events import ProviderPaymentSucceededV1 as Succeeded
from billing_runtime.bus import Message
from billing_runtime.bus.rabbit import RabbitBus
from billing_runtime.metrics import Metrics
from billing_runtime.testing import require_rabbitmq
from billing_runtime.testing_status import delete_queues
from payments_svc.app import create_app
from payments_svc.db.models import Dispute, PaymentAnomaly
from payments_svc.events.consumers import LOGGED_EVENTS_QUEUE, PROVIDER_EVENTS_QUEUE, provider_outcome_handler
from payments_svc.keys import lifecycle_deps_key
from payments_svc.services import disputes
from sqlalchemy import select

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _dispute(
    payment: dict[str, Any], status: str = "needs_response", at: int = 1, tenant: str = "ten_a", **overrides: Any
) -> ProviderDisputeUpdatedV1:
    data: dict[str, Any] = {
        "payment_id": payment["id"],
        "provider": "sandbox",
        "provider_transaction_id": f"ptx_{payment['id']}_sandbox",
        "provider_dispute_id": "dp_1",
        "status": status,
        "reason": "fraudulent",
        "amount": payment["amount"],
        "currency": payment["currency"],
        "funds_withdrawn": True,
        "evidence_due_by": _at(86400),
        "provider_created_at": T0,
        "provider_updated_at": _at(at),
        "livemode": False,
    }
    data.update(overrides)
    return ProviderDisputeUpdatedV1(tenant_id=tenant, data=ProviderDispute(**data))


def _message(event: Any) -> Message:
    return Message(f"providers.{event.event_type}.v1", event.model_dump_json().encode(), event.event_id)


@pytest.fixture
def handle(app):  # type: ignore[no-untyped-def]
    return provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))


@pytest.fixture
def paid(client, auth, new_payment, handle):  # type: ignore[no-untyped-def]
    """A SUCCEEDED sandbox payment of ten_a."""

    async def make(**overrides: Any) -> dict[str, Any]:
        created = await new_payment(**overrides)
        response = await client.post(
            f"/v1/checkout/{created['checkout_token']}/pay", json={"provider": "sandbox"}, headers=auth(None, None)
        )
        assert response.status == 200, await response.text()
        outcome = ProviderPaymentOutcome(
            payment_id=created["id"],
            provider="sandbox",
            provider_transaction_id=f"ptx_{created['id']}_sandbox",
            amount=created["amount"],
            currency=created["currency"],
        )
        await handle(_message(Succeeded(tenant_id="ten_a", data=outcome)))
        payment = await _payment(client, auth, created)
        assert payment["status"] == "SUCCEEDED"
        return payment

    return make


class Published:
    """What the relay publishes of the dispute and anomaly events (subscribed on the test's bus)."""

    KEYS = ["payments.dispute.*.v1", "payments.payment.anomaly.recorded.v1"]

    def __init__(self) -> None:
        self.events: list[Any] = []

    async def collect(self, message: Message) -> None:
        self.events.append(parse_event(message.body))

    async def wait(self, count: int) -> list[Any]:
        # The relay runs on its own task, woken by the commit.
        for _ in range(250):
            if len(self.events) >= count:
                break
            await asyncio.sleep(0.02)
        return self.events


@pytest.fixture
async def published(bus, app) -> Published:  # type: ignore[no-untyped-def]
    seen = Published()
    await bus.subscribe("test.disputes", Published.KEYS, seen.collect)
    return seen


async def _payment(client, auth, payment) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = await client.get(f"/v1/payments/{payment['id']}", headers=auth())
    assert response.status == 200
    return await response.json()  # type: ignore[no-any-return]


async def _events(client, auth, type_: str | None = None) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    query = "?limit=100" + (f"&type={type_}" if type_ else "")
    body = await (await client.get(f"/v1/events{query}", headers=auth())).json()
    return [e for e in body["data"] if e["type"].startswith("dispute.")]


async def _disputes(engine) -> list[Dispute]:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        rows = (await conn.execute(select(Dispute.__table__))).mappings().all()
    return [Dispute(**row) for row in rows]


class TestDisputeCreated:
    async def test_first_state_shows_on_the_payment_and_is_announced(self, client, auth, paid, handle) -> None:
        payment = await paid()
        await handle(_message(_dispute(payment)))

        after = await _payment(client, auth, payment)
        assert after["status"] == "SUCCEEDED"
        assert after["sequence"] == payment["sequence"] + 1
        assert after["amount_disputed"] == payment["amount"]
        assert after["amount_refunded"] == 0
        dispute = after["dispute"]
        assert dispute["id"].startswith("dsp_")
        assert {k: dispute[k] for k in ("object", "payment_id", "status", "reason", "amount", "currency")} == {
            "object": "dispute",
            "payment_id": payment["id"],
            "status": "needs_response",
            "reason": "fraudulent",
            "amount": payment["amount"],
            "currency": "USD",
        }
        assert (dispute["funds_withdrawn"], dispute["closed_at"]) == (True, None)
        assert datetime.fromisoformat(dispute["created_at"]) == T0
        events = await _events(client, auth)
        assert [e["type"] for e in events] == ["dispute.created"]
        assert events[0]["data"]["dispute"] == dispute
        assert events[0]["data"]["payment"]["sequence"] == after["sequence"]
        assert events[0]["data"]["payment"]["dispute"] == dispute

    async def test_a_first_state_already_closed_is_announced_created_then_closed(
        self, client, auth, paid, handle
    ) -> None:
        payment = await paid()
        await handle(_message(_dispute(payment, "lost", at=5)))

        after = await _payment(client, auth, payment)
        events = await _events(client, auth)
        assert [e["type"] for e in events] == ["dispute.created", "dispute.closed"]
        sequences = [e["data"]["payment"]["sequence"] for e in events]
        assert (
            sequences
            == [payment["sequence"] + 1, payment["sequence"] + 2]
            == [after["sequence"] - 1, after["sequence"]]
        )
        assert after["dispute"]["status"] == "lost"
        assert datetime.fromisoformat(after["dispute"]["closed_at"]) == _at(5)


class TestDisputeChanges:
    async def test_a_change_updates_the_payment_and_its_sequence_without_an_event(
        self, client, auth, paid, handle
    ) -> None:
        payment = await paid()
        await handle(_message(_dispute(payment, "needs_response", at=1)))
        await handle(_message(_dispute(payment, "under_review", at=2, funds_withdrawn=False)))

        after = await _payment(client, auth, payment)
        assert (after["dispute"]["status"], after["dispute"]["funds_withdrawn"]) == ("under_review", False)
        assert after["amount_disputed"] == 0
        assert after["sequence"] == payment["sequence"] + 2
        assert [e["type"] for e in await _events(client, auth)] == ["dispute.created"]

    async def test_a_lost_dispute_is_announced_and_keeps_its_money_out(
        self, client, auth, paid, handle, clean_db
    ) -> None:
        payment = await paid()
        await handle(_message(_dispute(payment, "needs_response", at=1)))
        await handle(_message(_dispute(payment, "lost", at=9)))

        after = await _payment(client, auth, payment)
        closed = (await _events(client, auth, "dispute.closed"))[0]
        assert closed["data"]["dispute"]["status"] == "lost"
        assert closed["data"]["payment"]["sequence"] == after["sequence"] == payment["sequence"] + 2
        assert (after["status"], after["amount_disputed"]) == ("SUCCEEDED", payment["amount"])
        [row] = await _disputes(clean_db)
        assert (row.status, row.funds_withdrawn, row.amount, row.closed_at) == ("lost", True, 5000, _at(9))
        history = await (await client.get(f"/v1/payments/{payment['id']}/history", headers=auth())).json()
        disputed = [(h["to_status"], h["actor"], h["reason"]) for h in history["data"][-2:]]
        assert disputed == [
            ("SUCCEEDED", "provider:sandbox", f"dispute {row.id}: needs_response, funds withdrawn"),
            ("SUCCEEDED", "provider:sandbox", f"dispute {row.id}: lost, funds withdrawn"),
        ]
        assert (row.provider, row.provider_dispute_id, row.payment_id) == ("sandbox", "dp_1", payment["id"])

    async def test_a_won_dispute_whose_funds_come_back_after_it_closed_gives_them_back(
        self, client, auth, paid, handle
    ) -> None:
        payment = await paid()
        await handle(_message(_dispute(payment, "needs_response", at=1)))
        await handle(_message(_dispute(payment, "won", at=5)))
        await handle(_message(_dispute(payment, "won", at=6, funds_withdrawn=False)))

        after = await _payment(client, auth, payment)
        assert (after["dispute"]["status"], after["amount_disputed"]) == ("won", 0)
        assert datetime.fromisoformat(after["dispute"]["closed_at"]) == _at(5)
        assert [e["type"] for e in await _events(client, auth)] == ["dispute.created", "dispute.closed"]

    async def test_a_later_dispute_of_the_payment_is_the_one_it_shows(self, client, auth, paid, handle) -> None:
        payment = await paid()
        await handle(_message(_dispute(payment, "won", at=5, funds_withdrawn=False, amount=1000)))
        later = {"provider_dispute_id": "dp_2", "provider_created_at": _at(10), "amount": 2000}
        await handle(_message(_dispute(payment, "needs_response", at=11, **later)))
        # The first one changing again does not take the payment's ``dispute`` back.
        await handle(_message(_dispute(payment, "won", at=12, funds_withdrawn=False, amount=1000)))

        after = await _payment(client, auth, payment)
        assert (after["dispute"]["status"], after["dispute"]["amount"]) == ("needs_response", 2000)
        assert after["amount_disputed"] == 2000
        assert after["sequence"] == payment["sequence"] + 4  # 2 for the first state (created, closed), 1 each after


class TestOrdering:
    async def test_an_older_state_after_a_newer_one_changes_nothing(self, client, auth, paid, handle) -> None:
        payment = await paid()
        await handle(_message(_dispute(payment, "under_review", at=5, funds_withdrawn=False)))
        before = await _payment(client, auth, payment)
        await handle(_message(_dispute(payment, "needs_response", at=3, funds_withdrawn=True)))

        after = await _payment(client, auth, payment)
        assert after == before
        assert (after["dispute"]["status"], after["amount_disputed"]) == ("under_review", 0)

    async def test_states_of_the_same_second_apply_only_when_further_along(self, client, auth, paid, handle) -> None:
        payment = await paid()
        # Stripe reports the withdrawal with the opening, and the reinstatement with a win, in one second.
        await handle(_message(_dispute(payment, "needs_response", at=5, funds_withdrawn=True)))
        await handle(_message(_dispute(payment, "needs_response", at=5, funds_withdrawn=False)))
        assert (await _payment(client, auth, payment))["amount_disputed"] == payment["amount"]
        await handle(_message(_dispute(payment, "won", at=5, funds_withdrawn=False)))
        await handle(_message(_dispute(payment, "won", at=5, funds_withdrawn=True)))

        after = await _payment(client, auth, payment)
        assert (after["dispute"]["status"], after["amount_disputed"]) == ("won", 0)
        assert after["sequence"] == payment["sequence"] + 2

    async def test_a_closed_dispute_never_reopens_nor_changes_its_outcome(self, client, auth, paid, handle) -> None:
        payment = await paid()
        await handle(_message(_dispute(payment, "lost", at=5)))
        before = await _payment(client, auth, payment)
        await handle(_message(_dispute(payment, "under_review", at=6)))
        await handle(_message(_dispute(payment, "won", at=7, funds_withdrawn=False)))

        after = await _payment(client, auth, payment)
        assert after == before
        assert (after["dispute"]["status"], after["amount_disputed"]) == ("lost", payment["amount"])
        assert [e["type"] for e in await _events(client, auth)] == ["dispute.created", "dispute.closed"]

    async def test_a_newer_state_applied_between_read_and_write_is_never_overwritten(
        self, client, auth, paid, handle, monkeypatch
    ) -> None:
        payment = await paid()
        await handle(_message(_dispute(payment, "needs_response", at=1)))
        real = disputes.dispute_by_provider_id
        raced: list[bool] = []

        async def read_then_race(uow, provider, provider_dispute_id):  # type: ignore[no-untyped-def]
            held = await real(uow, provider, provider_dispute_id)
            if not raced:
                raced.append(True)
                # Between this read and its write, a newer state (lost) is applied.
                await handle(_message(_dispute(payment, "lost", at=9)))
            return held

        monkeypatch.setattr(disputes, "dispute_by_provider_id", read_then_race)
        await handle(_message(_dispute(payment, "under_review", at=5, funds_withdrawn=False)))

        after = await _payment(client, auth, payment)
        assert (after["dispute"]["status"], after["amount_disputed"]) == ("lost", payment["amount"])
        assert after["sequence"] == payment["sequence"] + 2
        assert [e["type"] for e in await _events(client, auth)] == ["dispute.created", "dispute.closed"]


class TestExactlyOnce:
    async def test_a_redelivered_state_is_applied_once(self, client, auth, paid, handle, count) -> None:
        payment = await paid()
        inbox_before = await count("inbox")
        message = _message(_dispute(payment, "lost"))
        for _ in range(3):
            await handle(message)
        after = await _payment(client, auth, payment)
        assert after["sequence"] == payment["sequence"] + 2
        assert await count("inbox") == inbox_before + 1
        assert await count("disputes") == 1
        assert [e["type"] for e in await _events(client, auth)] == ["dispute.created", "dispute.closed"]

    async def test_concurrent_redeliveries_are_applied_once(self, client, auth, paid, handle, count) -> None:
        payment = await paid()
        message = _message(_dispute(payment))
        await asyncio.gather(*(handle(message) for _ in range(5)))
        assert (await _payment(client, auth, payment))["sequence"] == payment["sequence"] + 1
        assert [e["type"] for e in await _events(client, auth)] == ["dispute.created"]

    async def test_states_racing_end_at_the_newest_announced_once_each(self, client, auth, paid, handle) -> None:
        payment = await paid()
        states = [
            _dispute(payment, "needs_response", at=1),
            _dispute(payment, "under_review", at=2, funds_withdrawn=False),
            _dispute(payment, "won", at=3, funds_withdrawn=False),
        ]
        await asyncio.gather(*(handle(_message(s)) for s in reversed(states)))

        after = await _payment(client, auth, payment)
        assert (after["dispute"]["status"], after["amount_disputed"]) == ("won", 0)
        events = await _events(client, auth)
        assert sorted(e["type"] for e in events) == ["dispute.closed", "dispute.created"]
        # Whatever order they were applied in, each change the tenant saw grew the sequence.
        assert len({e["data"]["payment"]["sequence"] for e in events}) == 2
        assert max(e["data"]["payment"]["sequence"] for e in events) <= after["sequence"]


class TestAnomalies:
    @pytest.mark.parametrize(
        ("case", "kind"),
        [
            ({"payment_id": "pay_unknown"}, "unexpected_outcome"),
            ({"tenant": "ten_b"}, "unexpected_outcome"),
            ({"currency": "EUR"}, "currency_mismatch"),
            ({"amount": 5001}, "amount_mismatch"),
            ({"amount": 0}, "amount_mismatch"),
            ({"status": "reopened"}, "unexpected_outcome"),
            ({"provider": "other"}, "provider_mismatch"),
            ({"livemode": True}, "unexpected_outcome"),
        ],
        ids=[
            "unknown-payment",
            "other-tenant",
            "currency",
            "more-than-the-payment",
            "no-amount",
            "unknown-status",
            "other-provider",
            "other-mode",
        ],
    )
    async def test_a_state_that_cannot_be_about_the_payment_is_recorded_not_applied(
        self, client, auth, paid, handle, clean_db, published, case, kind
    ) -> None:
        payment = await paid()
        event = _dispute(payment, **{"status": "lost", **case})
        await handle(_message(event))
        await handle(_message(event))  # redelivered: recorded once

        assert await _payment(client, auth, payment) == payment
        assert await _events(client, auth) == []
        assert await _disputes(clean_db) == []
        async with clean_db.connect() as conn:
            anomalies = (await conn.execute(select(PaymentAnomaly.kind, PaymentAnomaly.event_id))).all()
        assert anomalies == [(kind, event.event_id)]
        [recorded] = await published.wait(1)
        assert recorded.event_type == "payment.anomaly.recorded"
        assert (recorded.causation_id, recorded.data.kind) == (event.event_id, kind)
        assert (recorded.data.outcome, recorded.data.provider_dispute_id) == ("dispute", "dp_1")

    @pytest.mark.parametrize(
        ("case", "kind"),
        [
            ({"provider_dispute_id": "d" * 129}, "unexpected_outcome"),
            ({"provider_dispute_id": ""}, "unexpected_outcome"),
            ({"provider_updated_at": datetime(2026, 12, 5, 12, 0, 1)}, "unexpected_outcome"),
            ({"evidence_due_by": datetime(2026, 12, 20)}, "unexpected_outcome"),
            ({"currency": "EURO"}, "currency_mismatch"),
            ({"payment_id": "pay_" + "x" * 60}, "unexpected_outcome"),
            ({"amount": 2**70}, "amount_mismatch"),
        ],
        ids=["long-id", "empty-id", "naive-time", "naive-due-by", "long-currency", "long-payment-id", "huge-amount"],
    )
    async def test_a_state_that_cannot_be_stored_is_an_anomaly_not_a_poison_message(
        self, client, auth, paid, handle, clean_db, case, kind
    ) -> None:
        payment = await paid()
        event = _dispute(payment, **case)
        await handle(_message(event))
        await handle(_message(event))

        assert await _payment(client, auth, payment) == payment
        async with clean_db.connect() as conn:
            rows = (await conn.execute(select(PaymentAnomaly.kind, PaymentAnomaly.event))).all()
        assert [kind_ for kind_, _ in rows] == [kind]
        assert rows[0][1]["data"]["provider_dispute_id"] == event.data.provider_dispute_id  # kept as received

    async def test_a_dispute_of_a_payment_never_paid_is_an_anomaly(
        self, client, auth, new_payment, handle, clean_db
    ) -> None:
        payment = await new_payment()
        await handle(_message(_dispute(payment)))  # never started: no provider at all
        response = await client.post(
            f"/v1/checkout/{payment['checkout_token']}/pay", json={"provider": "sandbox"}, headers=auth(None, None)
        )
        assert response.status == 200
        await handle(_message(_dispute(payment, at=2)))  # started, never captured

        after = await _payment(client, auth, payment)
        assert (after["status"], after["dispute"], after["amount_disputed"]) == ("PROVIDER_PENDING", None, 0)
        async with clean_db.connect() as conn:
            rows = (await conn.execute(select(PaymentAnomaly.kind, PaymentAnomaly.detail))).all()
        assert [kind for kind, _ in rows] == ["provider_mismatch", "unexpected_outcome"]
        assert "PROVIDER_PENDING" in rows[1][1]

    async def test_a_dispute_id_held_for_another_payment_is_an_anomaly(
        self, client, auth, paid, handle, clean_db
    ) -> None:
        first = await paid(order_id="o-1")
        second = await paid(order_id="o-2")
        await handle(_message(_dispute(first, at=1)))
        await handle(_message(_dispute(second, "lost", at=2)))

        assert (await _payment(client, auth, second))["dispute"] is None
        assert (await _payment(client, auth, first))["dispute"]["status"] == "needs_response"
        async with clean_db.connect() as conn:
            details = (await conn.execute(select(PaymentAnomaly.detail))).scalars().all()
        assert len(details) == 1
        assert f"already held for payment {first['id']}" in details[0]

    async def test_disputes_withdrawing_more_than_the_payment_are_an_anomaly(
        self, client, auth, paid, handle, clean_db
    ) -> None:
        payment = await paid()
        await handle(_message(_dispute(payment, amount=3000)))
        await handle(_message(_dispute(payment, amount=3000, provider_dispute_id="dp_2")))
        after = await _payment(client, auth, payment)
        assert after["amount_disputed"] == 3000
        async with clean_db.connect() as conn:
            kinds = (await conn.execute(select(PaymentAnomaly.kind))).scalars().all()
        assert kinds == ["amount_mismatch"]


class TestBus:
    async def test_the_in_process_bus_delivers_disputes_to_the_worker_and_their_events_on(
        self, client, auth, paid, bus, published
    ) -> None:
        payment = await paid()
        event = _dispute(payment, "warning_closed", funds_withdrawn=False)
        await bus.publish(_message(event))
        after = await _payment(client, auth, payment)
        assert after["dispute"]["status"] == "warning_closed"
        logged = await _events(client, auth)
        assert [e["type"] for e in logged] == ["dispute.created", "dispute.closed"]
        created, closed = await published.wait(2)
        # On the bus (for the webhook dispatcher) under the ids of the log, caused by the provider's event.
        assert [created.event_id, closed.event_id] == [e["id"] for e in logged]
        assert (created.causation_id, created.correlation_id) == (event.event_id, payment["id"])
        assert closed.data.dispute.status == "warning_closed"


@pytest.mark.rabbitmq
class TestRabbitMQ:
    async def test_the_worker_consumes_disputes_from_rabbitmq(
        self, client, auth, paid, clean_db, settings, providers, aiohttp_client
    ) -> None:
        payment = await paid()
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
            event = _dispute(payment, "lost")
            await publisher.publish(_message(event))
            await publisher.publish(_message(event))  # a duplicate: applied once
            deadline = asyncio.get_running_loop().time() + 10
            while (after := await _payment(client, auth, payment))["dispute"] is None:
                assert asyncio.get_running_loop().time() < deadline, "dispute not applied"
                await asyncio.sleep(0.05)
            assert after["dispute"]["status"] == "lost"
            assert [e["type"] for e in await _events(client, auth)] == ["dispute.created", "dispute.closed"]
        finally:
            await publisher.close()
            await worker.close()
            await bus.close()
            await delete_queues(url, PROVIDER_EVENTS_QUEUE, LOGGED_EVENTS_QUEUE)
