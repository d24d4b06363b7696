"""Payment use cases. Each takes an open Unit of Work and leaves committing to its caller, except the
ones named ``*_and_commit``/run by a consumer or sweeper, which own their transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from billing_contracts.envelope import EventBase, utcnow
from billing_contracts.problems import FieldError
from billing_runtime.errors import ProblemError
from billing_runtime.ids import new_id, new_token

from payments_svc.db.models import Payment
from payments_svc.db.repositories import history_insert, payment_insert
from payments_svc.domain.commands import PaymentCreate
from payments_svc.domain.errors import InvalidState
from payments_svc.domain.money import amount_problem, currency_of
from payments_svc.domain.payment import (
    MANUAL_CAPTURE_PROVIDERS,
    PaymentStatus,
    check_transition,
    event_for,
)
from payments_svc.events.mapping import payment_event
from payments_svc.services.uow import PaymentsUnitOfWork


@dataclass(frozen=True)
class Actor:
    """Who moved a payment: ``tenant``, ``payer``, ``provider:<name>``, ``sweeper``."""

    name: str
    reason: str | None = None


def record_status(
    uow: PaymentsUnitOfWork,
    payment: Payment,
    target: PaymentStatus,
    actor: Actor,
    checkout_base_url: str,
    *,
    event: Callable[[Payment], EventBase] | None = None,
) -> None:
    """The one place a status changes: checks the move, stamps it, writes history and the event.

    A payment with no status yet is new and is inserted here; an existing one is a loaded ORM object
    whose change is flushed at commit. Every row is written by ``uow.commit`` (PAY-3)."""
    previous = PaymentStatus(payment.status) if payment.status else None
    if previous is not None:
        check_transition(previous, target)
    now = utcnow()
    payment.status = target
    payment.updated_at = now
    # Every change a receiver sees grows the sequence; an existing payment's is written by the same
    # UPDATE as its status (an ORM flush, or ``payment_update`` with "sequence" among its columns).
    payment.sequence = (payment.sequence or 0) + 1
    if previous is None:
        # A new payment: its row is inserted with its first status, beside the history row that
        # refers to it (one statement: foreign keys are checked at its end).
        uow.write(payment_insert(payment))
    # ``event`` builds an event that carries more than the payment (``payment.attempt_failed``).
    announced = (
        event(payment) if event is not None else payment_event(event_for(previous, target), payment, checkout_base_url)
    )
    uow.emit(announced)
    uow.write(
        history_insert(
            payment_id=payment.id,
            from_status=previous,
            to_status=target,
            actor=actor.name,
            reason=actor.reason,
            event_id=announced.event_id,
            created_at=now,
        )
    )


def validate_amount(cmd: PaymentCreate) -> None:
    currency = currency_of(cmd.currency)
    if currency is None:
        raise ProblemError(
            422,
            "validation_error",
            f"currency {cmd.currency} is not supported",
            errors=[FieldError(field="currency", message="is not a supported currency")],
        )
    problem = amount_problem(currency, cmd.amount)
    if problem is not None:
        raise ProblemError(
            422, "validation_error", f"amount {problem}", errors=[FieldError(field="amount", message=problem)]
        )


def capture_method_unsupported(detail: str) -> ProblemError:
    return ProblemError(
        422,
        "capture_method_unsupported",
        detail,
        errors=[FieldError(field="capture_method", message="no provider of this payment can capture manually")],
    )


def validate_capture_method(cmd: PaymentCreate) -> None:
    """A manual payment needs a provider that can hold funds: ``providers`` naming only others (Payme,
    Click) is refused here; which of the tenant's providers are left is asked at creation (the API)."""
    if cmd.capture_method != "manual" or cmd.providers is None:
        return
    if not MANUAL_CAPTURE_PROVIDERS.intersection(cmd.providers):
        raise capture_method_unsupported(
            f"capture_method manual: none of {', '.join(cmd.providers)} can capture manually"
            f" (only {', '.join(sorted(MANUAL_CAPTURE_PROVIDERS))})."
        )


@dataclass(frozen=True)
class Creator:
    """The tenant creating a payment, as its internal token names it."""

    tenant_id: str
    merchant_name: str | None
    livemode: bool


async def create_payment(
    uow: PaymentsUnitOfWork, creator: Creator, cmd: PaymentCreate, checkout_base_url: str
) -> Payment:
    validate_amount(cmd)
    validate_capture_method(cmd)
    now = utcnow()
    expires_at = now + timedelta(seconds=cmd.expires_in)
    payment = Payment(
        id=new_id("pay"),
        tenant_id=creator.tenant_id,
        livemode=creator.livemode,
        status="",
        sequence=0,
        amount=cmd.amount,
        currency=cmd.currency,
        amount_refunded=0,
        order_id=cmd.order_id,
        description=cmd.description,
        customer=cmd.customer.model_dump(exclude_none=True) if cmd.customer else None,
        metadata_=dict(cmd.metadata),
        allowed_providers=list(dict.fromkeys(cmd.providers)) if cmd.providers else None,
        checkout_token=new_token(24),
        return_url=cmd.return_url,
        merchant_name=creator.merchant_name,
        created_at=now,
        updated_at=now,
        expires_at=expires_at,
        sweep_at=expires_at,
        sweep_attempts=0,
        amount_disputed=0,
        dispute=None,
        refund_reserved=0,
        attempt_count=0,
        capture_method=cmd.capture_method,
        amount_capturable=0,
        amount_captured=0,
        authorization_expires_at=None,
    )
    record_status(uow, payment, PaymentStatus.CREATED, Actor("tenant"), checkout_base_url)
    return payment


def is_expired(payment: Payment, now: datetime | None = None) -> bool:
    return payment.expires_at <= (now or utcnow())


def ensure_payable(payment: Payment) -> None:
    if payment.status not in (PaymentStatus.CREATED, PaymentStatus.PROVIDER_PENDING):
        raise InvalidState(f"The payment is {payment.status} and can no longer be paid.")
    if is_expired(payment):
        raise InvalidState("The payment has expired.")
