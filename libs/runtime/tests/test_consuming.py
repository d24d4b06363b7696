"""What a consumer notes about an event before handling it: the payment it is about."""

from __future__ import annotations

from datetime import UTC, datetime

from billing_contracts.events import (
    DisabledEndpoint,
    EndpointDisabledData,
    EndpointDisabledV1,
    PaymentCreatedV1,
    PaymentData,
    PaymentSnapshot,
    ProviderPaymentOutcome,
    ProviderPaymentSucceededV1,
)
from billing_runtime.consuming import payment_id_of

NOW = datetime(2026, 12, 6, tzinfo=UTC)


def _snapshot(payment_id: str) -> PaymentSnapshot:
    return PaymentSnapshot(
        id=payment_id,
        status="CREATED",
        amount=5000,
        currency="USD",
        order_id="o-1",
        created_at=NOW,
        updated_at=NOW,
        expires_at=NOW,
    )


class TestPaymentIdOf:
    def test_a_payment_event_names_its_payment_snapshot(self) -> None:
        event = PaymentCreatedV1(tenant_id="ten_1", data=PaymentData(payment=_snapshot("pay_a")))
        assert payment_id_of(event) == "pay_a"

    def test_a_provider_event_names_the_payment_id(self) -> None:
        outcome = ProviderPaymentOutcome(
            payment_id="pay_b", provider="payme", provider_transaction_id="tx-1", amount=100, currency="UZS"
        )
        assert payment_id_of(ProviderPaymentSucceededV1(tenant_id="ten_1", data=outcome)) == "pay_b"

    def test_an_event_about_no_payment_names_none(self) -> None:
        endpoint = DisabledEndpoint(
            id="we_1", url="https://example.invalid/hook", disabled_reason="gone", disabled_at=NOW
        )
        event = EndpointDisabledV1(tenant_id="ten_1", data=EndpointDisabledData(endpoint=endpoint))
        assert payment_id_of(event) is None
