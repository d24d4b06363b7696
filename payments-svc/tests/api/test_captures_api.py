"""Manual capture (two-stage payments): ``capture_method`` at creation, AUTHORIZED on the provider's
authorization, ``POST /v1/payments/{id}/capture``, release by cancel and by the sweeper, and refunds
bounded by what was captured."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from billing_contracts.envelope import utcnow
from billing_contracts.events import (
    ProviderPaymentAuthorizedV1,
    ProviderPaymentFailedV1,
    ProviderPaymentOutcome,
    ProviderPaymentSucceededV1,
)
from billing_runtime.bus import Message
from billing_runtime.metrics import Metrics
from payments_svc.db.models import Payment
from payments_svc.events.consumers import provider_outcome_handler
from payments_svc.keys import lifecycle_deps_key
from payments_svc.services.lifecycle import expire_due
from sqlalchemy import update

EXPIRES = utcnow() + timedelta(days=7)


@pytest.fixture
def deliver(app):  # type: ignore[no-untyped-def]
    """Hand a provider event about ``payment`` to the worker's consumer, as the bus would."""
    handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))

    async def send(cls: Any, payment: dict[str, Any], amount: int | None = None, **extra: Any) -> None:
        outcome = ProviderPaymentOutcome(
            payment_id=payment["id"],
            provider="sandbox",
            provider_transaction_id=f"ptx_{payment['id']}_sandbox",
            amount=payment["amount"] if amount is None else amount,
            currency=payment["currency"],
            livemode=payment["livemode"],
            **extra,
        )
        event = cls(tenant_id="ten_a", livemode=payment["livemode"], data=outcome)
        await handle(Message(f"providers.{event.event_type}.v1", event.model_dump_json().encode(), event.event_id))

    return send


@pytest.fixture
def authorized(client, auth, new_payment, deliver):  # type: ignore[no-untyped-def]
    """An AUTHORIZED manual sandbox payment of ten_a (5000 USD)."""

    async def make(**overrides: Any) -> dict[str, Any]:
        created = await new_payment(capture_method="manual", **overrides)
        response = await client.post(
            f"/v1/checkout/{created['checkout_token']}/pay", json={"provider": "sandbox"}, headers=auth(None, None)
        )
        assert response.status == 200, await response.text()
        await deliver(ProviderPaymentAuthorizedV1, created, authorization_expires_at=EXPIRES)
        payment = await (await client.get(f"/v1/payments/{created['id']}", headers=auth())).json()
        assert payment["status"] == "AUTHORIZED", payment
        return payment  # type: ignore[no-any-return]

    return make


@pytest.fixture
def capture(client, auth):  # type: ignore[no-untyped-def]
    async def post(payment: dict[str, Any], body: dict[str, Any] | None = None, *, key: str = "cap-1"):  # type: ignore[no-untyped-def]
        headers = auth(**{"Idempotency-Key": key})
        return await client.post(f"/v1/payments/{payment['id']}/capture", json=body or {}, headers=headers)

    return post


async def _get(client, auth, payment: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return await (await client.get(f"/v1/payments/{payment['id']}", headers=auth())).json()  # type: ignore[no-any-return]


async def _events(client, auth, kind: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return (await (await client.get(f"/v1/events?type={kind}", headers=auth())).json())["data"]  # type: ignore[no-any-return]


class TestCreateWithCaptureMethod:
    async def test_automatic_by_default_with_the_capture_fields(self, new_payment) -> None:
        payment = await new_payment()
        assert payment["capture_method"] == "automatic"
        assert (payment["amount_capturable"], payment["amount_captured"]) == (0, 0)
        assert payment["authorization_expires_at"] is None

    async def test_manual_is_kept(self, new_payment) -> None:
        assert (await new_payment(capture_method="manual"))["capture_method"] == "manual"

    async def test_an_unknown_capture_method_is_a_validation_error(self, client, auth, make_body, count) -> None:
        headers = auth(**{"Idempotency-Key": "k"})
        response = await client.post("/v1/payments", json=make_body(capture_method="later"), headers=headers)
        assert response.status == 422
        assert (await response.json())["code"] == "validation_error"
        assert await count("payments") == 0

    async def test_manual_with_only_unsupported_providers_is_refused(self, client, auth, make_body, count) -> None:
        body = make_body(capture_method="manual", providers=["payme", "click"])
        response = await client.post("/v1/payments", json=body, headers=auth(**{"Idempotency-Key": "k"}))
        assert response.status == 422
        problem = await response.json()
        assert problem["code"] == "capture_method_unsupported"
        assert response.content_type == "application/problem+json"
        assert await count("payments") == 0

    async def test_manual_when_the_tenant_has_no_supporting_provider_is_refused(
        self, client, auth, make_body, providers, count
    ) -> None:
        providers.names = ["payme", "click"]
        body = make_body(capture_method="manual", currency="UZS", amount=100000)
        response = await client.post("/v1/payments", json=body, headers=auth(**{"Idempotency-Key": "k"}))
        assert response.status == 422
        assert (await response.json())["code"] == "capture_method_unsupported"
        assert await count("payments") == 0

    async def test_only_supporting_providers_are_offered_and_payable(
        self, client, auth, new_payment, providers
    ) -> None:
        providers.names = ["sandbox", "payme"]
        payment = await new_payment(capture_method="manual")
        view = await (await client.get(f"/v1/checkout/{payment['checkout_token']}", headers=auth(None, None))).json()
        assert [p["name"] for p in view["providers"]] == ["sandbox"]
        response = await client.post(
            f"/v1/checkout/{payment['checkout_token']}/pay", json={"provider": "payme"}, headers=auth(None, None)
        )
        assert response.status == 422
        assert (await response.json())["code"] == "provider_not_allowed"
        assert providers.started == []


class TestAuthorization:
    async def test_authorization_makes_it_authorized_with_an_event(self, client, auth, authorized) -> None:
        payment = await authorized()
        assert payment["amount_capturable"] == 5000
        assert payment["amount_captured"] == 0
        assert payment["authorization_expires_at"] is not None
        events = await _events(client, auth, "payment.authorized")
        assert [e["data"]["payment"]["id"] for e in events] == [payment["id"]]
        assert events[0]["data"]["payment"]["sequence"] == payment["sequence"] == 3

    async def test_the_checkout_starts_the_payment_for_manual_capture(self, authorized, providers) -> None:
        await authorized()
        assert providers.started[0][1].capture_method == "manual"

    async def test_an_authorization_for_an_automatic_payment_is_an_anomaly(
        self, client, auth, new_payment, deliver, count
    ) -> None:
        created = await new_payment()
        await client.post(
            f"/v1/checkout/{created['checkout_token']}/pay", json={"provider": "sandbox"}, headers=auth(None, None)
        )
        await deliver(ProviderPaymentAuthorizedV1, created)
        assert (await _get(client, auth, created))["status"] == "PROVIDER_PENDING"
        assert await count("anomalies") == 1

    async def test_a_lapsed_hold_reported_by_the_provider_expires_it(self, client, auth, authorized, deliver) -> None:
        payment = await authorized()
        await deliver(ProviderPaymentFailedV1, payment, failure_code="authorization_expired")
        got = await _get(client, auth, payment)
        assert (got["status"], got["amount_capturable"]) == ("EXPIRED", 0)


class TestCapture:
    async def test_full_capture_succeeds_with_the_amount_captured(
        self, client, auth, authorized, capture, providers
    ) -> None:
        payment = await authorized()
        response = await capture(payment)
        assert response.status == 200, await response.text()
        body = await response.json()
        assert (body["status"], body["amount_captured"], body["amount_capturable"]) == ("SUCCEEDED", 5000, 0)
        assert [(c.provider, c.amount) for c in providers.captures] == [("sandbox", 5000)]
        events = await _events(client, auth, "payment.succeeded")
        assert events[0]["data"]["payment"]["amount_captured"] == 5000

    async def test_no_body_captures_everything(self, client, auth, authorized) -> None:
        payment = await authorized()
        headers = auth(**{"Idempotency-Key": "cap-nobody"})
        response = await client.post(f"/v1/payments/{payment['id']}/capture", headers=headers)
        assert response.status == 200, await response.text()
        assert (await response.json())["amount_captured"] == 5000

    async def test_partial_capture(self, authorized, capture) -> None:
        payment = await authorized()
        body = await (await capture(payment, {"amount": 3000})).json()
        assert (body["status"], body["amount"], body["amount_captured"]) == ("SUCCEEDED", 5000, 3000)

    @pytest.mark.parametrize("amount", [5001, 10**9])
    async def test_more_than_the_hold_is_refused_and_changes_nothing(
        self, client, auth, authorized, capture, providers, amount: int
    ) -> None:
        payment = await authorized()
        response = await capture(payment, {"amount": amount})
        assert response.status == 422
        problem = await response.json()
        assert (problem["code"], problem["amount_capturable"]) == ("amount_exceeds_capturable", 5000)
        assert providers.captures == []
        assert (await _get(client, auth, payment))["status"] == "AUTHORIZED"

    @pytest.mark.parametrize("body", [{"amount": 0}, {"amount": "100"}, {"amount": 1.5}, {"other": 1}])
    async def test_bad_bodies_are_validation_errors(self, authorized, capture, body: dict[str, Any]) -> None:
        response = await capture(await authorized(), body)
        assert response.status == 422
        assert (await response.json())["code"] == "validation_error"

    async def test_a_payment_not_authorized_is_409(self, new_payment, paid_payment, capture, providers) -> None:
        for payment in (await new_payment(capture_method="manual"), await paid_payment()):
            response = await capture(payment, key=payment["id"])
            assert response.status == 409
            assert (await response.json())["code"] == "invalid_state"
        assert providers.captures == []

    async def test_the_idempotency_key_is_required(self, client, auth, authorized) -> None:
        payment = await authorized()
        response = await client.post(f"/v1/payments/{payment['id']}/capture", json={}, headers=auth())
        assert response.status == 400

    async def test_a_retry_replays_the_capture(self, authorized, capture, providers) -> None:
        payment = await authorized()
        first = await capture(payment, {"amount": 2000})
        again = await capture(payment, {"amount": 2000})
        assert again.status == 200
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert await again.json() == await first.json()
        assert len(providers.captures) == 1
        reused = await capture(payment, {"amount": 1000})
        assert (reused.status, (await reused.json())["code"]) == (422, "idempotency_key_reused")

    async def test_an_unreachable_provider_changes_nothing_and_a_retry_captures(
        self, client, auth, authorized, capture, providers
    ) -> None:
        payment = await authorized()
        providers.unavailable = True
        response = await capture(payment)
        assert response.status == 503
        assert (await response.json())["code"] == "provider_unavailable"
        assert await _get(client, auth, payment) == payment
        providers.unavailable = False
        retried = await capture(payment)
        assert retried.status == 200
        assert (await retried.json())["status"] == "SUCCEEDED"

    async def test_the_providers_own_word_on_the_capture_is_absorbed(
        self, client, auth, authorized, capture, deliver, count
    ) -> None:
        payment = await authorized()
        captured = await (await capture(payment, {"amount": 3000})).json()
        await deliver(ProviderPaymentSucceededV1, payment, amount=3000)
        assert await _get(client, auth, payment) == captured
        assert await count("anomalies") == 0
        assert len(await _events(client, auth, "payment.succeeded")) == 1

    async def test_the_providers_word_first_heals_a_lost_capture_answer(
        self, client, auth, authorized, capture, deliver, count
    ) -> None:
        payment = await authorized()
        # The provider captured (our answer lost in a crash): its event moves the payment ...
        await deliver(ProviderPaymentSucceededV1, payment, amount=3000)
        healed = await _get(client, auth, payment)
        assert (healed["status"], healed["amount_captured"]) == ("SUCCEEDED", 3000)
        # ... and a capture asked again is refused, changing nothing.
        response = await capture(payment, {"amount": 3000})
        assert response.status == 409
        assert await count("anomalies") == 0

    async def test_a_capture_larger_than_the_hold_from_the_provider_is_an_anomaly(
        self, client, auth, authorized, deliver, count
    ) -> None:
        payment = await authorized()
        await deliver(ProviderPaymentSucceededV1, payment, amount=6000)
        assert (await _get(client, auth, payment))["status"] == "AUTHORIZED"
        assert await count("anomalies") == 1


class TestRefundsOfACapturedPayment:
    async def test_refunds_are_bounded_by_the_amount_captured(self, authorized, capture, refund) -> None:
        payment = await authorized()
        await capture(payment, {"amount": 3000})
        response = await refund(payment, {"amount": 4000})
        assert response.status == 422
        problem = await response.json()
        assert (problem["code"], problem["amount_refundable"]) == ("amount_exceeds_refundable", 3000)
        everything = await refund(payment)
        assert everything.status == 201
        assert (await everything.json())["amount"] == 3000

    async def test_an_authorized_payment_cannot_be_refunded(self, authorized, refund) -> None:
        response = await refund(await authorized())
        assert (response.status, (await response.json())["code"]) == (409, "invalid_state")


class TestRelease:
    async def test_cancel_releases_the_hold_at_the_provider(self, client, auth, authorized, providers) -> None:
        payment = await authorized()
        response = await client.post(f"/v1/payments/{payment['id']}/cancel", headers=auth())
        assert response.status == 200
        body = await response.json()
        assert (body["status"], body["amount_capturable"]) == ("CANCELLED", 0)
        assert providers.cancelled == [payment["id"]]
        assert len(await _events(client, auth, "payment.cancelled")) == 1

    async def test_a_hold_the_provider_will_not_release_is_not_cancelled(
        self, client, auth, authorized, providers
    ) -> None:
        payment = await authorized()
        providers.cancellable = False
        response = await client.post(f"/v1/payments/{payment['id']}/cancel", headers=auth())
        assert response.status == 409
        assert (await _get(client, auth, payment))["status"] == "AUTHORIZED"


async def _lapse(engine, payment_id: str) -> None:  # type: ignore[no-untyped-def]
    past = utcnow() - timedelta(seconds=1)
    async with engine.begin() as conn:
        await conn.execute(
            update(Payment.__table__)
            .where(Payment.id == payment_id)
            .values(authorization_expires_at=past, sweep_at=past)
        )


class TestAuthorizationExpiry:
    async def test_the_sweeper_releases_a_lapsed_hold_then_expires_it(
        self, app, client, auth, authorized, providers, clean_db
    ) -> None:
        payment = await authorized()
        other = await authorized(order_id="still-held")
        # Not due yet: the hold lasts until authorization_expires_at, whatever expires_at says.
        assert (await expire_due(app[lifecycle_deps_key])).expired == 0
        await _lapse(clean_db, payment["id"])
        assert (await expire_due(app[lifecycle_deps_key])).expired == 1
        got = await _get(client, auth, payment)
        assert (got["status"], got["amount_capturable"]) == ("EXPIRED", 0)
        assert providers.cancelled == [payment["id"]]
        assert (await _get(client, auth, other))["status"] == "AUTHORIZED"
        assert [e["data"]["payment"]["id"] for e in await _events(client, auth, "payment.expired")] == [payment["id"]]

    async def test_a_hold_the_provider_keeps_stays_authorized(
        self, app, client, auth, authorized, providers, clean_db
    ) -> None:
        payment = await authorized()
        await _lapse(clean_db, payment["id"])
        providers.cancellable = False
        assert (await expire_due(app[lifecycle_deps_key])).expired == 0
        assert (await _get(client, auth, payment))["status"] == "AUTHORIZED"
