"""What happens to a payment after checkout: the tenant cancels it, the provider decides it, or time
runs out. Each function owns its transaction(s)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from billing_contracts.envelope import utcnow
from billing_contracts.events import ProviderPaymentFailedV1, ProviderPaymentSucceededV1
from billing_runtime.inbox import inbox_row

from payments_svc.db.models import Payment, inbox
from payments_svc.db.repositories import (
    PaymentRepository,
    history_insert,
    payment_snapshot,
    payment_unchanged,
    payment_update,
    payments_due_for_expiry,
    was_consumed,
)
from payments_svc.domain.errors import InvalidState, NotFound
from payments_svc.domain.payment import PaymentStatus
from payments_svc.services.payments import Actor, record_status
from payments_svc.services.providers import ProvidersPort
from payments_svc.services.uow import PaymentsUnitOfWork

log = logging.getLogger(__name__)

PROVIDER_EVENTS_CONSUMER = "payments.provider-events"


@dataclass(frozen=True)
class LifecycleDeps:
    uow: Callable[[], PaymentsUnitOfWork]
    providers: ProvidersPort
    checkout_base_url: str


async def cancel_payment(deps: LifecycleDeps, tenant_id: str, payment_id: str) -> Payment:
    async with deps.uow() as uow:
        payment = await PaymentRepository(uow.session, tenant_id).get(payment_id)
    if payment is None:
        raise NotFound()
    if payment.status not in (PaymentStatus.CREATED, PaymentStatus.PROVIDER_PENDING):
        raise InvalidState(f"A payment in status {payment.status} cannot be cancelled.")
    # Ask the provider first: once it holds the money the payment must not be called cancelled.
    if payment.provider_transaction_id is not None and not await deps.providers.cancel(tenant_id, payment_id):
        raise InvalidState("The provider has already taken this payment; it can no longer be cancelled.")
    async with deps.uow() as uow:
        locked = await PaymentRepository(uow.session, tenant_id).get(payment_id, for_update=True)
        assert locked is not None
        if locked.provider_transaction_id != payment.provider_transaction_id:
            raise InvalidState("The payer started paying meanwhile; retry the cancellation.")
        record_status(uow, locked, PaymentStatus.CANCELLED, Actor("tenant"), deps.checkout_base_url)
        await uow.commit()
    return locked


async def apply_provider_outcome(
    deps: LifecycleDeps, event: ProviderPaymentSucceededV1 | ProviderPaymentFailedV1
) -> None:
    """Move the payment on a verified provider outcome, exactly once per event (inbox).

    The payment is read (no lock, no transaction), the outcome decided in memory, and every write
    (the payment's new state, its history row, the tenant event, the outbox row) goes out in one
    statement with the inbox row, all of it conditional on the inbox row being new and on the
    payment being, under its row lock, exactly as it was read. A redelivered event writes nothing; a
    payment that moved meanwhile (a cancel, another outcome) is read again and decided again. Two
    round trips on PostgreSQL; this consumer is on the path of every payment outcome."""
    outcome = event.data
    seen = inbox_row(inbox, PROVIDER_EVENTS_CONSUMER, event.event_id)
    for _ in range(OUTCOME_ATTEMPTS):
        async with deps.uow() as uow:
            payment = await payment_snapshot(uow, event.tenant_id, outcome.payment_id)
            if payment is None:
                log.error("provider event %s names unknown payment %s", event.event_id, outcome.payment_id)
                await uow.commit_unless_exists(seen)
                return
            unchanged = payment_unchanged(payment)
            _decide(uow, payment, event, deps.checkout_base_url)
            if await uow.commit_unless_exists(seen, unchanged):
                return
        if await was_consumed(deps.uow, PROVIDER_EVENTS_CONSUMER, event.event_id):
            return
    # Redelivered by the bus after a pause (nack), and decided again then.
    raise RuntimeError(f"payment {outcome.payment_id} kept changing while applying event {event.event_id}")


# A payment moves a handful of times in its life, so a few rounds always settle a conflict.
OUTCOME_ATTEMPTS = 5


def _decide(
    uow: PaymentsUnitOfWork,
    payment: Payment,
    event: ProviderPaymentSucceededV1 | ProviderPaymentFailedV1,
    checkout_base_url: str,
) -> None:
    """Queue what the outcome does to the payment as it was read (nothing, when it does nothing)."""
    outcome = event.data
    succeeded = isinstance(event, ProviderPaymentSucceededV1)
    anomaly = _anomaly(payment, outcome.amount, outcome.currency, outcome.provider, succeeded)
    if anomaly is not None:
        # Money moved in a way the payment does not allow: keep it on record for reconciliation
        # instead of bending the state machine (PAY-1).
        log.error("payment %s: %s (event %s)", payment.id, anomaly, event.event_id)
        uow.write(
            history_insert(
                payment_id=payment.id,
                from_status=payment.status,
                to_status=payment.status,
                actor=f"provider:{outcome.provider}",
                reason=f"anomaly: {anomaly}",
                event_id=event.event_id,
                created_at=utcnow(),
            )
        )
    elif payment.status == PaymentStatus.PROVIDER_PENDING:
        payment.provider_reference = outcome.provider_reference or payment.provider_reference
        actor = Actor(f"provider:{outcome.provider}", outcome.failure_message)
        if succeeded:
            record_status(uow, payment, PaymentStatus.SUCCEEDED, actor, checkout_base_url)
        else:
            payment.failure_code = outcome.failure_code or "provider_declined"
            payment.failure_message = outcome.failure_message or "The provider declined the payment."
            record_status(uow, payment, PaymentStatus.FAILED, actor, checkout_base_url)
        uow.write(payment_update(payment, OUTCOME_COLUMNS))


# What an outcome changes on a payment (``record_status`` stamps the first two).
OUTCOME_COLUMNS = ("status", "updated_at", "provider_reference", "failure_code", "failure_message")


def _anomaly(payment: Payment, amount: int, currency: str, provider: str, succeeded: bool) -> str | None:
    if payment.provider is not None and provider != payment.provider:
        return f"outcome from {provider}, but the payment is with {payment.provider}"
    if succeeded and (amount != payment.amount or currency != payment.currency):
        return f"provider captured {amount} {currency}, payment is {payment.amount} {payment.currency}"
    if succeeded and payment.status in (PaymentStatus.EXPIRED, PaymentStatus.CANCELLED, PaymentStatus.FAILED):
        return f"provider success after the payment became {payment.status}"
    return None


async def expire_due(deps: LifecycleDeps, batch: int = 100) -> int:
    """Expire overdue payments; one that a provider may still be capturing is left to its callback."""
    now = utcnow()
    async with deps.uow() as uow:
        due = await payments_due_for_expiry(
            uow.session, now, [PaymentStatus.CREATED, PaymentStatus.PROVIDER_PENDING], batch
        )
        candidates = [(p.id, p.tenant_id, p.provider_transaction_id) for p in due]
    expired = 0
    for payment_id, tenant_id, provider_txn in candidates:
        if provider_txn is not None:
            try:
                if not await deps.providers.cancel(tenant_id, payment_id):
                    continue
            except Exception:
                log.warning("could not cancel %s at its provider; will retry", payment_id, exc_info=True)
                continue
        async with deps.uow() as uow:
            payment = await PaymentRepository(uow.session, tenant_id).get(payment_id, for_update=True)
            if payment is None or payment.status not in (PaymentStatus.CREATED, PaymentStatus.PROVIDER_PENDING):
                continue
            if payment.provider_transaction_id != provider_txn:
                continue
            record_status(uow, payment, PaymentStatus.EXPIRED, Actor("sweeper"), deps.checkout_base_url)
            await uow.commit()
            expired += 1
    return expired
