"""Payment attempts (PAY-6, ATT-1..3): a failed attempt makes the payment payable again, the payer tries
another provider, switches away from a pending one only through a void, and the checkout closes as FAILED
after a failed attempt."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from billing_contracts.envelope import utcnow
from billing_contracts.events import ProviderPaymentFailedV1, ProviderPaymentOutcome, ProviderPaymentSucceededV1
from billing_runtime.bus import Message
from billing_runtime.metrics import Metrics
from payments_svc.db.models import Payment, PaymentAnomaly
from payments_svc.events.consumers import provider_outcome_handler
from payments_svc.keys import lifecycle_deps_key
from payments_svc.services.lifecycle import expire_due
from sqlalchemy import select, update


async def _pay(client, auth, payment, provider="sandbox"):  # type: ignore[no-untyped-def]
    return await client.post(
        f"/v1/checkout/{payment['checkout_token']}/pay", json={"provider": provider}, headers=auth(None, None)
    )


def _verdict(payment, provider="sandbox", cls=ProviderPaymentFailedV1, **extra):  # type: ignore[no-untyped-def]
    data = {
        "payment_id": payment["id"],
        "provider": provider,
        # The fake providers port names each payment's transaction at a provider so (conftest).
        "provider_transaction_id": f"ptx_{payment['id']}_{provider}",
        "amount": payment["amount"],
        "currency": payment["currency"],
        **extra,
    }
    event = cls(tenant_id="ten_a", data=ProviderPaymentOutcome(**data))
    return Message(f"providers.{event.event_type}.v1", event.model_dump_json().encode(), event.event_id)


async def _declined(app, payment, provider="sandbox"):  # type: ignore[no-untyped-def]
    handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
    await handle(_verdict(payment, provider, failure_code="card_declined", failure_message="Your card was declined."))


async def _get(client, auth, path):  # type: ignore[no-untyped-def]
    response = await client.get(path, headers=auth())
    assert response.status == 200, await response.text()
    return await response.json()


async def _overdue(engine, payment_id: str) -> None:
    past = utcnow() - timedelta(seconds=1)
    async with engine.begin() as conn:
        await conn.execute(
            update(Payment.__table__).where(Payment.id == payment_id).values(expires_at=past, sweep_at=past)
        )


class TestAttemptsList:
    async def test_each_start_is_an_attempt_oldest_first(self, client, auth, new_payment) -> None:
        payment = await new_payment()
        assert (await _get(client, auth, f"/v1/payments/{payment['id']}/attempts"))["data"] == []
        assert payment["attempt_count"] == 0
        assert (await _pay(client, auth, payment)).status == 200
        listed = await _get(client, auth, f"/v1/payments/{payment['id']}/attempts")
        assert (listed["object"], listed["has_more"]) == ("list", False)
        [attempt] = listed["data"]
        assert attempt["id"].startswith("att_") and attempt["object"] == "payment_attempt"
        assert (attempt["payment_id"], attempt["provider"], attempt["status"]) == (payment["id"], "sandbox", "pending")
        assert set(attempt) == {
            "id",
            "object",
            "payment_id",
            "provider",
            "status",
            "provider_reference",
            "failure_code",
            "failure_message",
            "created_at",
            "updated_at",
        }
        assert (await _get(client, auth, f"/v1/payments/{payment['id']}"))["attempt_count"] == 1

    async def test_another_tenants_payment_is_404(self, client, auth, new_payment) -> None:
        payment = await new_payment()
        await _pay(client, auth, payment)
        response = await client.get(f"/v1/payments/{payment['id']}/attempts", headers=auth("ten_b"))
        assert response.status == 404
        assert response.content_type == "application/problem+json"
        assert (await response.json())["code"] == "not_found"
        unknown = await client.get("/v1/payments/pay_unknown/attempts", headers=auth())
        assert unknown.status == 404


class TestFailedAttempt:
    async def test_a_failed_attempt_makes_the_payment_payable_again(self, app, client, auth, new_payment, bus) -> None:
        published: list[dict] = []

        async def collect(message) -> None:  # type: ignore[no-untyped-def]
            published.append(json.loads(message.body))

        await bus.subscribe("test.attempts", ["payments.payment.attempt_failed.v1"], collect)
        payment = await new_payment()
        await _pay(client, auth, payment)
        pending = await _get(client, auth, f"/v1/payments/{payment['id']}")
        await _declined(app, payment)

        after = await _get(client, auth, f"/v1/payments/{payment['id']}")
        assert (after["status"], after["failure_code"], after["failure_message"]) == (
            "CREATED",
            "card_declined",
            "Your card was declined.",
        )
        assert (after["provider"], after["provider_reference"]) == (None, None)
        assert after["sequence"] > pending["sequence"]
        [attempt] = (await _get(client, auth, f"/v1/payments/{payment['id']}/attempts"))["data"]
        assert (attempt["status"], attempt["failure_code"]) == ("failed", "card_declined")
        # Announced as the attempt's failure, in the tenant's log and through the outbox.
        events = await _get(client, auth, "/v1/events?type=payment.attempt_failed")
        [event] = events["data"]
        assert event["data"]["payment"]["status"] == "CREATED"
        assert event["data"]["payment"]["sequence"] == after["sequence"]
        assert event["data"]["attempt"]["id"] == attempt["id"]
        assert event["data"]["attempt"]["status"] == "failed"
        for _ in range(200):  # the outbox relay publishes it
            if published:
                break
            await asyncio.sleep(0.02)
        assert [b["event_id"] for b in published] == [event["id"]]
        # The checkout is open again, says what happened and offers the providers not yet tried.
        view = await (await client.get(f"/v1/checkout/{payment['checkout_token']}", headers=auth(None, None))).json()
        assert view["status"] == "CREATED" and view["failure_message"] == "Your card was declined."
        assert view["failed_provider"] == "sandbox"
        assert [p["name"] for p in view["providers"]] == ["other"]

    async def test_a_second_attempt_with_another_provider_pays(self, app, client, auth, new_payment) -> None:
        payment = await new_payment()
        await _pay(client, auth, payment)
        await _declined(app, payment)
        # The provider that failed keeps its one transaction of this payment: not offered again.
        again = await _pay(client, auth, payment, "sandbox")
        assert again.status == 409 and (await again.json())["code"] == "invalid_state"

        assert (await _pay(client, auth, payment, "other")).status == 200
        mid = await _get(client, auth, f"/v1/payments/{payment['id']}")
        assert (mid["status"], mid["provider"], mid["attempt_count"]) == ("PROVIDER_PENDING", "other", 2)
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        await handle(_verdict(payment, "other", ProviderPaymentSucceededV1))

        paid = await _get(client, auth, f"/v1/payments/{payment['id']}")
        assert (paid["status"], paid["provider"]) == ("SUCCEEDED", "other")
        attempts = (await _get(client, auth, f"/v1/payments/{payment['id']}/attempts"))["data"]
        assert [(a["provider"], a["status"]) for a in attempts] == [("sandbox", "failed"), ("other", "succeeded")]
        log = (await _get(client, auth, "/v1/events"))["data"]
        assert [e["type"] for e in log] == [
            "payment.created",
            "payment.pending",
            "payment.attempt_failed",
            "payment.pending",
            "payment.succeeded",
        ]
        sequences = [e["data"]["payment"]["sequence"] for e in log]
        assert sequences == sorted(set(sequences))

    async def test_expiry_after_a_failed_attempt_is_failed(self, app, client, auth, new_payment, clean_db) -> None:
        payment = await new_payment()
        await _pay(client, auth, payment)
        await _declined(app, payment)
        await _overdue(clean_db, payment["id"])
        assert (await expire_due(app[lifecycle_deps_key])).expired == 1
        closed = await _get(client, auth, f"/v1/payments/{payment['id']}")
        assert (closed["status"], closed["failure_code"]) == ("FAILED", "card_declined")
        [failed] = (await _get(client, auth, "/v1/events?type=payment.failed"))["data"]
        assert failed["data"]["payment"]["failure_message"] == "Your card was declined."
        assert (await _get(client, auth, "/v1/events?type=payment.expired"))["data"] == []

    async def test_a_failure_after_expiry_fails_the_payment_at_once(
        self, app, client, auth, new_payment, clean_db
    ) -> None:
        payment = await new_payment()
        await _pay(client, auth, payment)
        await _overdue(clean_db, payment["id"])
        await _declined(app, payment)
        closed = await _get(client, auth, f"/v1/payments/{payment['id']}")
        assert (closed["status"], closed["failure_code"]) == ("FAILED", "card_declined")
        assert (await _get(client, auth, "/v1/events?type=payment.attempt_failed"))["data"] == []


class TestSwitch:
    async def test_switch_voids_the_pending_attempt_and_starts_another(
        self, client, auth, new_payment, providers
    ) -> None:
        payment = await new_payment()
        await _pay(client, auth, payment)
        response = await _pay(client, auth, payment, "other")
        assert response.status == 200
        assert providers.voided == [f"ptx_{payment['id']}_sandbox"]
        after = await _get(client, auth, f"/v1/payments/{payment['id']}")
        assert (after["status"], after["provider"], after["attempt_count"]) == ("PROVIDER_PENDING", "other", 2)
        attempts = (await _get(client, auth, f"/v1/payments/{payment['id']}/attempts"))["data"]
        assert [(a["provider"], a["status"]) for a in attempts] == [("sandbox", "abandoned"), ("other", "pending")]

    async def test_switch_refused_when_the_void_is_refused(self, client, auth, new_payment, providers) -> None:
        payment = await new_payment()
        await _pay(client, auth, payment)
        before = await _get(client, auth, f"/v1/payments/{payment['id']}")
        providers.voidable = False
        response = await _pay(client, auth, payment, "other")
        assert response.status == 409
        assert response.content_type == "application/problem+json"
        assert (await response.json())["code"] == "invalid_state"
        # The payment keeps its course.
        assert await _get(client, auth, f"/v1/payments/{payment['id']}") == before
        attempts = (await _get(client, auth, f"/v1/payments/{payment['id']}/attempts"))["data"]
        assert [(a["provider"], a["status"]) for a in attempts] == [("sandbox", "pending")]

    async def test_a_late_success_of_the_abandoned_attempt_pays_a_payable_payment(
        self, app, client, auth, new_payment
    ) -> None:
        payment = await new_payment()
        await _pay(client, auth, payment)
        await _pay(client, auth, payment, "other")
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        # The first provider took the money despite the void: real money, and the payment was payable.
        await handle(_verdict(payment, "sandbox", ProviderPaymentSucceededV1))
        paid = await _get(client, auth, f"/v1/payments/{payment['id']}")
        assert (paid["status"], paid["provider"]) == ("SUCCEEDED", "sandbox")
        attempts = (await _get(client, auth, f"/v1/payments/{payment['id']}/attempts"))["data"]
        assert [(a["provider"], a["status"]) for a in attempts] == [("sandbox", "succeeded"), ("other", "abandoned")]

    async def test_a_late_success_after_the_payment_succeeded_is_an_anomaly(
        self, app, client, auth, new_payment, clean_db
    ) -> None:
        payment = await new_payment()
        await _pay(client, auth, payment)
        await _pay(client, auth, payment, "other")
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        await handle(_verdict(payment, "other", ProviderPaymentSucceededV1))
        await handle(_verdict(payment, "sandbox", ProviderPaymentSucceededV1))
        paid = await _get(client, auth, f"/v1/payments/{payment['id']}")
        assert (paid["status"], paid["provider"]) == ("SUCCEEDED", "other")
        async with clean_db.connect() as conn:
            anomalies = (await conn.execute(select(PaymentAnomaly.kind, PaymentAnomaly.detail))).all()
        [(kind, detail)] = anomalies
        assert kind == "success_for_final_payment"
        assert "duplicate payment" in detail and "not refunded automatically" in detail


class TestClosedCheckout:
    async def test_an_expired_payment_shows_its_outcome_only(
        self, client, auth, new_payment, clean_db, providers
    ) -> None:
        payment = await new_payment()
        await _overdue(clean_db, payment["id"])  # not swept yet: the payer sees it closed all the same
        view = await (await client.get(f"/v1/checkout/{payment['checkout_token']}", headers=auth(None, None))).json()
        assert (view["status"], view["providers"]) == ("EXPIRED", [])
        response = await _pay(client, auth, payment)
        assert response.status == 409
        problem = await response.json()
        assert (problem["code"], problem["payment_status"]) == ("invalid_state", "EXPIRED")
        assert providers.started == []

    async def test_a_paid_payment_shows_its_outcome_only(self, app, client, auth, new_payment) -> None:
        payment = await new_payment()
        await _pay(client, auth, payment)
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        await handle(_verdict(payment, "sandbox", ProviderPaymentSucceededV1))
        view = await (await client.get(f"/v1/checkout/{payment['checkout_token']}", headers=auth(None, None))).json()
        assert (view["status"], view["providers"]) == ("SUCCEEDED", [])
        response = await _pay(client, auth, payment, "other")
        assert response.status == 409
        assert (await response.json())["payment_status"] == "SUCCEEDED"
