"""A payer's dispute (chargeback) of a payment, as its provider reports it (``provider.dispute.updated``).

Each state is applied exactly once per consumed event (inbox) and only in the provider's order
(``domain/disputes.py``: an older state never lands over a newer one, a closed dispute keeps its
outcome). Applying a state writes, in one statement with the inbox row and only if the payment is still
exactly as read (under its row lock): the dispute row (its UPDATE guarded by the state it replaces),
the payment's ``dispute``, ``amount_disputed``, ``sequence`` and ``updated_at``, a history row, and for
the tenant ``dispute.created`` (the first state we learn) and/or ``dispute.closed`` (a closing state),
in the event log and the outbox. Every change of a dispute changes its payment, so the payment's row
version guards the dispute too: two states of one dispute racing are serialized by the payment's lock,
and the loser is decided again.

The payment's status does not change: a disputed payment stays SUCCEEDED (as Stripe keeps a disputed
PaymentIntent ``succeeded``); what the dispute took is ``amount_disputed``.

A state that cannot be about this payment (no such payment for the tenant, another provider or mode,
another currency, more than the payment, a dispute of a payment never paid, or a dispute id already
held for another payment) is never applied: it is an anomaly, recorded as a refused outcome is
(``services/anomalies.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from billing_contracts.envelope import utcnow
from billing_contracts.events import (
    Anomaly,
    DisputeClosedV1,
    DisputeCreatedV1,
    ProviderDispute,
    ProviderDisputeUpdatedV1,
)
from billing_contracts.events.anomalies import AnomalyKind
from billing_contracts.events.disputes import CLOSED_DISPUTE_STATUSES, OPEN_DISPUTE_STATUSES
from billing_runtime.ids import new_id
from billing_runtime.inbox import inbox_row

from payments_svc.db.disputes import dispute_by_provider_id, dispute_insert, dispute_update
from payments_svc.db.models import Dispute, Payment, inbox
from payments_svc.db.repositories import (
    history_insert,
    payment_snapshot,
    payment_unchanged,
    payment_update,
    was_consumed,
)
from payments_svc.domain.disputes import DisputeState, Verdict, is_closed, verdict
from payments_svc.domain.payment import PaymentStatus
from payments_svc.events.mapping import dispute_event, dispute_snapshot
from payments_svc.services.anomalies import write_anomaly
from payments_svc.services.lifecycle import PROVIDER_EVENTS_CONSUMER, LifecycleDeps
from payments_svc.services.uow import PaymentsUnitOfWork

log = logging.getLogger(__name__)

# A payment the provider captured, by our records: the only ones a dispute can be about.
_CAPTURED = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED})
DISPUTE_STATUSES = OPEN_DISPUTE_STATUSES | CLOSED_DISPUTE_STATUSES
# What a dispute's change writes on its payment.
DISPUTE_COLUMNS = ("updated_at", "sequence", "amount_disputed", "dispute")
# A dispute changes a handful of times in its life, so a few rounds always settle a conflict.
DISPUTE_ATTEMPTS = 5


@dataclass(frozen=True)
class DisputeRefusal:
    kind: AnomalyKind
    detail: str


async def apply_provider_dispute(deps: LifecycleDeps, event: ProviderDisputeUpdatedV1, raw: bytes | None = None) -> str:
    """Apply one state of a dispute, exactly once per event; what it did: ``new``, ``change``,
    ``stale``, ``final`` (``domain/disputes.Verdict``), ``anomaly``, or ``duplicate`` (consumed before).

    Read the payment, then the dispute (both unlocked, outside any transaction), decide in memory, and
    write everything in one statement with the inbox row, conditional on the payment being unchanged;
    if it moved meanwhile, decide again (as ``apply_provider_outcome`` does)."""
    state = event.data
    seen = inbox_row(inbox, PROVIDER_EVENTS_CONSUMER, event.event_id)
    for _ in range(DISPUTE_ATTEMPTS):
        async with deps.uow() as uow:
            # The payment first: a dispute's change that commits between the two reads changes the
            # payment too, so the guard below catches it.
            payment = await payment_snapshot(uow, event.tenant_id, state.payment_id)
            held = await dispute_by_provider_id(uow, state.provider, state.provider_dispute_id)
            # Every decision below rests on the payment (and so the dispute) as read.
            unchanged = payment_unchanged(payment) if payment is not None else None
            done = _decide(uow, payment, held, event, deps.checkout_base_url, raw)
            if await uow.commit_unless_exists(seen, unchanged):
                if isinstance(done, DisputeRefusal):
                    deps.metrics.anomalies.labels(done.kind).inc()
                    return "anomaly"
                return done
        if await was_consumed(deps.uow, PROVIDER_EVENTS_CONSUMER, event.event_id):
            return "duplicate"
    # Redelivered by the bus, and decided again then.
    raise RuntimeError(f"payment {state.payment_id} kept changing while applying dispute event {event.event_id}")


def _decide(
    uow: PaymentsUnitOfWork,
    payment: Payment | None,
    held: Dispute | None,
    event: ProviderDisputeUpdatedV1,
    base_url: str,
    raw: bytes | None,
) -> DisputeRefusal | Verdict:
    """Queue on ``uow`` what the state does to the payment and its dispute as read; what it is."""
    state = event.data
    found = _refusal(payment, held, event)
    if found is not None:
        log.error(
            "dispute %s of payment %s: %s (event %s)",
            state.provider_dispute_id,
            state.payment_id,
            found.detail,
            event.event_id,
        )
        write_anomaly(uow, payment, event, _anomaly(payment, event, found), raw)
        return found
    assert payment is not None
    held_state = None if held is None else DisputeState(held.status, held.funds_withdrawn, held.provider_updated_at)
    decided = verdict(held_state, DisputeState(state.status, state.funds_withdrawn, state.provider_updated_at))
    if decided in (Verdict.STALE, Verdict.FINAL):
        log.info(
            "dispute %s: %s state %s ignored (event %s)",
            state.provider_dispute_id,
            decided,
            state.status,
            event.event_id,
        )
    else:
        _apply(uow, payment, held, event, base_url)
    return decided


def _refusal(payment: Payment | None, held: Dispute | None, event: ProviderDisputeUpdatedV1) -> DisputeRefusal | None:
    state = event.data
    malformed = _malformed(state)
    if malformed is not None:
        return DisputeRefusal("unexpected_outcome", malformed)
    if payment is None:
        # Unknown here, or another tenant's: the same answer, as everywhere.
        return DisputeRefusal("unexpected_outcome", "dispute of a payment that does not exist")
    if held is not None and (held.payment_id != payment.id or held.tenant_id != payment.tenant_id):
        return DisputeRefusal("unexpected_outcome", f"dispute already held for payment {held.payment_id}")
    if state.provider != payment.provider:
        return DisputeRefusal(
            "provider_mismatch", f"dispute from {state.provider}, the payment is with {payment.provider}"
        )
    if state.livemode != payment.livemode:
        return DisputeRefusal("unexpected_outcome", "dispute of the other mode than the payment's")
    if state.currency != payment.currency:
        return DisputeRefusal("currency_mismatch", f"dispute in {state.currency}, payment is in {payment.currency}")
    if payment.status not in _CAPTURED:
        return DisputeRefusal("unexpected_outcome", f"dispute of a payment that is {payment.status}")
    # What the provider took is the bound (a partial capture took less than ``amount``).
    if not 0 < state.amount <= payment.amount_captured:
        detail = (
            f"dispute of {state.amount} {state.currency}, payment captured {payment.amount_captured} {payment.currency}"
        )
        return DisputeRefusal("amount_mismatch", detail)
    if state.status not in DISPUTE_STATUSES:
        # Not one the tenant could be told of (a status this version does not know): kept, not shown.
        return DisputeRefusal("unexpected_outcome", f"dispute status {state.status!r} is not one we know")
    if _withdrawn_after(payment, held, state) > payment.amount_captured:
        detail = f"disputes would withdraw more than the {payment.amount_captured} {payment.currency} captured"
        return DisputeRefusal("amount_mismatch", detail)
    return None


def _malformed(state: ProviderDispute) -> str | None:
    """Why the state cannot be stored or ordered whatever payment it names (None when it can)."""
    if not 0 < len(state.provider_dispute_id) <= PROVIDER_DISPUTE_ID_MAX:
        return f"a provider dispute id of {len(state.provider_dispute_id)} characters"
    times = (state.provider_created_at, state.provider_updated_at, state.evidence_due_by)
    if any(t is not None and t.utcoffset() is None for t in times):
        # Not orderable against the ones held, which are UTC.
        return "a dispute time without a time zone"
    return None


# The ``disputes.provider_dispute_id`` column's size.
PROVIDER_DISPUTE_ID_MAX = 128


def _withdrawn_after(payment: Payment, held: Dispute | None, state: ProviderDispute) -> int:
    """The payment's ``amount_disputed`` once ``state`` replaces ``held``."""
    before = held.amount if held is not None and held.funds_withdrawn else 0
    after = state.amount if state.funds_withdrawn else 0
    return payment.amount_disputed - before + after


def _anomaly(payment: Payment | None, event: ProviderDisputeUpdatedV1, found: DisputeRefusal) -> Anomaly:
    state = event.data
    return Anomaly(
        anomaly_id=new_id("anm"),
        kind=found.kind,
        payment_id=state.payment_id,
        provider=state.provider,
        provider_transaction_id=state.provider_transaction_id,
        amount=state.amount,
        currency=state.currency,
        outcome="dispute",
        expected_amount=payment.amount if payment is not None else None,
        expected_currency=payment.currency if payment is not None else None,
        payment_status=payment.status if payment is not None else None,
        evidence_id=event.event_id,
        detail=f"{found.detail} ({state.status})",
        provider_dispute_id=state.provider_dispute_id,
    )


def _apply(
    uow: PaymentsUnitOfWork, payment: Payment, held: Dispute | None, event: ProviderDisputeUpdatedV1, base_url: str
) -> None:
    """Queue the writes and events of a state that applies (``Verdict.NEW`` or ``CHANGE``)."""
    state = event.data
    now = utcnow()
    dispute = _new_state(held, event, now)
    was_open = held is None or not is_closed(held.status)
    closes = was_open and is_closed(state.status)
    payment.amount_disputed = _withdrawn_after(payment, held, state)
    if _is_latest(payment, dispute):
        payment.dispute = dispute_snapshot(dispute).model_dump(mode="json")
    payment.updated_at = now
    # One step of ``sequence`` per event the tenant sees (and one for a change it sees only on the
    # payment), so a receiver that drops what is not above its last sequence keeps every one.
    announced: list[type[DisputeCreatedV1 | DisputeClosedV1]] = []
    if held is None:
        announced.append(DisputeCreatedV1)
    if closes:
        announced.append(DisputeClosedV1)
    event_id = event.event_id
    for cls in announced:
        payment.sequence += 1
        tenant_event = dispute_event(cls, dispute, payment, base_url, causation_id=event.event_id)
        uow.emit(tenant_event)
        event_id = tenant_event.event_id
    if not announced:
        payment.sequence += 1
    if held is None:
        uow.write(dispute_insert(dispute))
    else:
        uow.write(dispute_update(dispute, held.status, held.provider_updated_at))
    uow.write(payment_update(payment, DISPUTE_COLUMNS))
    uow.write(
        history_insert(
            payment_id=payment.id,
            from_status=payment.status,
            to_status=payment.status,
            actor=f"provider:{state.provider}",
            reason=f"dispute {dispute.id}: {state.status}" + (", funds withdrawn" if state.funds_withdrawn else ""),
            event_id=event_id,
            created_at=now,
        )
    )


def _new_state(held: Dispute | None, event: ProviderDisputeUpdatedV1, now: datetime) -> Dispute:
    state = event.data
    closed_at = None
    if is_closed(state.status):
        # When it closed: kept from the closing state through later changes of the same outcome.
        closed_at = held.closed_at if held is not None and held.closed_at is not None else state.provider_updated_at
    return Dispute(
        id=held.id if held is not None else new_id("dsp"),
        tenant_id=event.tenant_id,
        livemode=state.livemode,
        payment_id=state.payment_id,
        provider=state.provider,
        provider_dispute_id=state.provider_dispute_id,
        status=state.status,
        reason=state.reason,
        amount=state.amount,
        currency=state.currency,
        funds_withdrawn=state.funds_withdrawn,
        evidence_due_by=state.evidence_due_by,
        provider_created_at=held.provider_created_at if held is not None else state.provider_created_at,
        provider_updated_at=state.provider_updated_at,
        closed_at=closed_at,
        created_at=held.created_at if held is not None else now,
        updated_at=now,
    )


def _is_latest(payment: Payment, dispute: Dispute) -> bool:
    """Whether ``dispute`` is the one the payment shows: its own, or one opened no earlier."""
    shown = payment.dispute
    if shown is None or shown.get("id") == dispute.id:
        return True
    return dispute.provider_created_at >= datetime.fromisoformat(str(shown["created_at"]))
