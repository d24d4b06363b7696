"""Internal events: evidence of money that the state machine could not apply (API.md is silent; these
never become tenant webhooks). Reconciliation consumes them; until it exists they stay in the
publishers' own anomaly tables and metrics, so no captured money goes unnoticed."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from billing_contracts.config import CONTRACT
from billing_contracts.envelope import EventBase

# What went wrong, one stable word each.
AnomalyKind = Literal[
    # A verified provider success whose amount or currency differs from the payment's.
    "amount_mismatch",
    "currency_mismatch",
    # A verified success for a payment already final (SUCCEEDED, FAILED, EXPIRED, CANCELLED...).
    "success_for_final_payment",
    # A verified success for a payment still CREATED (no attempt was ever started here).
    "success_for_unstarted_payment",
    # A verified outcome from a provider other than the payment's.
    "provider_mismatch",
    # Anything else the state machine refused; ``detail`` says what.
    "unexpected_outcome",
    # A refund the provider made (succeeded or under way) beyond what the payment's pending refunds
    # leave (e.g. one made in the provider's dashboard while a tenant refund is pending): recorded and
    # counted, the reservation capped at the payment's amount (optional within v1).
    "refund_over_reserved",
    # A refund the provider confirmed beyond what the payment has left to refund: the provider
    # returned more than it captured (optional within v1).
    "refund_exceeds_payment",
]


class Anomaly(BaseModel):
    """What was received, what we hold, and where the raw evidence is kept."""

    model_config = CONTRACT

    anomaly_id: str
    kind: AnomalyKind
    payment_id: str
    provider: str
    provider_transaction_id: str | None = None
    provider_reference: str | None = None
    # What the provider reported (minor units + ISO 4217).
    amount: int | None = None
    currency: str | None = None
    outcome: str | None = None  # "succeeded" | "failed" | "dispute" (a dispute's state, refused)
    # What we hold for the payment when it arrived (None when the publisher does not know it).
    expected_amount: int | None = None
    expected_currency: str | None = None
    payment_status: str | None = None
    # The id of the raw event the publisher kept (a provider event row, or the consumed bus event).
    evidence_id: str | None = None
    detail: str | None = None
    # For a refused dispute state: the provider's id of the dispute (optional within v1).
    provider_dispute_id: str | None = None
    # For a refund's verdict: our refund id (None for one the provider started) and the provider's
    # id of the refund (optional within v1).
    refund_id: str | None = None
    provider_refund_id: str | None = None


class ProviderAnomalyRecordedV1(EventBase):
    """providers-svc verified a callback it could not turn into a normal outcome."""

    source: str = "providers"
    event_type: Literal["provider.anomaly.recorded"] = "provider.anomaly.recorded"
    data: Anomaly


class PaymentAnomalyRecordedV1(EventBase):
    """payments-svc consumed a provider outcome its state machine refused."""

    source: str = "payments"
    event_type: Literal["payment.anomaly.recorded"] = "payment.anomaly.recorded"
    data: Anomaly


ANOMALY_EVENTS: tuple[type[EventBase], ...] = (ProviderAnomalyRecordedV1, PaymentAnomalyRecordedV1)
