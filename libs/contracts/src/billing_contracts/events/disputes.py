"""Events published by providers-svc about a payer's dispute (chargeback) of one of our payments.

A provider reports a dispute as a sequence of states (Stripe: ``charge.dispute.created|updated|closed|
funds_withdrawn|funds_reinstated``); providers-svc publishes each state it learns as one
``provider.dispute.updated`` and payments-svc, which owns the payment, decides what the tenant hears
(``dispute.created`` for the first state of a dispute, ``dispute.closed`` for a closing one). Deliveries
may arrive more than once and out of order: ``provider_updated_at`` orders them (a consumer never
applies a state older than one it has applied), and a closed state is final.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from billing_contracts.config import CONTRACT
from billing_contracts.envelope import EventBase
from billing_contracts.events.payments import DisputeSnapshot, PaymentSnapshot

# Stripe's dispute statuses (PROTOCOLS.md §4.2); ``prevented`` is Stripe's newer closing state.
OPEN_DISPUTE_STATUSES = frozenset({"warning_needs_response", "warning_under_review", "needs_response", "under_review"})
CLOSED_DISPUTE_STATUSES = frozenset({"warning_closed", "won", "lost", "prevented"})


class ProviderDispute(BaseModel):
    """One dispute as the provider last described it, in our units (minor units + ISO 4217)."""

    model_config = CONTRACT

    payment_id: str
    provider: str
    provider_transaction_id: str
    # The provider's id of the dispute (Stripe ``dp_...``): one payment may be disputed more than once.
    provider_dispute_id: str
    status: str
    reason: str | None = None
    amount: int
    currency: str
    # True while the provider holds the disputed amount back from the merchant (Stripe: after
    # ``funds_withdrawn``, until ``funds_reinstated``). A lost dispute keeps it True: money out.
    funds_withdrawn: bool = False
    evidence_due_by: datetime | None = None
    # When the provider opened the dispute, and when it produced this state (Stripe: the event's
    # ``created``); the second orders the states of one dispute.
    provider_created_at: datetime
    provider_updated_at: datetime
    livemode: bool = False

    @property
    def closed(self) -> bool:
        return self.status in CLOSED_DISPUTE_STATUSES


class ProviderDisputeUpdatedV1(EventBase):
    """A provider reported a (new or changed) state of a dispute of one of our payments."""

    source: str = "providers"
    event_type: Literal["provider.dispute.updated"] = "provider.dispute.updated"
    data: ProviderDispute


DISPUTE_EVENTS: tuple[type[ProviderDisputeUpdatedV1], ...] = (ProviderDisputeUpdatedV1,)


class DisputeData(BaseModel):
    """``data`` of every ``dispute.*`` event: the dispute, and its payment (with its ``sequence``)."""

    model_config = CONTRACT

    dispute: DisputeSnapshot
    payment: PaymentSnapshot


class _TenantDisputeEvent(EventBase):
    source: str = "payments"
    data: DisputeData


class DisputeCreatedV1(_TenantDisputeEvent):
    """payments-svc learned of a dispute of one of the tenant's payments (its first state, whatever it is)."""

    event_type: Literal["dispute.created"] = "dispute.created"


class DisputeClosedV1(_TenantDisputeEvent):
    """A dispute of one of the tenant's payments closed: ``data.dispute.status`` is the outcome (won, lost,
    warning_closed or prevented)."""

    event_type: Literal["dispute.closed"] = "dispute.closed"


# The public ones: their ``event_type`` is also the webhook type, and they are in the tenant's log.
TENANT_DISPUTE_EVENTS: tuple[type[_TenantDisputeEvent], ...] = (DisputeCreatedV1, DisputeClosedV1)
