"""A provider's verdict on a refund (``provider.refund.updated``), applied exactly once per event.

All in one transaction: the inbox row first (a redelivery stops there, and a concurrent one waits for
this one and then stops), the payment locked (``FOR UPDATE``: verdicts and new refunds of one payment
queue on that row), its refunds read, the verdict decided (``domain/refunds.py``), and what it
changes written at commit: the refund, the payment's refund totals (recomputed from its refunds,
REF-5), its status and ``sequence`` when money went back, a history row, the tenant events
(``refund.created|succeeded|failed``, outbox and event log) and any anomaly.

- ``succeeded``: the refund SUCCEEDED, ``amount_refunded`` grows, the payment becomes
  PARTIALLY_REFUNDED or REFUNDED, ``refund.succeeded``.
- ``failed``: the refund FAILED, its reservation is released (refundable again), ``refund.failed``.
- ``pending``: the provider's id of the refund is recorded; nothing else changes.

A refund the provider started itself (``refund_id`` None) becomes a refund row the first time we hear
of it, found again on repeats by ``(payment_id, provider_refund_id)``: ``refund.created``, then its
outcome if the verdict is final. Its money is a fact: when it does not fit beside the pending refunds
(or the payment), the totals are capped at the payment's amount and the excess is an anomaly
(``refund_over_reserved``, ``refund_exceeds_payment``).

A verdict that cannot be about the payment (no such payment for the tenant, another provider, mode or
currency, a payment never captured, a refund of another payment, another amount, a provider refund id
held by another refund, or the other final state of a final refund) is never applied: it is an
anomaly, recorded as a refused outcome is (``services/anomalies.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from billing_contracts.envelope import utcnow
from billing_contracts.events import (
    ProviderRefundUpdatedV1,
    RefundCreatedV1,
    RefundFailedV1,
    RefundSucceededV1,
)
from billing_contracts.events.anomalies import AnomalyKind
from billing_runtime.ids import new_id
from billing_runtime.inbox import record_once

from payments_svc.db.models import Payment, Refund, inbox
from payments_svc.db.parked_verdicts import NOT_CAPTURED_YET, park, unpark
from payments_svc.db.refunds import refunds_of_payment
from payments_svc.db.repositories import PaymentRepository, history_insert
from payments_svc.domain.payment import PaymentStatus, check_transition
from payments_svc.domain.refunds import (
    FROM_PROVIDER,
    RefundOrigin,
    RefundState,
    RefundStatus,
    RefundTotals,
    Verdict,
    status_after_refunds,
    totals,
    verdict,
)
from payments_svc.events.mapping import RefundEvent, refund_event
from payments_svc.services.lifecycle import PROVIDER_EVENTS_CONSUMER, LifecycleDeps
from payments_svc.services.refund_refusals import (
    RefundRefusal,
    contradiction,
    excess,
    held_refund,
    record_refund_anomaly,
    refusal,
)
from payments_svc.services.uow import PaymentsUnitOfWork

log = logging.getLogger(__name__)


@dataclass
class Done:
    """What a verdict did: the ``events_consumed`` outcome, the refund events to count after commit
    (provider, ``created|succeeded|failed``) and the anomaly recorded, if any."""

    outcome: str
    counted: list[tuple[str, str]] = field(default_factory=list)
    anomaly: AnomalyKind | None = None


async def apply_provider_refund(
    deps: LifecycleDeps, event: ProviderRefundUpdatedV1, raw: bytes | None = None, *, parked: bool = False
) -> str:
    """Apply one verdict on a refund, exactly once per event; what it did (``Done.outcome``):
    ``new``, ``pending``, ``succeeded``, ``failed``, ``stale``, ``final``, ``anomaly``, ``parked`` or
    ``duplicate``. ``raw`` is the message as received, kept with an anomaly.

    A verdict on a payment not captured yet (CREATED/PROVIDER_PENDING: its success may still be on its
    way) is parked (``parked_refund_verdicts``), in the transaction of its inbox row, and applied by
    ``services/parked_verdicts.py`` (``parked=True``) once the payment's status settled: the verdict is
    never lost and the queue never waits for it. A parked replay's once-guard is its parked row."""
    state = event.data
    async with deps.uow() as uow:
        if parked:
            if not await unpark(uow.session, event.event_id):
                return "duplicate"
        elif not await record_once(uow.session, inbox, PROVIDER_EVENTS_CONSUMER, event.event_id):
            return "duplicate"
        payment = await PaymentRepository(uow.session, event.tenant_id).get(state.payment_id, for_update=True)
        if payment is not None and payment.status in NOT_CAPTURED_YET:
            if parked:
                return "parked"  # still waiting: the rollback leaves it parked
            park(uow.session, event, raw)
            await uow.commit()
            log.info("refund verdict %s on payment %s (%s): parked", event.event_id, payment.id, payment.status)
            return "parked"
        refunds = await refunds_of_payment(uow.session, payment.id) if payment is not None else []
        done = _decide(uow, payment, refunds, event, deps.checkout_base_url, raw)
        await uow.commit()
    # After the commit, and only for the delivery that committed: once per consumed event.
    if done.anomaly is not None:
        deps.metrics.anomalies.labels(done.anomaly).inc()
    for provider, what in done.counted:
        deps.metrics.refunds.labels(provider, what).inc()
    return done.outcome


def _decide(
    uow: PaymentsUnitOfWork,
    payment: Payment | None,
    refunds: list[Refund],
    event: ProviderRefundUpdatedV1,
    base_url: str,
    raw: bytes | None,
) -> Done:
    state = event.data
    found = refusal(payment, event)
    held: Refund | None = None
    if found is None:
        assert payment is not None
        held, found = held_refund(payment, refunds, event)
    if found is None and held is not None:
        found = contradiction(held, event)
    if found is not None:
        record_refund_anomaly(uow, payment, event, found, raw)
        return Done("anomaly", anomaly=found.kind)
    assert payment is not None
    if held is None:
        return _provider_started(uow, payment, refunds, event, base_url, raw)
    new = RefundState(FROM_PROVIDER[state.status], state.provider_updated_at)
    decided = verdict(RefundState(RefundStatus(held.status), held.provider_updated_at), new)
    if decided in (Verdict.STALE, Verdict.FINAL):
        log.info("refund %s: %s verdict %s ignored (event %s)", held.id, decided, state.status, event.event_id)
        return Done(str(decided))
    if decided is Verdict.CONFLICT:
        detail = f"refund {held.id} is {held.status}; the provider now says {state.status}"
        record_refund_anomaly(uow, payment, event, RefundRefusal("unexpected_outcome", detail), raw)
        return Done("anomaly", anomaly="unexpected_outcome")
    if new.status is RefundStatus.PENDING:
        _pending(held, event)
        return Done("pending")
    return _final(uow, payment, refunds, held, event, base_url, raw)


def _pending(held: Refund, event: ProviderRefundUpdatedV1) -> None:
    """A newer pending state: the provider's id of the refund is recorded (a change of the refund)."""
    state = event.data
    held.provider_updated_at = state.provider_updated_at
    if state.provider_refund_id is not None and held.provider_refund_id is None:
        held.provider_refund_id = state.provider_refund_id
        held.sequence += 1
        held.updated_at = utcnow()


def _provider_started(
    uow: PaymentsUnitOfWork,
    payment: Payment,
    refunds: list[Refund],
    event: ProviderRefundUpdatedV1,
    base_url: str,
    raw: bytes | None,
) -> Done:
    """The first verdict on a refund the provider started: the refund row and ``refund.created`` (the
    refund PENDING, the payment as it was), then its final verdict as for any refund."""
    state = event.data
    now = utcnow()
    refund = Refund(
        id=new_id("rfnd"),
        tenant_id=payment.tenant_id,
        livemode=payment.livemode,
        payment_id=payment.id,
        provider=state.provider,
        provider_refund_id=state.provider_refund_id,
        origin=RefundOrigin.PROVIDER,
        status=RefundStatus.PENDING,
        amount=state.amount,
        currency=state.currency,
        reason=None,
        failure_code=None,
        failure_message=None,
        sequence=1,
        provider_updated_at=state.provider_updated_at,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(refund)
    _announce(uow, RefundCreatedV1, refund, payment, event, base_url, "started by the provider")
    before = _totals(payment, refunds)
    refunds = [*refunds, refund]
    if FROM_PROVIDER[state.status] is RefundStatus.PENDING:
        after = _settle(payment, refunds)
        return Done("new", [(refund.provider, "created")], _excess(uow, payment, before, after, event, raw, refund))
    done = _final(uow, payment, refunds, refund, event, base_url, raw, before=before)
    return Done("new", [(refund.provider, "created"), *done.counted], done.anomaly)


def _final(
    uow: PaymentsUnitOfWork,
    payment: Payment,
    refunds: list[Refund],
    refund: Refund,
    event: ProviderRefundUpdatedV1,
    base_url: str,
    raw: bytes | None,
    *,
    before: RefundTotals | None = None,
) -> Done:
    """The refund's final verdict: the refund, its payment's totals (and status), ``refund.<outcome>``.
    ``before``: the payment's totals before this verdict (by default, from ``refunds`` as they are)."""
    state = event.data
    before = before if before is not None else _totals(payment, refunds)
    status = FROM_PROVIDER[state.status]
    refund.status = status
    if status is RefundStatus.FAILED:
        refund.failure_code = (state.failure_code or "").replace("\x00", "")[:64] or "refund_failed"
        # PostgreSQL text holds no NUL: a provider's message must not make the verdict unstorable.
        refund.failure_message = (state.failure_message or "").replace("\x00", "") or "The provider refused the refund."
    refund.provider_refund_id = refund.provider_refund_id or state.provider_refund_id
    refund.provider_updated_at = state.provider_updated_at
    refund.sequence += 1
    refund.updated_at = utcnow()
    succeeded = status is RefundStatus.SUCCEEDED
    # The payment changes first, so the event carries it as the refund leaves it.
    previous = PaymentStatus(payment.status)
    after = _settle(payment, refunds)
    cls: type[RefundEvent] = RefundSucceededV1 if succeeded else RefundFailedV1
    outcome = "succeeded" if succeeded else "failed"
    _announce(uow, cls, refund, payment, event, base_url, outcome, previous)
    return Done(outcome, [(refund.provider, outcome)], _excess(uow, payment, before, after, event, raw, refund))


def _totals(payment: Payment, refunds: list[Refund]) -> RefundTotals:
    succeeded = sum(r.amount for r in refunds if r.status == RefundStatus.SUCCEEDED)
    pending = sum(r.amount for r in refunds if r.status == RefundStatus.PENDING)
    return totals(payment.amount_captured, succeeded, pending)


def _settle(payment: Payment, refunds: list[Refund]) -> RefundTotals:
    """Set the payment's refund totals from its refunds (REF-5); when money went back, also its status
    (PARTIALLY_REFUNDED/REFUNDED, through the state machine: PAY-1), ``sequence`` and ``updated_at``."""
    after = _totals(payment, refunds)
    payment.refund_reserved = after.refund_reserved
    if after.amount_refunded != payment.amount_refunded:
        target = status_after_refunds(payment.amount_captured, after.amount_refunded)
        if target != payment.status:
            check_transition(PaymentStatus(payment.status), target)
        payment.amount_refunded = after.amount_refunded
        payment.status = target
        payment.sequence += 1
        payment.updated_at = utcnow()
    return after


def _announce(
    uow: PaymentsUnitOfWork,
    cls: type[RefundEvent],
    refund: Refund,
    payment: Payment,
    event: ProviderRefundUpdatedV1,
    base_url: str,
    what: str,
    previous: PaymentStatus | None = None,
) -> None:
    """Emit the tenant event of the refund and its payment as they are now, with a history row."""
    tenant_event = refund_event(cls, refund, payment, base_url, causation_id=event.event_id)
    uow.emit(tenant_event)
    uow.write(
        history_insert(
            payment_id=payment.id,
            from_status=previous if previous is not None else payment.status,
            to_status=payment.status,
            actor=f"provider:{event.data.provider}",
            reason=f"refund {refund.id}: {refund.amount} {refund.currency} {what}",
            event_id=tenant_event.event_id,
            created_at=refund.updated_at,
        )
    )


def _excess(
    uow: PaymentsUnitOfWork,
    payment: Payment,
    before: RefundTotals,
    after: RefundTotals,
    event: ProviderRefundUpdatedV1,
    raw: bytes | None,
    refund: Refund,
) -> AnomalyKind | None:
    """Record what this verdict took beyond the payment (over-refunded) or beyond what its pending
    refunds leave (over-reserved) as an anomaly; the money moved, our totals stop at the amount."""
    found = excess(payment, before, after)
    if found is None:
        return None
    record_refund_anomaly(uow, payment, event, found, raw, refund_id=refund.id)
    return found.kind
