"""Refund events: the tenant-facing ``refund.*`` that payments-svc publishes, and the provider's verdict
``provider.refund.updated`` that providers-svc publishes.

The flow (issue 13, ARCHITECTURE.md "The money path"):

1. ``POST /v1/payments/{id}/refunds`` → payments-svc reserves the amount (the database refuses a sum
   above the payment), stores the refund ``PENDING`` and publishes ``refund.created`` in the same
   transaction (outbox). The API answers at once.
2. providers-svc consumes ``refund.created`` (its own queue) and asks the payment's provider, idempotent
   on the refund id; whatever it learns (now, from a later callback or webhook, or from the janitor's
   status check) it publishes as ``provider.refund.updated``.
3. payments-svc applies ``provider.refund.updated``: ``SUCCEEDED`` adds to the payment's
   ``amount_refunded`` (the payment becomes ``PARTIALLY_REFUNDED``/``REFUNDED``); ``FAILED`` gives the
   amount back to what remains; ``pending`` changes nothing. It publishes ``refund.succeeded|failed``.

A refund the provider starts on its own (Payme's cancel-after-perform, a refund in Stripe's dashboard)
arrives as ``provider.refund.updated`` with ``refund_id`` None: payments-svc creates the refund then
(``refund.created`` and its outcome), found again on repeats by ``provider_refund_id``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from billing_contracts.config import CONTRACT
from billing_contracts.envelope import EventBase
from billing_contracts.events.payments import PaymentSnapshot

RefundStatus = Literal["PENDING", "SUCCEEDED", "FAILED"]
ProviderRefundStatus = Literal["pending", "succeeded", "failed"]
# How providers-svc learned a verdict: the provider's answer to our call, a callback/webhook the
# provider sent, or a status check (the reconciliation janitor's). Evidence for reconciliation.
ObservedVia = Literal["api", "callback", "status_check"]


class RefundSnapshot(BaseModel):
    """The public refund object (API.md) at the moment the event happened."""

    model_config = CONTRACT

    id: str
    object: Literal["refund"] = "refund"
    payment_id: str
    amount: int
    currency: str
    status: RefundStatus
    reason: str | None = None
    provider: str | None = None
    provider_refund_id: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    livemode: bool = False
    # Grows with every change of the refund (API.md ``sequence``).
    sequence: int = 0
    created_at: datetime
    updated_at: datetime


class RefundData(BaseModel):
    """``data`` of every ``refund.*`` event: the refund and its payment (each with its ``sequence``)."""

    model_config = CONTRACT

    refund: RefundSnapshot
    payment: PaymentSnapshot


class _RefundEvent(EventBase):
    source: str = "payments"
    data: RefundData


class RefundCreatedV1(_RefundEvent):
    """A refund was accepted (status PENDING; providers-svc asks the provider on receiving it)."""

    event_type: Literal["refund.created"] = "refund.created"


class RefundSucceededV1(_RefundEvent):
    """The provider confirmed the refund."""

    event_type: Literal["refund.succeeded"] = "refund.succeeded"


class RefundFailedV1(_RefundEvent):
    """The provider refused the refund; its amount is refundable again."""

    event_type: Literal["refund.failed"] = "refund.failed"


REFUND_EVENTS: tuple[type[_RefundEvent], ...] = (RefundCreatedV1, RefundSucceededV1, RefundFailedV1)


class ProviderRefund(BaseModel):
    """The provider's verdict on one refund, in our units (minor units + ISO 4217)."""

    model_config = CONTRACT

    payment_id: str
    provider: str
    # providers-svc's transaction of the refunded payment.
    provider_transaction_id: str
    # Our refund id (``rfnd_...``); None for a refund the provider started on its own.
    refund_id: str | None = None
    # The provider's id of the refund (Stripe ``re_...``, Octo's refund id, Payme's transaction id for a
    # cancel-after-perform); identifies a provider-started refund on repeats.
    provider_refund_id: str | None = None
    amount: int
    currency: str
    status: ProviderRefundStatus
    failure_code: str | None = None
    failure_message: str | None = None
    # When the provider produced this state; orders the verdicts of one refund (a final state is final).
    provider_updated_at: datetime
    observed_via: ObservedVia = "api"
    # The provider account of the refunded payment (None for the sandbox).
    account_id: str | None = None
    livemode: bool = False


class ProviderRefundUpdatedV1(EventBase):
    """A provider reported a (new or changed) state of a refund of one of our payments."""

    source: str = "providers"
    event_type: Literal["provider.refund.updated"] = "provider.refund.updated"
    data: ProviderRefund


PROVIDER_REFUND_EVENTS: tuple[type[ProviderRefundUpdatedV1], ...] = (ProviderRefundUpdatedV1,)
