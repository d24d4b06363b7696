"""The verdicts providers-svc holds, as the events that published them (``GET /internal/verdicts``):
what ``reconciliation-svc rebuild`` refills its providers' side from when its database is lost.

Five kinds, walked one after the other, each by its own keyset (``db/verdicts.py``): transactions with
a final outcome (``provider.payment.succeeded|failed``), our refunds' published verdicts, Payme's
cancels after perform, Stripe's refunds made outside our API (``provider.refund.updated`` with no
refund id of ours) and the states of Stripe's disputes of our payments (``provider.dispute.updated``).
Each is rebuilt from the rows as ``queue_outcome``, ``refund_event``, ``provider_started_refund_event``
and ``dispute_event`` built it; the fields no row keeps are named where they are chosen.

A row written or changed after the walk passed it is not walked again: its event is published after
its commit, so it reaches reconciliation after the rebuild's transaction, and applies on top of it."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from billing_contracts.envelope import EventBase
from billing_contracts.events.providers import (
    ProviderPaymentFailedV1,
    ProviderPaymentOutcome,
    ProviderPaymentSucceededV1,
)

from providers_svc.adapters.stripe.adapter import refund_result
from providers_svc.adapters.stripe.amounts import from_stripe
from providers_svc.db import verdicts as reads
from providers_svc.db.models import ProviderEventRow, ProviderTransactionRow
from providers_svc.db.payme import PaymeReversalRow
from providers_svc.db.refunds import ProviderRefundRow, RefundVerdict, to_refund
from providers_svc.db.repositories import to_transaction
from providers_svc.db.stripe_objects import StripeObjectRow
from providers_svc.domain.refunds import RefundStatus
from providers_svc.domain.transactions import TransactionStatus
from providers_svc.services.refund_events import provider_started_refund_event, refund_event
from providers_svc.services.stripe_disputes import DISPUTE_PUBLISHED, dispute_event
from providers_svc.services.stripe_webhooks import parse_event
from providers_svc.services.uow import UowFactory

# The kinds in the order they are walked; a cursor is ``<kind>:<key>``.
KINDS = ("payments", "refunds", "payme_reversals", "stripe_refunds", "disputes")
_KEY = re.compile(r"[A-Za-z0-9_\-]{1,255}")


class BadCursor(ValueError):
    """An ``after`` that no page of this route handed out."""


@dataclass(frozen=True)
class Cursor:
    kind: str
    # The last key walked in that kind (Stripe refunds': account id and Stripe id; disputes: the inbox row id).
    key: tuple[str, ...]

    def encode(self) -> str:
        return ":".join((self.kind, *self.key))

    @classmethod
    def decode(cls, text: str) -> Cursor:
        kind, _, rest = text.partition(":")
        key = tuple(rest.split(":"))
        width = 2 if kind == "stripe_refunds" else 1
        if kind not in KINDS or len(key) != width or not all(_KEY.fullmatch(part) for part in key):
            raise BadCursor(text)
        return cls(kind, key)


@dataclass(frozen=True)
class VerdictPage:
    events: list[EventBase]
    # Where the next page starts; None: every verdict was walked.
    next: Cursor | None


Item = tuple[EventBase | None, tuple[str, ...]]


def transaction_outcome(settled: reads.SettledTransaction) -> EventBase:
    """The ``provider.payment.succeeded|failed`` ``queue_outcome`` published for this transaction.

    ``occurred_at`` is not kept: the row's ``updated_at`` is the settling write's clock, a moment before
    the event was built (and no later write touches a final transaction), so the original event, if it
    is delivered again, replaces this copy with the same verdict, and any later event is later still."""
    t = settled.row
    failed = t.status == TransactionStatus.FAILED.value
    event_cls = ProviderPaymentFailedV1 if failed else ProviderPaymentSucceededV1
    return event_cls(
        tenant_id=t.tenant_id,
        livemode=t.livemode,
        occurred_at=t.updated_at,
        correlation_id=t.payment_id,
        data=ProviderPaymentOutcome(
            livemode=t.livemode,
            payment_id=t.payment_id,
            provider=t.provider,
            provider_transaction_id=t.id,
            provider_reference=t.provider_reference,
            # What a (manual) capture took once succeeded; the amount asked for otherwise.
            amount=t.amount if failed or t.captured_amount is None else t.captured_amount,
            currency=t.currency,
            failure_code=t.failure_code if failed else None,
            failure_message=t.failure_message if failed else None,
            account_id=t.account_id,
            observed_via="status_check" if settled.by_status_check else "callback",
        ),
    )


def our_refund_verdict(r: ProviderRefundRow) -> EventBase:
    """The ``provider.refund.updated`` of the refund's published verdict, as ``refund_event`` built it.

    ``observed_via`` is not kept (the provider's answer to our call, its callback, or a status check):
    ``api``, the contract's default, is given; reconciliation keeps it as evidence and orders nothing by
    it. The verdict's order is ``provider_updated_at``, which the row keeps exactly."""
    verdict = RefundVerdict(
        status=RefundStatus(r.status),
        provider_refund_id=r.provider_refund_id,
        failure_code=r.failure_code,
        failure_message=r.failure_message,
        # Always set with a verdict (``RefundRepository.record``); the row's last change otherwise.
        provider_updated_at=r.provider_updated_at or r.updated_at,
    )
    return refund_event(to_refund(r), verdict, "api").model_copy(update={"occurred_at": r.updated_at})


def payme_reversal_verdict(v: PaymeReversalRow, t: ProviderTransactionRow) -> EventBase:
    """The ``provider.refund.updated`` Payme's Cancel of a performed transaction published: the whole
    amount back to the payer, at Payme's cancel time, under Payme's id, with no refund id of ours (even
    once payments-svc's refund exists: reconciliation keys a provider-started refund by Payme's id)."""
    event = provider_started_refund_event(
        to_transaction(t),
        provider_refund_id=v.payme_id,
        amount=v.amount,
        status=RefundStatus.SUCCEEDED,
        provider_updated_at=datetime.fromtimestamp(v.cancel_time / 1000, UTC),
        observed_via="callback",
        causation_id=v.id,
    )
    return event.model_copy(update={"occurred_at": v.created_at})


def stripe_refund_verdict(o: StripeObjectRow, t: ProviderTransactionRow) -> EventBase | None:
    """The ``provider.refund.updated`` of the newest state projected of a refund Stripe made outside
    our API (``stripe_refunds.py`` publishes every state a webhook carries; this is the last one, its
    time the webhook event's). None for an amount that is none of the payment's, as the webhook skips.

    Not recoverable: a refund only ever embedded in a ``charge.refunded`` (older Stripe API versions)
    is not projected as a refund object, so it has no row here; nor the webhook's event row (the
    live event's cause)."""
    amount = from_stripe(o.amount, t.currency) if o.amount is not None else None
    if amount is None or amount <= 0 or (o.currency or "").upper() != t.currency:
        return None
    result = refund_result(o.data)
    event = provider_started_refund_event(
        to_transaction(t),
        provider_refund_id=o.stripe_id,
        amount=amount,
        status=RefundStatus(result.status),
        provider_updated_at=o.version_time,
        observed_via="callback",
        causation_id=None,
        failure_code=result.failure_code,
        failure_message=result.failure_message,
    )
    return event.model_copy(update={"occurred_at": o.updated_at})


def dispute_verdict(e: ProviderEventRow, t: ProviderTransactionRow) -> EventBase | None:
    """The ``provider.dispute.updated`` one Stripe dispute event published, rebuilt from its inbox row
    (the body as received, verified then) and its transaction, as ``apply_dispute`` built it.

    Every published state is served, not only each dispute's newest: reconciliation keeps the money a
    dispute moved as two times merged over all its states (``withdrawn_at``, the earliest state with
    the funds withdrawn; ``released_at``, the latest without), and the newest state gives neither (a
    lost dispute's newest is its closing, long after the withdrawal; a won one's says nothing of when
    the funds left). Nor does ``stripe_objects``, which keeps a dispute's newest version only. Applied
    through the live write, the same states give the same row, whatever order they come in.

    ``occurred_at`` is not kept: the inbox row's ``received_at``, a moment before the live event was
    built (reconciliation orders disputes by ``provider_updated_at``, which is exact)."""
    # Parsed once already, when it was verified and applied: a stored body is well formed.
    stripe = parse_event(e.payload)
    event = dispute_event(to_transaction(t), stripe.type, stripe.created, stripe.object, e.id)
    return event.model_copy(update={"occurred_at": e.received_at}) if event is not None else None


Reader = Callable[[UowFactory, tuple[str, ...] | None, int], Awaitable[list[Item]]]


async def _payments(uow: UowFactory, after: tuple[str, ...] | None, limit: int) -> list[Item]:
    async with uow() as unit:
        rows = await reads.settled_transactions(unit.session, after[0] if after else None, limit)
    return [(transaction_outcome(s), (s.row.id,)) for s in rows]


async def _refunds(uow: UowFactory, after: tuple[str, ...] | None, limit: int) -> list[Item]:
    async with uow() as unit:
        rows = await reads.published_refunds(unit.session, after[0] if after else None, limit)
    return [(our_refund_verdict(r), (r.id,)) for r in rows]


async def _payme(uow: UowFactory, after: tuple[str, ...] | None, limit: int) -> list[Item]:
    async with uow() as unit:
        rows = await reads.payme_reversals(unit.session, after[0] if after else None, limit)
    return [(payme_reversal_verdict(v, t), (v.id,)) for v, t in rows]


async def _stripe(uow: UowFactory, after: tuple[str, ...] | None, limit: int) -> list[Item]:
    async with uow() as unit:
        cursor = (after[0], after[1]) if after else None
        rows = await reads.stripe_started_refunds(unit.session, cursor, limit)
    return [(stripe_refund_verdict(o, t), (o.account_id, o.stripe_id)) for o, t in rows]


async def _disputes(uow: UowFactory, after: tuple[str, ...] | None, limit: int) -> list[Item]:
    async with uow() as unit:
        rows = await reads.published_disputes(unit.session, DISPUTE_PUBLISHED, after[0] if after else None, limit)
    return [(dispute_verdict(e, t), (e.id,)) for e, t in rows]


_READERS: dict[str, Reader] = {
    "payments": _payments,
    "refunds": _refunds,
    "payme_reversals": _payme,
    "stripe_refunds": _stripe,
    "disputes": _disputes,
}


async def verdict_page(uow: UowFactory, after: Cursor | None, limit: int) -> VerdictPage:
    """Up to ``limit`` verdicts after ``after`` (None: from the first), moving on to the next kind
    when one runs out within the page."""
    start = KINDS.index(after.kind) if after is not None else 0
    events: list[EventBase] = []
    read = 0
    for kind in KINDS[start:]:
        key = after.key if after is not None and kind == after.kind else None
        items = await _READERS[kind](uow, key, limit - read)
        read += len(items)
        # A row skipped (a Stripe refund of another amount) counts against the page and moves the
        # cursor past it all the same.
        events.extend(event for event, _key in items if event is not None)
        if read == limit:
            return VerdictPage(events, Cursor(kind, items[-1][1]))
    return VerdictPage(events, None)
