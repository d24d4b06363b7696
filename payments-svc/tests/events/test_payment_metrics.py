"""The integration guide's payment metrics: ``billing_payments_success_total``,
``billing_payments_failure_total{reason}`` and the created → final histogram, counted once per payment
(after the commit that moved it, never for a redelivery or a refused outcome)."""

from billing_contracts.envelope import utcnow
from billing_contracts.events import ProviderPaymentFailedV1, ProviderPaymentOutcome, ProviderPaymentSucceededV1
from billing_runtime.bus import Message
from billing_runtime.metrics import Metrics
from payments_svc.db.models import Payment
from payments_svc.events.consumers import provider_outcome_handler
from payments_svc.keys import lifecycle_deps_key
from payments_svc.metrics import MAX_FAILURE_REASONS, OTHER_REASON, PaymentMetrics
from payments_svc.services.lifecycle import expire_due
from sqlalchemy import update


async def _pending_payment(client, auth, new_payment):
    created = await new_payment()
    await client.post(
        f"/v1/checkout/{created['checkout_token']}/pay", json={"provider": "sandbox"}, headers=auth(None, None)
    )
    return created


def _message(payment, cls=ProviderPaymentSucceededV1, **overrides) -> Message:
    data = {
        "payment_id": payment["id"],
        "provider": "sandbox",
        "provider_transaction_id": "ptx_1",
        "amount": payment["amount"],
        "currency": payment["currency"],
        **overrides,
    }
    event = cls(tenant_id="ten_a", data=ProviderPaymentOutcome(**data))
    return Message(f"providers.{event.event_type}.v1", event.model_dump_json().encode(), event.event_id)


def _sample(app, name: str, labels: dict[str, str] | None = None) -> float:
    return app[lifecycle_deps_key].metrics.registry.get_sample_value(name, labels or {}) or 0.0


class TestPaymentMetrics:
    async def test_a_success_is_counted_once_with_its_processing_time(self, app, client, auth, new_payment) -> None:
        before = _sample(app, "billing_payments_success_total")
        timed = _sample(app, "billing_payment_processing_duration_seconds_count", {"outcome": "succeeded"})
        payment = await _pending_payment(client, auth, new_payment)
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        message = _message(payment)
        for _ in range(3):  # redeliveries change nothing
            await handle(message)
        assert _sample(app, "billing_payments_success_total") == before + 1
        assert _sample(app, "billing_payment_processing_duration_seconds_count", {"outcome": "succeeded"}) == timed + 1
        # A later failure for the same (now final) payment is an anomaly, not a failure.
        await handle(_message(payment, ProviderPaymentFailedV1, failure_code="card_declined"))
        assert _sample(app, "billing_payments_failure_total", {"reason": "card_declined"}) == 0

    async def test_a_failure_is_counted_by_its_code(self, app, client, auth, new_payment, clean_db) -> None:
        before = _sample(app, "billing_payments_failure_total", {"reason": "insufficient_funds"})
        attempts = _sample(app, "billing_payment_attempts_failed_total", {"reason": "insufficient_funds"})
        payment = await _pending_payment(client, auth, new_payment)
        handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))
        await handle(_message(payment, ProviderPaymentFailedV1, failure_code="insufficient_funds"))
        # The failed attempt leaves the payment payable: an attempt failure, not yet a failed payment.
        assert _sample(app, "billing_payment_attempts_failed_total", {"reason": "insufficient_funds"}) == attempts + 1
        assert _sample(app, "billing_payments_failure_total", {"reason": "insufficient_funds"}) == before
        # It fails when its checkout closes unpaid.
        async with clean_db.begin() as conn:
            await conn.execute(
                update(Payment.__table__)
                .where(Payment.id == payment["id"])
                .values(expires_at=utcnow(), sweep_at=utcnow())
            )
        assert (await expire_due(app[lifecycle_deps_key])).expired == 1
        assert _sample(app, "billing_payments_failure_total", {"reason": "insufficient_funds"}) == before + 1
        assert _sample(app, "billing_payment_processing_duration_seconds_count", {"outcome": "failed"}) >= 1


class TestFailureReasons:
    def test_reasons_are_bounded_in_shape_and_number(self) -> None:
        metrics = PaymentMetrics(Metrics("t"))
        assert metrics.failure_reason("card_declined") == "card_declined"
        assert metrics.failure_reason(None) == OTHER_REASON
        assert metrics.failure_reason("Free text from a provider!") == OTHER_REASON
        assert metrics.failure_reason("x" * 65) == OTHER_REASON
        for i in range(MAX_FAILURE_REASONS * 2):
            metrics.failure_reason(f"code_{i}")
        assert metrics.failure_reason("card_declined") == "card_declined"  # already known: kept
        assert metrics.failure_reason("brand_new_code") == OTHER_REASON
        assert len(metrics._reasons) == MAX_FAILURE_REASONS
