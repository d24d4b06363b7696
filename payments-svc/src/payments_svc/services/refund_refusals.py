"""Verdicts on refunds that cannot be applied: what is wrong with one (``refusal``, ``held_refund``,
``contradiction``) and how it is kept (``record_refund_anomaly``: an anomaly, as a refused payment
outcome is, ``services/anomalies.py``). Also the anomalies of money a provider refunded beyond the
payment or its reservations, which are applied and recorded both."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from billing_contracts.events import Anomaly, ProviderRefundUpdatedV1
from billing_contracts.events.anomalies import AnomalyKind
from billing_runtime.ids import new_id

from payments_svc.db.models import Payment, Refund
from payments_svc.domain.refunds import CAPTURED, RefundTotals
from payments_svc.services.anomalies import write_anomaly
from payments_svc.services.uow import PaymentsUnitOfWork

log = logging.getLogger(__name__)

# The ``refunds.provider_refund_id`` column's size.
PROVIDER_REFUND_ID_MAX = 128
# Amounts PostgreSQL's BIGINT holds.
_BIGINT = 2**63


@dataclass(frozen=True)
class RefundRefusal:
    kind: AnomalyKind
    detail: str


def refusal(payment: Payment | None, event: ProviderRefundUpdatedV1) -> RefundRefusal | None:
    """Why the verdict cannot be about this payment at all (None when it can)."""
    state = event.data
    if state.provider_refund_id is not None and not 0 < len(state.provider_refund_id) <= PROVIDER_REFUND_ID_MAX:
        return RefundRefusal(
            "unexpected_outcome", f"a provider refund id of {len(state.provider_refund_id)} characters"
        )
    if state.provider_updated_at.utcoffset() is None:
        # Not orderable against the times held, which are UTC.
        return RefundRefusal("unexpected_outcome", "a refund time without a time zone")
    if not 0 < state.amount < _BIGINT:
        return RefundRefusal("amount_mismatch", f"a refund of {state.amount} {state.currency}")
    if payment is None:
        # Unknown here, or another tenant's: the same answer, as everywhere.
        return RefundRefusal("unexpected_outcome", "refund of a payment that does not exist")
    if payment.status not in CAPTURED:
        # Never captured here (so with no provider, or one that took no money): nothing to refund.
        return RefundRefusal("unexpected_outcome", f"refund of a payment that is {payment.status}")
    if state.provider != payment.provider:
        return RefundRefusal(
            "provider_mismatch", f"refund from {state.provider}, the payment is with {payment.provider}"
        )
    if state.livemode != payment.livemode:
        return RefundRefusal("unexpected_outcome", "refund of the other mode than the payment's")
    if state.currency != payment.currency:
        return RefundRefusal("currency_mismatch", f"refund in {state.currency}, payment is in {payment.currency}")
    return None


def held_refund(
    payment: Payment, refunds: list[Refund], event: ProviderRefundUpdatedV1
) -> tuple[Refund | None, RefundRefusal | None]:
    """The refund the verdict is about (None: one the provider started that we do not hold yet)."""
    state = event.data
    prid = state.provider_refund_id
    if state.refund_id is not None:
        held = next((r for r in refunds if r.id == state.refund_id), None)
        if held is None:
            detail = f"verdict on refund {state.refund_id}, which is no refund of payment {payment.id}"
            return None, RefundRefusal("unexpected_outcome", detail)
    elif prid is None:
        return None, RefundRefusal("unexpected_outcome", "a refund the provider started, without its id")
    else:
        held = next((r for r in refunds if r.provider_refund_id == prid), None)
    if prid is not None:
        other = next((r for r in refunds if r.provider_refund_id == prid and r is not held), None)
        if other is not None:
            return None, RefundRefusal("unexpected_outcome", f"the provider's refund {prid} is refund {other.id}")
    if held is not None and prid is not None and held.provider_refund_id not in (None, prid):
        detail = f"refund {held.id} is the provider's {held.provider_refund_id}, not {prid}"
        return None, RefundRefusal("unexpected_outcome", detail)
    return held, None


def contradiction(held: Refund, event: ProviderRefundUpdatedV1) -> RefundRefusal | None:
    """A verdict naming another amount than the refund's: the provider did something we did not ask."""
    state = event.data
    if state.amount != held.amount:
        return RefundRefusal(
            "amount_mismatch", f"refund {held.id} is of {held.amount}, the provider says {state.amount}"
        )
    return None


def excess(payment: Payment, before: RefundTotals, after: RefundTotals) -> RefundRefusal | None:
    """The anomaly of a verdict that took the payment's refunds beyond its amount (None when none):
    beyond it in money returned (``refund_exceeds_payment``), or in money returned and pending
    (``refund_over_reserved``: e.g. a refund made in the provider's dashboard while one of ours is
    pending; it may settle when ours fails)."""
    if after.over_refunded > before.over_refunded:
        detail = f"refunds now return {after.over_refunded} {payment.currency} more than the payment's {payment.amount}"
        return RefundRefusal("refund_exceeds_payment", detail)
    if after.over_reserved > before.over_reserved:
        detail = (
            f"refunds succeeded and pending now hold {after.over_reserved} {payment.currency} more than the"
            f" payment's {payment.amount}"
        )
        return RefundRefusal("refund_over_reserved", detail)
    return None


def record_refund_anomaly(
    uow: PaymentsUnitOfWork,
    payment: Payment | None,
    event: ProviderRefundUpdatedV1,
    found: RefundRefusal,
    raw: bytes | None,
    *,
    refund_id: str | None = None,
) -> None:
    state = event.data
    log.error("refund verdict for payment %s: %s (event %s)", state.payment_id, found.detail, event.event_id)
    anomaly = Anomaly(
        anomaly_id=new_id("anm"),
        kind=found.kind,
        payment_id=state.payment_id,
        provider=state.provider,
        provider_transaction_id=state.provider_transaction_id,
        amount=state.amount,
        currency=state.currency,
        outcome="refund",
        expected_amount=payment.amount if payment is not None else None,
        expected_currency=payment.currency if payment is not None else None,
        payment_status=payment.status if payment is not None else None,
        evidence_id=event.event_id,
        detail=f"{found.detail} (refund {state.status})",
        refund_id=refund_id or state.refund_id,
        provider_refund_id=state.provider_refund_id,
    )
    write_anomaly(uow, payment, event, anomaly, raw)
