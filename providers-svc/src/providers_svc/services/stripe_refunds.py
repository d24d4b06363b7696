"""What Stripe's refund events mean (PROTOCOLS.md §4.2), inside the webhook's unit of work with the
payment's transaction locked: each refund object an event carries is a verdict, published as
``provider.refund.updated`` (``observed_via: "callback"``) in the webhook's transaction.

- A refund of ours (``metadata.refund_id`` names a ``provider_refunds`` row of this transaction) moves
  that row as the API's answer would (a final verdict is final), with our refund id.
- Any other refund of the payment (made in Stripe's dashboard, or by another integration) is published
  with ``refund_id`` None and Stripe's ``re_...`` id, for payments-svc to create the refund then.

The refund objects are those of ``refund.created|updated|failed`` and ``charge.refund.updated``, and the
ones a ``charge.refunded`` embeds (``charge.refunds.data``, older API versions; newer ones embed none,
and Stripe sends ``refund.*`` events for each refund anyway). Stripe's refund ``status``: ``pending`` and
``requires_action`` are pending, ``succeeded``, ``failed``/``canceled`` failed."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from providers_svc.adapters.stripe.adapter import refund_result
from providers_svc.adapters.stripe.amounts import from_stripe
from providers_svc.db.refunds import RefundVerdict
from providers_svc.domain.refunds import Refund, RefundStatus, may_move
from providers_svc.domain.stripe_events import VerifiedStripeEvent
from providers_svc.domain.transactions import Transaction
from providers_svc.services.refund_anomalies import KIND, queue_refund_anomaly
from providers_svc.services.refund_events import provider_started_refund_event, refund_event
from providers_svc.services.uow import ProvidersUnitOfWork

log = logging.getLogger(__name__)


def refund_objects(event: VerifiedStripeEvent) -> Iterator[Mapping[str, Any]]:
    obj = event.object
    if obj.get("object") == "refund":
        yield obj
        return
    refunds = obj.get("refunds")
    data = refunds.get("data") if isinstance(refunds, Mapping) else None
    if isinstance(data, list):
        yield from (r for r in data if isinstance(r, Mapping) and r.get("object") == "refund")


@dataclass
class RefundsApplied:
    """What a webhook's refunds did: verdicts published, and the anomaly recorded (at most one per
    Stripe event: its ``provider_events`` row is the evidence, and names one anomaly)."""

    published: int = 0
    anomaly: str | None = None


async def apply_refunds(
    unit: ProvidersUnitOfWork, event: VerifiedStripeEvent, txn: Transaction, row_id: str
) -> RefundsApplied:
    """Publish the verdict of every refund of ``txn`` the event carries."""
    applied = RefundsApplied()
    for obj in refund_objects(event):
        if await _apply_one(unit, event, txn, row_id, obj, applied):
            applied.published += 1
    return applied


async def _apply_one(
    unit: ProvidersUnitOfWork,
    event: VerifiedStripeEvent,
    txn: Transaction,
    row_id: str,
    obj: Mapping[str, Any],
    applied: RefundsApplied,
) -> bool:
    stripe_id, amount, currency = obj.get("id"), obj.get("amount"), obj.get("currency")
    if not isinstance(stripe_id, str) or not stripe_id.isprintable() or not 0 < len(stripe_id) <= 255:
        return False
    ours_amount = (
        from_stripe(amount, txn.currency) if isinstance(amount, int) and not isinstance(amount, bool) else None
    )
    if ours_amount is None or ours_amount <= 0 or str(currency).upper() != txn.currency:
        log.error(
            "stripe refund %s of %s (%s %s): not an amount of the payment's, ignored",
            stripe_id,
            txn.id,
            amount,
            currency,
        )
        return False
    result = refund_result(obj)
    verdict = RefundVerdict(
        status=RefundStatus(result.status),
        provider_refund_id=stripe_id,
        failure_code=result.failure_code,
        failure_message=result.failure_message,
        provider_updated_at=event.created,
    )
    metadata = obj.get("metadata")
    ours = metadata.get("refund_id") if isinstance(metadata, Mapping) else None
    refund = await unit.refunds.get(ours, for_update=True) if isinstance(ours, str) and ours else None
    if refund is not None and refund.provider_transaction_id == txn.id:
        if not may_move(refund.status, verdict.status):
            if refund.status.is_final and verdict.status.is_final and verdict.status is not refund.status:
                _contradiction(unit, event, txn, row_id, refund, verdict, applied)
            return False
        await unit.refunds.record(refund.id, verdict, event.created)
        unit.emit(refund_event(refund, verdict, "callback"))
        return True
    unit.emit(
        provider_started_refund_event(
            txn,
            provider_refund_id=stripe_id,
            amount=ours_amount,
            status=verdict.status,
            provider_updated_at=event.created,
            observed_via="callback",
            causation_id=row_id,
            failure_code=verdict.failure_code,
            failure_message=verdict.failure_message,
        )
    )
    return True


def _contradiction(
    unit: ProvidersUnitOfWork,
    event: VerifiedStripeEvent,
    txn: Transaction,
    row_id: str,
    refund: Refund,
    verdict: RefundVerdict,
    applied: RefundsApplied,
) -> None:
    """Stripe's final word against our final one (a refund we hold failed that Stripe says succeeded:
    the payer has the money while payments-svc released it; or one that failed after succeeding): the
    row keeps its verdict (a final verdict is final), and the contradiction is an anomaly, so that
    reconciliation sees the money instead of a log line."""
    detail = (
        f"stripe says refund {verdict.provider_refund_id} ({refund.id}) {verdict.status.value}"
        f" in event {event.event_id}; we hold it {refund.status.value}"
    )
    if applied.anomaly is not None:
        log.error("%s: a second contradiction in one event, logged only", detail)
        return
    log.error("%s: kept, recorded as an anomaly", detail)
    queue_refund_anomaly(
        unit,
        txn,
        refund,
        evidence_id=row_id,
        provider_refund_id=verdict.provider_refund_id,
        detail=detail,
        now=event.created,
    )
    applied.anomaly = KIND
