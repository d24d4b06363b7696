"""What happens to a payment after checkout: the tenant cancels it, the provider decides it, or time
runs out. Each function owns its transaction(s)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from billing_contracts.envelope import utcnow
from billing_runtime.inbox import inbox_row

from payments_svc.db.attempts import end_active_attempt
from payments_svc.db.models import Payment, inbox
from payments_svc.db.outcome_reads import outcome_snapshot
from payments_svc.db.repositories import (
    PaymentRepository,
    claim_due_for_expiry,
    payment_unchanged,
    was_consumed,
)
from payments_svc.domain.attempts import AttemptStatus, closed_status
from payments_svc.domain.errors import InvalidState, NotFound
from payments_svc.domain.payment import CANCELLABLE, PaymentStatus
from payments_svc.metrics import PaymentMetrics
from payments_svc.services.anomalies import ProviderOutcome, Refusal, record_anomaly, refusal
from payments_svc.services.attempt_outcomes import apply_verdict, attempt_of
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
    metrics: PaymentMetrics


async def cancel_payment(deps: LifecycleDeps, tenant_id: str, payment_id: str) -> Payment:
    async with deps.uow() as uow:
        payment = await PaymentRepository(uow.session, tenant_id).get(payment_id)
    if payment is None:
        raise NotFound()
    if payment.status not in CANCELLABLE:
        raise InvalidState(f"A payment in status {payment.status} cannot be cancelled.")
    # Ask the provider first: once it holds the money the payment must not be called cancelled (an
    # AUTHORIZED payment's hold is released there: the provider then takes nothing). Every attempt may
    # have left a transaction at a provider, not only the active one.
    held = payment.provider_transaction_id is not None or payment.attempt_count > 0
    if held and not await deps.providers.cancel(tenant_id, payment_id, livemode=payment.livemode):
        raise InvalidState("The provider has already taken this payment; it can no longer be cancelled.")
    async with deps.uow() as uow:
        locked = await PaymentRepository(uow.session, tenant_id).get(payment_id, for_update=True)
        assert locked is not None
        if locked.provider_transaction_id != payment.provider_transaction_id:
            raise InvalidState("The payer started paying meanwhile; retry the cancellation.")
        if locked.provider_transaction_id is not None:
            await end_active_attempt(uow.session, locked, AttemptStatus.CANCELLED)
        locked.amount_capturable = 0
        record_status(uow, locked, PaymentStatus.CANCELLED, Actor("tenant"), deps.checkout_base_url)
        await uow.commit()
    return locked


async def apply_provider_outcome(deps: LifecycleDeps, event: ProviderOutcome, raw: bytes | None = None) -> bool:
    """Move the payment on a verified provider outcome, exactly once per event (inbox).

    The payment is read (no lock, no transaction), the outcome decided in memory, and every write
    (the payment's new state, its history row, the tenant event, the outbox row; or the anomaly's
    rows) goes out in one statement with the inbox row, all of it conditional on the inbox row being
    new and on the payment being, under its row lock, exactly as it was read. A redelivered event
    writes nothing; a payment that moved meanwhile (a cancel, another outcome) is read again and
    decided again. Two round trips on PostgreSQL (the payment with its attempts, the write); this
    consumer is on the path of every payment outcome. ``raw`` is the message as received, kept with an
    anomaly. Returns whether refund verdicts were parked on the payment as read (to be replayed now)."""
    outcome = event.data
    seen = inbox_row(inbox, PROVIDER_EVENTS_CONSUMER, event.event_id)
    for _ in range(OUTCOME_ATTEMPTS):
        async with deps.uow() as uow:
            read = await outcome_snapshot(uow, event.tenant_id, outcome.payment_id)
            payment, parked, attempts = read.payment, read.has_parked_verdicts, read.attempts
            found = refusal(payment, event, attempt_of(attempts, outcome.provider_transaction_id))
            if found is not None:
                # Money moved in a way the payment does not allow: kept on record for reconciliation
                # instead of bending the state machine (PAY-1, PAY-5).
                log.error("payment %s: %s (event %s)", outcome.payment_id, found.detail, event.event_id)
                record_anomaly(uow, payment, event, found, raw)
            if payment is None:
                if found is None:
                    log.error("provider event %s names unknown payment %s", event.event_id, outcome.payment_id)
                if await uow.commit_unless_exists(seen):
                    _count(deps, found)
                return parked
            unchanged = payment_unchanged(payment)
            decided = apply_verdict(uow, payment, attempts, event, deps.checkout_base_url) if found is None else None
            if await uow.commit_unless_exists(seen, unchanged):
                _count(deps, found)
                if decided is not None:
                    deps.metrics.payment_final(payment, decided)
                return parked
        if await was_consumed(deps.uow, PROVIDER_EVENTS_CONSUMER, event.event_id):
            return parked
    # Redelivered by the bus after a pause (nack), and decided again then.
    raise RuntimeError(f"payment {outcome.payment_id} kept changing while applying event {event.event_id}")


# A payment moves a handful of times in its life, so a few rounds always settle a conflict.
OUTCOME_ATTEMPTS = 5


def _count(deps: LifecycleDeps, found: Refusal | None) -> None:
    # After the commit, and only for the delivery that committed: once per consumed event.
    if found is not None:
        deps.metrics.anomalies.labels(found.kind).inc()


@dataclass(frozen=True)
class ExpiryPass:
    """One pass of the sweeper: how many overdue payments it took on, and how many it expired."""

    claimed: int
    expired: int


async def expire_due(deps: LifecycleDeps, batch: int = 100) -> ExpiryPass:
    """Close overdue payments (EXPIRED, or FAILED after a failed last attempt: ``closed_status``), and
    AUTHORIZED ones whose hold lapsed (released at the provider first, then EXPIRED); one that a provider
    may still be capturing (or captured) is left to its callback.

    The batch is claimed by pushing each payment's next attempt back (further every time), so a
    payment that could not be expired now waits its turn behind the rest, and no set of payments a
    provider will not let go can starve the ones behind them."""
    async with deps.uow() as uow:
        candidates = await claim_due_for_expiry(uow.session, utcnow(), batch)
        await uow.commit()
    expired = 0
    for payment_id, tenant_id, provider_txn, livemode, attempt_count in candidates:
        # Any attempt may have left a transaction open at a provider (one started for a switch the
        # void then refused): providers-svc closes every pending one, or says one took the money.
        released = False
        if provider_txn is not None or attempt_count > 0:
            try:
                if not await deps.providers.cancel(tenant_id, payment_id, livemode=livemode):
                    continue
            except Exception:
                log.warning("could not cancel %s at its provider; will retry", payment_id, exc_info=True)
                continue
            released = True
        async with deps.uow() as uow:
            payment = await PaymentRepository(uow.session, tenant_id).get(payment_id, for_update=True)
            if payment is None or payment.status not in CANCELLABLE:
                continue
            if payment.provider_transaction_id != provider_txn:
                continue
            # A payment claimed as overdue while pending whose authorization landed during our call to
            # its provider is AUTHORIZED now, and not due (its hold's deadline is later), but the cancel
            # just released that hold there: it holds nothing any more, so it is closed all the same.
            released_hold = released and payment.status == PaymentStatus.AUTHORIZED
            if not released_hold and not _due(payment, utcnow()):
                continue
            if payment.provider_transaction_id is not None:
                await end_active_attempt(uow.session, payment, AttemptStatus.CANCELLED)
            closed = closed_status(payment)
            payment.amount_capturable = 0
            record_status(uow, payment, closed, Actor("sweeper"), deps.checkout_base_url)
            await uow.commit()
            deps.metrics.payment_final(payment, closed)
            expired += 1
    return ExpiryPass(len(candidates), expired)


def _due(payment: Payment, now: datetime) -> bool:
    """Whether the payment is past its deadline: its hold's while AUTHORIZED, else its own."""
    if payment.status == PaymentStatus.AUTHORIZED:
        return payment.authorization_expires_at is not None and payment.authorization_expires_at <= now
    return payment.expires_at <= now


async def sweep_overdue(deps: LifecycleDeps, batch: int = 100) -> int:
    """Expiry passes until one finds fewer than ``batch`` payments due; the number expired. Each pass
    claims payments not claimed by the ones before it, so this ends."""
    expired = 0
    while True:
        done = await expire_due(deps, batch)
        expired += done.expired
        if done.claimed < batch:
            return expired
