"""Stripe's disputes of our payments (``charge.dispute.*``, PROTOCOLS.md §4.2) as
``provider.dispute.updated`` (billing_contracts ``ProviderDisputeUpdatedV1``), written to the outbox in the
webhook's unit of work. Each state is published as Stripe made it (``provider_updated_at`` = the event's
``created``): payments-svc orders them and decides what the tenant hears. A dispute of a charge that is
not one of ours is only recorded."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from billing_contracts.events.disputes import ProviderDispute, ProviderDisputeUpdatedV1

from providers_svc.adapters.base import ProviderUnavailableError
from providers_svc.adapters.stripe import NAME, StripeAdapter
from providers_svc.adapters.stripe.amounts import from_stripe
from providers_svc.domain.stripe_events import VerifiedStripeEvent
from providers_svc.domain.transactions import CallbackResult, Transaction, TransactionStatus
from providers_svc.services.stripe_outcomes import Outcome, id_of, locked_transaction
from providers_svc.services.uow import ProvidersUnitOfWork

DISPUTE_PUBLISHED = "dispute"
# Stripe's dispute events (PROTOCOLS.md §4.2): each is published as provider.dispute.updated.
DISPUTE_EVENTS = frozenset(
    f"charge.dispute.{name}" for name in ("created", "updated", "closed", "funds_withdrawn", "funds_reinstated")
)


def funds_withdrawn(event_type: str, dispute: Mapping[str, Any]) -> bool:
    """Whether Stripe holds the disputed money back now: by the event when it says so, else by the
    dispute's balance transactions (a withdrawal is negative, a reinstatement positive)."""
    if event_type == "charge.dispute.funds_withdrawn":
        return True
    if event_type == "charge.dispute.funds_reinstated":
        return False
    moves = dispute.get("balance_transactions")
    if not isinstance(moves, list):
        return False
    net = sum(m.get("amount", 0) for m in moves if isinstance(m, Mapping) and isinstance(m.get("amount"), int))
    return bool(net < 0)


def _time(value: Any) -> datetime | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**40:
        return datetime.fromtimestamp(value, UTC)
    return None


def dispute_event(
    txn: Transaction, event_type: str, created: datetime, dispute: Mapping[str, Any], causation_id: str
) -> ProviderDisputeUpdatedV1 | None:
    """The ``provider.dispute.updated`` one of Stripe's dispute events is, for our transaction ``txn``;
    None when it names no dispute or no amount of ours. Built here only, so the state published live and
    the one ``GET /internal/verdicts`` hands out again from the inbox row (services/verdicts.py) are one."""
    dispute_id = id_of(dispute.get("id"))
    amount, currency = dispute.get("amount"), str(dispute.get("currency") or "").upper()
    ours = from_stripe(amount, currency) if isinstance(amount, int) and not isinstance(amount, bool) else None
    if dispute_id is None or ours is None:
        return None
    due = dispute.get("evidence_details")
    return ProviderDisputeUpdatedV1(
        tenant_id=txn.tenant_id,
        livemode=txn.livemode,
        correlation_id=txn.payment_id,
        causation_id=causation_id,
        data=ProviderDispute(
            payment_id=txn.payment_id,
            provider=NAME,
            provider_transaction_id=txn.id,
            provider_dispute_id=dispute_id,
            status=str(dispute.get("status") or "needs_response"),
            reason=id_of(dispute.get("reason")),
            amount=ours,
            currency=currency,
            funds_withdrawn=funds_withdrawn(event_type, dispute),
            evidence_due_by=_time(due.get("due_by")) if isinstance(due, Mapping) else None,
            provider_created_at=_time(dispute.get("created")) or created,
            provider_updated_at=created,
            livemode=txn.livemode,
        ),
    )


async def apply_dispute(
    unit: ProvidersUnitOfWork, event: VerifiedStripeEvent, adapter: StripeAdapter, row_id: str
) -> Outcome:
    dispute = event.object
    intent_id = id_of(dispute.get("payment_intent"))
    charge_id = id_of(dispute.get("charge"))
    if intent_id is None and charge_id is not None:
        # An older API version names only the charge: its intent says which payment it is.
        intent_id = id_of((await adapter.api.charge(charge_id)).get("payment_intent"))
    txn = await locked_transaction(unit, adapter, our_id=None, intent_id=intent_id)
    state = dispute_event(txn, event.type, event.created, dispute, row_id) if txn is not None else None
    if txn is None or state is None:
        return Outcome(CallbackResult.UNKNOWN_TRANSACTION.value)
    if txn.status is TransactionStatus.PENDING:
        # Stripe does not order its events: a dispute can come before the success of the charge it
        # disputes. Published now, payments-svc would find the payment not paid and file the dispute as
        # an anomaly for good; refused (503, nothing committed), Stripe sends it again after the success.
        raise ProviderUnavailableError(f"dispute {state.data.provider_dispute_id} came before the success of {txn.id}")
    unit.emit(state)
    # The inbox row's result: what ``GET /internal/verdicts`` finds the published states by.
    return Outcome(DISPUTE_PUBLISHED, txn.id)
