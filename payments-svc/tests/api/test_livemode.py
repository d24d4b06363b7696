"""Test mode and live mode (API.md): a payment keeps its tenant's mode for life; a live payment is
never offered nor paid through a test provider; every object, event and log row says which it is."""

from __future__ import annotations

import asyncio
import json

from billing_contracts.events import ProviderPaymentOutcome, ProviderPaymentSucceededV1
from billing_runtime.bus import Message
from billing_runtime.metrics import Metrics
from payments_svc.events.consumers import provider_outcome_handler
from payments_svc.keys import lifecycle_deps_key


async def _view(client, auth, payment):  # type: ignore[no-untyped-def]
    response = await client.get(f"/v1/checkout/{payment['checkout_token']}", headers=auth(None, None))
    assert response.status == 200
    return await response.json()


class TestLivemode:
    async def test_a_live_tenants_payment_is_live_everywhere(self, client, auth, new_payment, bus) -> None:
        published: list[dict] = []  # type: ignore[type-arg]

        async def collect(message) -> None:  # type: ignore[no-untyped-def]
            published.append(json.loads(message.body))

        await bus.subscribe("test.collector", ["payments.#"], collect)
        payment = await new_payment(livemode=True)
        assert payment["livemode"] is True
        got = await (await client.get(f"/v1/payments/{payment['id']}", headers=auth())).json()
        assert got["livemode"] is True
        [event] = (await (await client.get("/v1/events", headers=auth())).json())["data"]
        assert event["livemode"] is True and event["data"]["payment"]["livemode"] is True
        for _ in range(500):  # the relay's pass: up to 10 s on a loaded machine
            if published:
                break
            await asyncio.sleep(0.02)
        # The envelope (what the dispatcher signs webhooks from) and the snapshot both carry it.
        assert [(b["livemode"], b["data"]["payment"]["livemode"]) for b in published] == [(True, True)]

    async def test_a_test_tenants_payment_is_test(self, client, auth, new_payment) -> None:
        payment = await new_payment()
        assert payment["livemode"] is False
        view = await _view(client, auth, payment)
        assert view["livemode"] is False
        assert "sandbox" in [p["name"] for p in view["providers"]]

    async def test_a_live_payment_is_never_offered_the_sandbox(self, client, auth, new_payment, providers) -> None:
        payment = await new_payment(livemode=True, providers=["sandbox", "other"])
        view = await _view(client, auth, payment)
        assert view["livemode"] is True
        assert [p["name"] for p in view["providers"]] == ["other"]
        assert providers.modes == [True]  # asked providers-svc in live mode

    async def test_paying_a_live_payment_with_the_sandbox_is_refused_and_changes_nothing(
        self, client, auth, new_payment, providers
    ) -> None:
        payment = await new_payment(livemode=True)
        response = await client.post(
            f"/v1/checkout/{payment['checkout_token']}/pay", json={"provider": "sandbox"}, headers=auth(None, None)
        )
        assert response.status == 422
        assert response.content_type == "application/problem+json"
        assert (await response.json())["code"] == "test_provider_in_livemode"
        assert providers.started == []
        got = await (await client.get(f"/v1/payments/{payment['id']}", headers=auth())).json()
        assert (got["status"], got["provider"], got["sequence"]) == ("CREATED", None, 1)

    async def test_a_live_payment_is_started_and_cancelled_in_live_mode(
        self, client, auth, new_payment, providers
    ) -> None:
        payment = await new_payment(livemode=True)
        response = await client.post(
            f"/v1/checkout/{payment['checkout_token']}/pay", json={"provider": "other"}, headers=auth(None, None)
        )
        assert response.status == 200
        assert (await client.post(f"/v1/payments/{payment['id']}/cancel", headers=auth())).status == 200
        # start, cancel: every call to providers-svc carried the payment's mode.
        assert providers.modes == [True, True]

    async def test_a_test_mode_success_never_moves_a_live_payment(self, app, client, auth, new_payment) -> None:
        payment = await new_payment(livemode=True)
        await client.post(
            f"/v1/checkout/{payment['checkout_token']}/pay", json={"provider": "other"}, headers=auth(None, None)
        )
        outcome = ProviderPaymentOutcome(
            payment_id=payment["id"],
            provider="other",
            provider_transaction_id="ptx_1",
            amount=payment["amount"],
            currency=payment["currency"],
            livemode=False,
        )
        event = ProviderPaymentSucceededV1(tenant_id="ten_a", data=outcome)
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        await handle(
            Message("providers.provider.payment.succeeded.v1", event.model_dump_json().encode(), event.event_id)
        )
        got = await (await client.get(f"/v1/payments/{payment['id']}", headers=auth())).json()
        assert got["status"] == "PROVIDER_PENDING"


class TestSequence:
    async def test_every_change_grows_the_sequence_in_the_object_and_its_events(
        self, app, client, auth, new_payment, providers
    ) -> None:
        payment = await new_payment()
        assert payment["sequence"] == 1
        await client.post(
            f"/v1/checkout/{payment['checkout_token']}/pay", json={"provider": "sandbox"}, headers=auth(None, None)
        )
        outcome = ProviderPaymentOutcome(
            payment_id=payment["id"],
            provider="sandbox",
            provider_transaction_id="ptx_1",
            amount=payment["amount"],
            currency=payment["currency"],
        )
        event = ProviderPaymentSucceededV1(tenant_id="ten_a", data=outcome)
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        await handle(
            Message("providers.provider.payment.succeeded.v1", event.model_dump_json().encode(), event.event_id)
        )
        got = await (await client.get(f"/v1/payments/{payment['id']}", headers=auth())).json()
        assert (got["status"], got["sequence"]) == ("SUCCEEDED", 3)
        log = (await (await client.get("/v1/events", headers=auth())).json())["data"]
        assert [(e["type"], e["data"]["payment"]["sequence"]) for e in log] == [
            ("payment.created", 1),
            ("payment.pending", 2),
            ("payment.succeeded", 3),
        ]

    async def test_a_cancel_grows_it_too(self, client, auth, new_payment) -> None:
        payment = await new_payment()
        cancelled = await (await client.post(f"/v1/payments/{payment['id']}/cancel", headers=auth())).json()
        assert cancelled["sequence"] == 2
