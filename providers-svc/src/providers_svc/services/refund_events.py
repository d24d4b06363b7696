"""The ``provider.refund.updated`` events providers-svc publishes (billing_contracts.events.refunds):
one verdict on one refund, ours (with our refund id) or one the provider made on its own."""

from __future__ import annotations

from datetime import datetime

from billing_contracts.events.refunds import (
    ObservedVia,
    ProviderRefund,
    ProviderRefundStatus,
    ProviderRefundUpdatedV1,
)

from providers_svc.db.refunds import RefundVerdict
from providers_svc.domain.refunds import Refund, RefundStatus
from providers_svc.domain.transactions import Transaction

_PUBLISHED: dict[RefundStatus, ProviderRefundStatus] = {
    RefundStatus.PENDING: "pending",
    RefundStatus.SUCCEEDED: "succeeded",
    RefundStatus.FAILED: "failed",
}


def published(status: RefundStatus) -> ProviderRefundStatus:
    """The contract's word for a verdict (``requested`` is no verdict and is never published)."""
    return _PUBLISHED[status]


def refund_event(refund: Refund, verdict: RefundVerdict, observed_via: ObservedVia) -> ProviderRefundUpdatedV1:
    """The ``provider.refund.updated`` of one verdict on one of our refunds."""
    return ProviderRefundUpdatedV1(
        tenant_id=refund.tenant_id,
        livemode=refund.livemode,
        correlation_id=refund.payment_id,
        causation_id=refund.id,
        data=ProviderRefund(
            payment_id=refund.payment_id,
            provider=refund.provider,
            provider_transaction_id=refund.provider_transaction_id,
            refund_id=refund.id,
            # The provider's id once known stays on every later verdict (one without it never erases it).
            provider_refund_id=verdict.provider_refund_id or refund.provider_refund_id,
            amount=refund.amount,
            currency=refund.currency,
            status=published(verdict.status),
            failure_code=verdict.failure_code,
            failure_message=verdict.failure_message,
            provider_updated_at=verdict.provider_updated_at,
            observed_via=observed_via,
            account_id=refund.account_id,
            livemode=refund.livemode,
        ),
    )


def provider_started_refund_event(
    txn: Transaction,
    *,
    provider_refund_id: str,
    amount: int,
    status: RefundStatus,
    provider_updated_at: datetime,
    observed_via: ObservedVia,
    causation_id: str | None,
    failure_code: str | None = None,
    failure_message: str | None = None,
) -> ProviderRefundUpdatedV1:
    """The ``provider.refund.updated`` of a refund the provider made on its own (Payme's
    cancel-after-perform, a refund in Stripe's dashboard): no refund id of ours; payments-svc finds it
    again on repeats by ``provider_refund_id``."""
    return ProviderRefundUpdatedV1(
        tenant_id=txn.tenant_id,
        livemode=txn.livemode,
        correlation_id=txn.payment_id,
        causation_id=causation_id,
        data=ProviderRefund(
            payment_id=txn.payment_id,
            provider=txn.provider,
            provider_transaction_id=txn.id,
            refund_id=None,
            provider_refund_id=provider_refund_id,
            amount=amount,
            currency=txn.currency,
            status=published(status),
            failure_code=failure_code,
            failure_message=failure_message,
            provider_updated_at=provider_updated_at,
            observed_via=observed_via,
            account_id=txn.account_id,
            livemode=txn.livemode,
        ),
    )
