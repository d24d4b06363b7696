"""What a provider's verdict on one attempt does to the payment and its attempts (PAY-6, ATT-1..3).

The verdict was found acceptable by ``anomalies.refusal``; everything is queued on the unit of work and
written by the caller's guarded commit (the payment exactly as read, so the attempts are as read too:
every change of an attempt changes its payment in the same statement)."""

from __future__ import annotations

from datetime import datetime

from billing_contracts.envelope import utcnow
from billing_contracts.events import ProviderPaymentSucceededV1

from payments_svc.db.attempts import attempt_end
from payments_svc.db.models import Payment, PaymentAttempt
from payments_svc.db.repositories import payment_update
from payments_svc.domain.attempts import AttemptStatus, ended_status
from payments_svc.domain.payment import PaymentStatus
from payments_svc.events.mapping import attempt_failed_event
from payments_svc.services.anomalies import ProviderOutcome
from payments_svc.services.payments import Actor, is_expired, record_status
from payments_svc.services.uow import PaymentsUnitOfWork

# What an outcome changes on a payment (``record_status`` stamps the first three).
OUTCOME_COLUMNS = (
    "status",
    "updated_at",
    "sequence",
    "provider",
    "provider_transaction_id",
    "provider_reference",
    "failure_code",
    "failure_message",
)

_PAYABLE = (PaymentStatus.CREATED, PaymentStatus.PROVIDER_PENDING)


def attempt_of(attempts: list[PaymentAttempt], provider_transaction_id: str) -> PaymentAttempt | None:
    return next((a for a in attempts if a.provider_transaction_id == provider_transaction_id), None)


def is_active(payment: Payment, attempt: PaymentAttempt | None, event: ProviderOutcome) -> bool:
    """Whether the verdict is about the payment's active attempt. A transaction we have no attempt for,
    from the payment's provider, is taken as the active one (payments started before attempts were
    recorded name only their provider)."""
    if payment.status != PaymentStatus.PROVIDER_PENDING:
        return False
    if payment.provider_transaction_id == event.data.provider_transaction_id:
        return True
    return attempt is None and event.data.provider == payment.provider


def apply_verdict(
    uow: PaymentsUnitOfWork,
    payment: Payment,
    attempts: list[PaymentAttempt],
    event: ProviderOutcome,
    checkout_base_url: str,
) -> PaymentStatus | None:
    """Queue what an acceptable verdict does to the payment as read; the status it decides, if any.

    - a success of the active attempt pays the payment;
    - a success of an attempt already ended (a void the provider did not honour) while the payment is
      still payable pays it too (the money is real), and abandons the active attempt, if any;
    - a failure of the active attempt ends it and makes the payment payable again (CREATED, with the
      failure), or FAILED once the payment has expired;
    - anything else (a failure of an ended attempt) changes nothing."""
    outcome = event.data
    attempt = attempt_of(attempts, outcome.provider_transaction_id)
    active = is_active(payment, attempt, event)
    if active and attempt is None and payment.provider_transaction_id is not None:
        attempt = attempt_of(attempts, payment.provider_transaction_id)
    now = utcnow()
    actor = Actor(f"provider:{outcome.provider}", outcome.failure_message)
    reference = outcome.provider_reference
    if isinstance(event, ProviderPaymentSucceededV1):
        if active:
            if attempt is not None:
                uow.write(
                    attempt_end(
                        payment.id, attempt.provider_transaction_id, AttemptStatus.SUCCEEDED, now, reference=reference
                    )
                )
            payment.provider_reference = reference or payment.provider_reference
            record_status(uow, payment, PaymentStatus.SUCCEEDED, actor, checkout_base_url)
        elif attempt is not None and payment.status in _PAYABLE:
            if payment.status == PaymentStatus.PROVIDER_PENDING and payment.provider_transaction_id is not None:
                uow.write(attempt_end(payment.id, payment.provider_transaction_id, AttemptStatus.ABANDONED, now))
            uow.write(
                attempt_end(
                    payment.id, attempt.provider_transaction_id, AttemptStatus.SUCCEEDED, now, reference=reference
                )
            )
            payment.provider = attempt.provider
            payment.provider_transaction_id = attempt.provider_transaction_id
            payment.provider_reference = reference or attempt.provider_reference
            reason = Actor(actor.name, f"success of attempt {attempt.id}, which had {attempt.status}")
            if payment.status == PaymentStatus.CREATED:
                record_status(uow, payment, PaymentStatus.PROVIDER_PENDING, reason, checkout_base_url)
            record_status(uow, payment, PaymentStatus.SUCCEEDED, reason, checkout_base_url)
        else:
            return None
    else:
        if not active:
            return None
        code = outcome.failure_code or "provider_declined"
        message = outcome.failure_message or "The provider declined the payment."
        payment.failure_code, payment.failure_message = code, message
        payment.provider_reference = reference or payment.provider_reference
        if is_expired(payment, now):
            # The checkout has closed: no other attempt can follow.
            if attempt is not None:
                uow.write(
                    attempt_end(
                        payment.id,
                        attempt.provider_transaction_id,
                        ended_status(code),
                        now,
                        reference=reference,
                        failure_code=code,
                        failure_message=message,
                    )
                )
            record_status(uow, payment, PaymentStatus.FAILED, actor, checkout_base_url)
        else:
            ended = _ended(payment, attempt, event, code, message, now)
            uow.write(
                attempt_end(
                    payment.id,
                    ended.provider_transaction_id,
                    AttemptStatus(ended.status),
                    now,
                    reference=reference,
                    failure_code=code,
                    failure_message=message,
                )
            )
            payment.provider = None
            payment.provider_transaction_id = None
            payment.provider_reference = None
            record_status(
                uow,
                payment,
                PaymentStatus.CREATED,
                actor,
                checkout_base_url,
                event=lambda p: attempt_failed_event(p, ended, checkout_base_url),
            )
    uow.write(payment_update(payment, OUTCOME_COLUMNS))
    return PaymentStatus(payment.status)


def _ended(
    payment: Payment, attempt: PaymentAttempt | None, event: ProviderOutcome, code: str, message: str, now: datetime
) -> PaymentAttempt:
    """The attempt as its failure leaves it (for the event; the row is written by ``attempt_end``)."""
    outcome = event.data
    return PaymentAttempt(
        id=attempt.id if attempt is not None else "",
        payment_id=payment.id,
        tenant_id=payment.tenant_id,
        provider=attempt.provider if attempt is not None else outcome.provider,
        provider_transaction_id=attempt.provider_transaction_id
        if attempt is not None
        else outcome.provider_transaction_id,
        provider_reference=outcome.provider_reference or (attempt.provider_reference if attempt else None),
        status=ended_status(code).value,
        failure_code=code,
        failure_message=message,
        created_at=attempt.created_at if attempt is not None else now,
        updated_at=now,
    )
