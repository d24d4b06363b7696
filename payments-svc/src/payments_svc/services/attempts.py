"""Starting attempts: the payer's first provider, another one after a failure, or a switch away from
a pending one (``checkout.pay``). Each runs in the caller's unit of work, the payment's row locked."""

from __future__ import annotations

from billing_contracts.envelope import utcnow
from billing_runtime.ids import new_id
from billing_runtime.writes import InsertRows

from payments_svc.db.attempts import attempt_insert, end_active_attempt, new_attempt_row
from payments_svc.db.models import Payment, PaymentAttempt
from payments_svc.db.repositories import history_insert, payment_update
from payments_svc.domain.attempts import AttemptStatus
from payments_svc.domain.payment import PaymentStatus
from payments_svc.services.payments import Actor, record_status
from payments_svc.services.providers import StartedPayment
from payments_svc.services.uow import PaymentsUnitOfWork


def ended_providers(attempts: list[PaymentAttempt]) -> set[str]:
    """Providers not offered again: each keeps one transaction per payment (providers-svc PRV-2), and
    Payme and Click know the order by our payment id, so an ended attempt there cannot be reopened."""
    return {a.provider for a in attempts if a.status != AttemptStatus.PENDING}


async def start_attempt(
    uow: PaymentsUnitOfWork, payment: Payment, provider: str, started: StartedPayment, checkout_base_url: str
) -> None:
    """CREATED → PROVIDER_PENDING with a new pending attempt at ``provider``."""
    _take(payment, provider, started)
    await _insert(uow, payment, provider, started)
    record_status(uow, payment, PaymentStatus.PROVIDER_PENDING, Actor("payer"), checkout_base_url)


# What starting an attempt changes in the payment's row (with the status change's columns).
_STARTED_COLUMNS = (
    "provider",
    "provider_transaction_id",
    "provider_reference",
    "attempt_count",
    "status",
    "updated_at",
    "sequence",
)


def queue_attempt(
    uow: PaymentsUnitOfWork, payment: Payment, provider: str, started: StartedPayment, checkout_base_url: str
) -> InsertRows:
    """``start_attempt`` for a payment read unlocked (``payment_snapshot``): every write is queued,
    and the attempt's INSERT is returned to be the guard of the unit's ``commit_unless_exists``, with
    ``payment_unchanged`` taken before this call as its precondition. One statement then starts the
    attempt, or writes nothing if the payment moved meanwhile (a concurrent click, a cancel) or
    another attempt is pending (the one-pending index, ATT-1)."""
    _take(payment, provider, started)
    row = new_attempt_row(
        new_id("att"), payment, provider, started.provider_transaction_id, started.provider_reference, utcnow()
    )
    record_status(uow, payment, PaymentStatus.PROVIDER_PENDING, Actor("payer"), checkout_base_url)
    uow.write(payment_update(payment, _STARTED_COLUMNS))
    return attempt_insert(row)


async def switch_attempt(uow: PaymentsUnitOfWork, payment: Payment, provider: str, started: StartedPayment) -> None:
    """The active attempt was voided at its provider: it is abandoned, and a new one at ``provider``
    takes its place. The payment stays PROVIDER_PENDING (no status event); its ``sequence`` grows, as
    with every change a reader can see, and its history says who switched to what."""
    previous = payment.provider
    await end_active_attempt(uow.session, payment, AttemptStatus.ABANDONED)
    _take(payment, provider, started)
    await _insert(uow, payment, provider, started)
    now = utcnow()
    payment.updated_at = now
    payment.sequence += 1
    uow.write(
        history_insert(
            payment_id=payment.id,
            from_status=payment.status,
            to_status=payment.status,
            actor="payer",
            reason=f"switched from {previous} to {provider}",
            event_id=None,
            created_at=now,
        )
    )


def _take(payment: Payment, provider: str, started: StartedPayment) -> None:
    payment.provider = provider
    payment.provider_transaction_id = started.provider_transaction_id
    payment.provider_reference = started.provider_reference
    payment.attempt_count = (payment.attempt_count or 0) + 1


async def _insert(uow: PaymentsUnitOfWork, payment: Payment, provider: str, started: StartedPayment) -> None:
    # Run now, not queued: the abandoned attempt's UPDATE has already run, so the one-pending index
    # (ATT-1) sees the new row alone.
    row = new_attempt_row(
        new_id("att"), payment, provider, started.provider_transaction_id, started.provider_reference, utcnow()
    )
    write = attempt_insert(row)
    await uow.session.execute(write.table.insert(), list(write.rows))
