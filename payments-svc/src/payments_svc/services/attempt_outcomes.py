"""What a provider's verdict on one attempt does to the payment and its attempts (PAY-6, ATT-1..3).

The verdict was found acceptable by ``anomalies.refusal``; everything is queued on the unit of work and
written by the caller's guarded commit (the payment exactly as read, so the attempts are as read too:
every change of an attempt changes its payment in the same statement)."""

from __future__ import annotations

from datetime import datetime, timedelta

from billing_contracts.envelope import utcnow
from billing_contracts.events import ProviderPaymentAuthorizedV1, ProviderPaymentSucceededV1

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
    "amount_capturable",
    "amount_captured",
    "authorization_expires_at",
    "sweep_at",
    "sweep_attempts",
)

# How long a hold lasts when the provider names no time (Stripe's 7 days).
DEFAULT_AUTHORIZATION = timedelta(days=7)

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
    if payment.status == PaymentStatus.AUTHORIZED:
        return _apply_to_hold(uow, payment, attempts, event, checkout_base_url)
    attempt = attempt_of(attempts, outcome.provider_transaction_id)
    active = is_active(payment, attempt, event)
    if active and attempt is None and payment.provider_transaction_id is not None:
        attempt = attempt_of(attempts, payment.provider_transaction_id)
    now = utcnow()
    actor = Actor(f"provider:{outcome.provider}", outcome.failure_message)
    reference = outcome.provider_reference
    if isinstance(event, ProviderPaymentAuthorizedV1):
        # Manual capture: the active attempt's funds are held (the attempt stays pending until the
        # capture or the release); an authorization of any other attempt holds nothing we can use.
        if not active:
            return None
        # The hold lasts until the provider's time, or our default when it names none.
        expires = event.data.authorization_expires_at or now + DEFAULT_AUTHORIZATION
        payment.amount_capturable = outcome.amount
        payment.authorization_expires_at = expires
        # The sweeper releases the hold when it lapses (its queue, restarted for this deadline).
        payment.sweep_at = expires
        payment.sweep_attempts = 0
        payment.provider_reference = reference or payment.provider_reference
        held = Actor(f"provider:{outcome.provider}", f"authorized {outcome.amount} {outcome.currency}")
        record_status(uow, payment, PaymentStatus.AUTHORIZED, held, checkout_base_url)
    elif isinstance(event, ProviderPaymentSucceededV1):
        if active:
            if attempt is not None:
                uow.write(
                    attempt_end(
                        payment.id, attempt.provider_transaction_id, AttemptStatus.SUCCEEDED, now, reference=reference
                    )
                )
            payment.provider_reference = reference or payment.provider_reference
            payment.amount_captured = outcome.amount
            payment.amount_capturable = 0
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
            payment.amount_captured = outcome.amount
            payment.amount_capturable = 0
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


def _apply_to_hold(
    uow: PaymentsUnitOfWork,
    payment: Payment,
    attempts: list[PaymentAttempt],
    event: ProviderOutcome,
    checkout_base_url: str,
) -> PaymentStatus | None:
    """A verdict on an AUTHORIZED payment's hold: the provider captured it (SUCCEEDED, with what it
    took) or dropped it (it lapsed or was released there: EXPIRED, nothing taken). Only a verdict on the
    attempt that holds the funds counts; a repeated authorization changes nothing."""
    outcome = event.data
    if isinstance(event, ProviderPaymentAuthorizedV1):
        return None
    if payment.provider_transaction_id not in (None, outcome.provider_transaction_id):
        return None
    now = utcnow()
    reference = outcome.provider_reference
    payment.provider_reference = reference or payment.provider_reference
    payment.amount_capturable = 0
    ended = AttemptStatus.SUCCEEDED if isinstance(event, ProviderPaymentSucceededV1) else AttemptStatus.CANCELLED
    attempt = attempt_of(attempts, outcome.provider_transaction_id)
    if attempt is not None:
        uow.write(attempt_end(payment.id, attempt.provider_transaction_id, ended, now, reference=reference))
    if ended is AttemptStatus.SUCCEEDED:
        payment.amount_captured = outcome.amount
        actor = Actor(f"provider:{outcome.provider}", f"captured {outcome.amount} {outcome.currency}")
        record_status(uow, payment, PaymentStatus.SUCCEEDED, actor, checkout_base_url)
    else:
        payment.failure_code = outcome.failure_code or "provider_declined"
        payment.failure_message = outcome.failure_message or "The provider released the hold."
        actor = Actor(f"provider:{outcome.provider}", payment.failure_message)
        record_status(uow, payment, PaymentStatus.EXPIRED, actor, checkout_base_url)
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
