"""Evidence of money: every verified outcome the state machine refuses is recorded, once per consumed
event, as an anomaly row keeping the raw event, a metric and an internal event through the outbox."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from billing_contracts.events import (
    PaymentAnomalyRecordedV1,
    ProviderPaymentFailedV1,
    ProviderPaymentOutcome,
    ProviderPaymentSucceededV1,
    parse_event,
)
from billing_runtime.bus import Message
from billing_runtime.metrics import Metrics
from payments_svc.db.models import PaymentAnomaly
from payments_svc.events.consumers import provider_outcome_handler
from payments_svc.keys import lifecycle_deps_key
from sqlalchemy import select


async def _pending(client, auth, new_payment, **body):  # type: ignore[no-untyped-def]
    created = await new_payment(**body)
    response = await client.post(
        f"/v1/checkout/{created['checkout_token']}/pay", json={"provider": "sandbox"}, headers=auth(None, None)
    )
    assert response.status == 200
    return created


def _success(payment, cls=ProviderPaymentSucceededV1, tenant="ten_a", **overrides):  # type: ignore[no-untyped-def]
    data = {
        "payment_id": payment["id"],
        "provider": "sandbox",
        "provider_transaction_id": "ptx_1",
        "amount": payment["amount"],
        "currency": payment["currency"],
    }
    data.update(overrides)
    return cls(tenant_id=tenant, data=ProviderPaymentOutcome(**data))


def _message(event, extra: dict | None = None) -> Message:  # type: ignore[type-arg]
    body = event.model_dump(mode="json") | (extra or {})
    return Message(
        routing_key=f"providers.{event.event_type}.v1", body=json.dumps(body).encode(), message_id=event.event_id
    )


async def _anomalies(engine) -> list[PaymentAnomaly]:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return list((await conn.execute(select(PaymentAnomaly.__table__))).all())  # type: ignore[arg-type]


async def _metric(client, kind: str) -> float:  # type: ignore[no-untyped-def]
    text = await (await client.get("/metrics")).text()
    match = re.search(rf'^payment_anomalies_total\{{kind="{kind}"\}} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def _status(client, auth, payment) -> str:  # type: ignore[no-untyped-def]
    return (await (await client.get(f"/v1/payments/{payment['id']}", headers=auth())).json())["status"]


class TestAnomalies:
    @pytest.mark.parametrize(
        ("kind", "overrides"),
        [
            ("amount_mismatch", {"amount": 4999}),
            ("currency_mismatch", {"currency": "EUR"}),
            ("provider_mismatch", {"provider": "other"}),
            ("unexpected_outcome", {"livemode": True}),
        ],
    )
    async def test_a_refused_success_on_a_pending_payment_is_recorded(
        self, app, client, auth, new_payment, clean_db, kind, overrides
    ) -> None:
        payment = await _pending(client, auth, new_payment)
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        event = _success(payment, **overrides)
        await handle(_message(event, {"unknown_field": "kept"}))

        assert await _status(client, auth, payment) == "PROVIDER_PENDING"
        [row] = await _anomalies(clean_db)
        assert (row.kind, row.payment_id, row.event_id, row.tenant_id) == (kind, payment["id"], event.event_id, "ten_a")
        assert (row.expected_amount, row.expected_currency, row.payment_status) == (5000, "USD", "PROVIDER_PENDING")
        # The raw event as received, fields this version does not know included.
        assert row.event["event_id"] == event.event_id and row.event["unknown_field"] == "kept"
        assert await _metric(client, kind) == 1

    async def test_a_success_for_a_final_payment_is_recorded(self, app, client, auth, new_payment, clean_db) -> None:
        payment = await new_payment()
        assert (await client.post(f"/v1/payments/{payment['id']}/cancel", headers=auth())).status == 200
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        await handle(_message(_success(payment)))
        assert await _status(client, auth, payment) == "CANCELLED"
        [row] = await _anomalies(clean_db)
        assert (row.kind, row.payment_status) == ("success_for_final_payment", "CANCELLED")

    async def test_a_second_success_for_a_succeeded_payment_is_recorded(
        self, app, client, auth, new_payment, clean_db
    ) -> None:
        payment = await _pending(client, auth, new_payment)
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        await handle(_message(_success(payment)))
        await handle(_message(_success(payment)))  # another event: a second capture
        assert await _status(client, auth, payment) == "SUCCEEDED"
        [row] = await _anomalies(clean_db)
        assert (row.kind, row.payment_status) == ("success_for_final_payment", "SUCCEEDED")

    async def test_a_success_for_a_payment_never_started_is_recorded(
        self, app, client, auth, new_payment, clean_db
    ) -> None:
        payment = await new_payment()
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        await handle(_message(_success(payment)))
        assert await _status(client, auth, payment) == "CREATED"
        [row] = await _anomalies(clean_db)
        assert (row.kind, row.payment_status) == ("success_for_unstarted_payment", "CREATED")

    async def test_a_success_for_an_unknown_payment_is_recorded(self, app, client, new_payment, clean_db) -> None:
        payment = await new_payment()
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        await handle(_message(_success(payment, tenant="ten_b")))
        [row] = await _anomalies(clean_db)
        assert (row.kind, row.tenant_id, row.payment_status) == ("unexpected_outcome", "ten_b", None)

    async def test_a_decline_for_a_final_payment_is_no_anomaly(self, app, client, auth, new_payment, clean_db) -> None:
        payment = await _pending(client, auth, new_payment)
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        await handle(_message(_success(payment)))
        await handle(_message(_success(payment, ProviderPaymentFailedV1)))
        assert await _status(client, auth, payment) == "SUCCEEDED"
        assert await _anomalies(clean_db) == []

    async def test_redelivery_records_nothing_more(self, app, client, auth, new_payment, clean_db, count) -> None:
        payment = await _pending(client, auth, new_payment)
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        message = _message(_success(payment, amount=1))
        await handle(message)
        await asyncio.gather(*(handle(message) for _ in range(4)))
        await handle(message)
        assert len(await _anomalies(clean_db)) == 1
        assert await _metric(client, "amount_mismatch") == 1

    async def test_the_anomaly_event_goes_through_the_outbox_and_not_into_the_tenant_log(
        self, app, client, auth, new_payment, bus
    ) -> None:
        received: list[PaymentAnomalyRecordedV1] = []

        async def collect(message) -> None:  # type: ignore[no-untyped-def]
            event = parse_event(message.body)
            if isinstance(event, PaymentAnomalyRecordedV1):
                received.append(event)

        await bus.subscribe("test.anomalies", ["payments.payment.anomaly.recorded.v1"], collect)
        payment = await _pending(client, auth, new_payment)
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        event = _success(payment, currency="EUR")
        await handle(_message(event))
        for _ in range(500):  # the relay's pass: up to 10 s on a loaded machine
            if received:
                break
            await asyncio.sleep(0.02)
        [anomaly] = received
        assert anomaly.tenant_id == "ten_a" and anomaly.causation_id == event.event_id
        assert (anomaly.data.kind, anomaly.data.evidence_id, anomaly.data.amount) == (
            "currency_mismatch",
            event.event_id,
            5000,
        )
        log = await (await client.get("/v1/events", headers=auth())).json()
        assert [e["type"] for e in log["data"]] == ["payment.created", "payment.pending"]
