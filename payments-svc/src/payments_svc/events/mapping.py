"""Domain → contract: the public payment and refund objects and the events that carry them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from billing_contracts.envelope import EventBase
from billing_contracts.events import (
    EVENT_CLASSES,
    Customer,
    DisputeClosedV1,
    DisputeCreatedV1,
    DisputeData,
    DisputeSnapshot,
    PaymentAttemptData,
    PaymentAttemptFailedV1,
    PaymentAttemptSnapshot,
    PaymentData,
    PaymentSnapshot,
    RefundCreatedV1,
    RefundData,
    RefundFailedV1,
    RefundSnapshot,
    RefundSucceededV1,
)

from payments_svc.db.models import Dispute, Payment, PaymentAttempt, Refund


def snapshot(payment: Payment, checkout_base_url: str) -> PaymentSnapshot:
    return PaymentSnapshot(
        id=payment.id,
        status=payment.status,
        amount=payment.amount,
        currency=payment.currency,
        amount_refunded=payment.amount_refunded,
        order_id=payment.order_id,
        description=payment.description,
        customer=Customer(**payment.customer) if payment.customer else None,
        metadata=payment.metadata_ or {},
        provider=payment.provider,
        provider_reference=payment.provider_reference,
        checkout_token=payment.checkout_token,
        checkout_url=f"{checkout_base_url}/c/{payment.checkout_token}",
        return_url=payment.return_url,
        failure_code=payment.failure_code,
        failure_message=payment.failure_message,
        livemode=payment.livemode,
        sequence=payment.sequence,
        created_at=payment.created_at,
        updated_at=payment.updated_at,
        expires_at=payment.expires_at,
        amount_disputed=payment.amount_disputed,
        dispute=DisputeSnapshot.model_validate(payment.dispute) if payment.dispute else None,
        attempt_count=payment.attempt_count or 0,
        capture_method=payment.capture_method,
        amount_capturable=payment.amount_capturable,
        amount_captured=payment.amount_captured,
        authorization_expires_at=payment.authorization_expires_at,
    )


def attempt_snapshot(attempt: PaymentAttempt) -> PaymentAttemptSnapshot:
    """The public payment attempt object (``GET /v1/payments/{id}/attempts``)."""
    return PaymentAttemptSnapshot(
        id=attempt.id,
        payment_id=attempt.payment_id,
        provider=attempt.provider,
        status=attempt.status,
        provider_reference=attempt.provider_reference,
        failure_code=attempt.failure_code,
        failure_message=attempt.failure_message,
        created_at=attempt.created_at,
        updated_at=attempt.updated_at,
    )


def attempt_failed_event(payment: Payment, attempt: PaymentAttempt, checkout_base_url: str) -> EventBase:
    """``payment.attempt_failed``: the payment (CREATED again) and the attempt that failed."""
    return PaymentAttemptFailedV1(
        tenant_id=payment.tenant_id,
        livemode=payment.livemode,
        correlation_id=payment.id,
        data=PaymentAttemptData(payment=snapshot(payment, checkout_base_url), attempt=attempt_snapshot(attempt)),
    )


def dispute_snapshot(dispute: Dispute) -> DisputeSnapshot:
    """The public dispute object (``created_at``/``closed_at`` are the provider's times)."""
    return DisputeSnapshot(
        id=dispute.id,
        payment_id=dispute.payment_id,
        status=dispute.status,
        reason=dispute.reason,
        amount=dispute.amount,
        currency=dispute.currency,
        funds_withdrawn=dispute.funds_withdrawn,
        evidence_due_by=dispute.evidence_due_by,
        created_at=dispute.provider_created_at,
        closed_at=dispute.closed_at,
    )


def payment_json(payment: Payment, checkout_base_url: str) -> dict[str, Any]:
    """The public payment object exactly as API.md shows it."""
    return snapshot(payment, checkout_base_url).model_dump(mode="json")


def payment_event(
    event_type: str, payment: Payment, checkout_base_url: str, *, correlation_id: str | None = None
) -> EventBase:
    """The contract event of ``event_type`` (a payment event: each sets its own ``event_type``)."""
    cls: Callable[..., EventBase] = EVENT_CLASSES[event_type]
    return cls(
        tenant_id=payment.tenant_id,
        livemode=payment.livemode,
        correlation_id=correlation_id,
        data=PaymentData(payment=snapshot(payment, checkout_base_url)),
    )


def dispute_event(
    cls: type[DisputeCreatedV1 | DisputeClosedV1],
    dispute: Dispute,
    payment: Payment,
    checkout_base_url: str,
    *,
    causation_id: str,
) -> DisputeCreatedV1 | DisputeClosedV1:
    """``dispute.created`` or ``dispute.closed``: the dispute, and its payment as it is with it."""
    return cls(
        tenant_id=payment.tenant_id,
        livemode=payment.livemode,
        correlation_id=payment.id,
        causation_id=causation_id,
        data=DisputeData(dispute=dispute_snapshot(dispute), payment=snapshot(payment, checkout_base_url)),
    )


def refund_snapshot(refund: Refund) -> RefundSnapshot:
    """The public refund object (API.md, plus the fields the README lists as extensions)."""
    return RefundSnapshot(
        id=refund.id,
        payment_id=refund.payment_id,
        amount=refund.amount,
        currency=refund.currency,
        status=refund.status,  # a RefundStatus value (CHECK ck_refunds_status)
        reason=refund.reason,
        provider=refund.provider,
        provider_refund_id=refund.provider_refund_id,
        failure_code=refund.failure_code,
        failure_message=refund.failure_message,
        livemode=refund.livemode,
        sequence=refund.sequence,
        created_at=refund.created_at,
        updated_at=refund.updated_at,
    )


def refund_json(refund: Refund) -> dict[str, Any]:
    return refund_snapshot(refund).model_dump(mode="json")


RefundEvent = RefundCreatedV1 | RefundSucceededV1 | RefundFailedV1


def refund_event(
    cls: type[RefundEvent],
    refund: Refund,
    payment: Payment,
    checkout_base_url: str,
    *,
    causation_id: str | None = None,
) -> RefundEvent:
    """``refund.created|succeeded|failed``: the refund, and its payment as it is with it."""
    return cls(
        tenant_id=payment.tenant_id,
        livemode=payment.livemode,
        correlation_id=payment.id,
        causation_id=causation_id,
        data=RefundData(refund=refund_snapshot(refund), payment=snapshot(payment, checkout_base_url)),
    )
