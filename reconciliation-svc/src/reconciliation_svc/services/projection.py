"""Applying one consumed event to the projection: the inbox row and the guarded upserts in one
transaction (REC-2, REC-3, REC-4). Anomaly events become ``anomaly`` discrepancies, once each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from billing_contracts.envelope import EventBase, utcnow
from billing_contracts.events import (
    Anomaly,
    PaymentAnomalyRecordedV1,
    ProviderAnomalyRecordedV1,
    ProviderDisputeUpdatedV1,
    ProviderPaymentFailedV1,
    ProviderPaymentSucceededV1,
    ProviderRefundUpdatedV1,
)
from billing_contracts.events.payments import PaymentData
from billing_contracts.events.refunds import RefundData
from billing_runtime.inbox import record_once
from sqlalchemy import Update
from sqlalchemy.dialects.postgresql import Insert

from reconciliation_svc.db.discrepancies import record_discrepancy
from reconciliation_svc.db.disputes import upsert_dispute
from reconciliation_svc.db.models import inbox
from reconciliation_svc.db.projection import (
    provider_account_filed,
    upsert_payment,
    upsert_provider_refund,
    upsert_provider_transaction,
    upsert_refund,
)
from reconciliation_svc.domain.discrepancies import NewDiscrepancy, anomaly_key
from reconciliation_svc.services.uow import ReconUnitOfWork

CONSUMER = "reconciliation.events"


@dataclass(frozen=True)
class ProjectionDeps:
    uow: Callable[[], ReconUnitOfWork]
    # How long after an object became pending the janitor first asks about it.
    first_check: timedelta


def projection_writes(event: EventBase, first_check: timedelta) -> list[Insert | Update] | None:
    """The upserts an event makes, or None for an event the projection does not take."""
    data = getattr(event, "data", None)
    if isinstance(data, RefundData):
        return [
            upsert_refund(data.refund, event.tenant_id, first_check),
            upsert_payment(data.payment, event.tenant_id, first_check),
        ]
    if isinstance(data, PaymentData):
        return [upsert_payment(data.payment, event.tenant_id, first_check)]
    if isinstance(event, ProviderPaymentSucceededV1 | ProviderPaymentFailedV1):
        status = "succeeded" if isinstance(event, ProviderPaymentSucceededV1) else "failed"
        writes: list[Insert | Update] = [upsert_provider_transaction(event.data, status, event.occurred_at, utcnow())]
        if event.data.account_id is not None:
            writes.append(provider_account_filed(event.data.payment_id, event.data.account_id))
        return writes
    if isinstance(event, ProviderRefundUpdatedV1):
        return [upsert_provider_refund(event.data, utcnow())]
    if isinstance(event, ProviderDisputeUpdatedV1):
        # Each state of a dispute, for the money it moved (withdrawn, reinstated).
        return [upsert_dispute(event.data, event.tenant_id, utcnow())]
    return None


def anomaly_discrepancy(event: ProviderAnomalyRecordedV1 | PaymentAnomalyRecordedV1) -> NewDiscrepancy:
    """The discrepancy an anomaly is: the evidence is the anomaly itself (what was received, ``theirs``)
    and what the publisher held for the payment (``ours``)."""
    anomaly: Anomaly = event.data
    ours: dict[str, Any] = {
        "payment_id": anomaly.payment_id,
        "amount": anomaly.expected_amount,
        "currency": anomaly.expected_currency,
        "status": anomaly.payment_status,
    }
    theirs = {**anomaly.model_dump(mode="json"), "event_id": event.event_id, "source": event.source}
    detail = f"{event.source} recorded {anomaly.kind}" + (f": {anomaly.detail}" if anomaly.detail else "")
    return NewDiscrepancy(
        kind="anomaly",
        provider=anomaly.provider,
        dedupe_key=anomaly_key(event.source, anomaly.anomaly_id),
        detail=detail,
        tenant_id=event.tenant_id,
        payment_id=anomaly.payment_id,
        provider_reference=anomaly.provider_reference,
        ours=ours,
        theirs=theirs,
        detected_at=event.occurred_at,
    )


async def apply_event(deps: ProjectionDeps, event: EventBase) -> str:
    """Apply ``event`` once; the outcome for ``events_consumed``: applied | recorded (an anomaly) |
    duplicate | ignored. A failure raises (the bus holds the message on an outage, retries and then
    dead-letters it otherwise) and leaves nothing written."""
    is_anomaly = isinstance(event, ProviderAnomalyRecordedV1 | PaymentAnomalyRecordedV1)
    writes = None if is_anomaly else projection_writes(event, deps.first_check)
    if writes is None and not is_anomaly:
        return "ignored"
    async with deps.uow() as unit:
        if not await record_once(unit.session, inbox, CONSUMER, event.event_id):
            return "duplicate"
        if isinstance(event, ProviderAnomalyRecordedV1 | PaymentAnomalyRecordedV1):
            # The dedupe key is the anomaly's own id: a copy under another event id adds nothing.
            new = await record_discrepancy(unit.session, anomaly_discrepancy(event))
            await unit.commit()
            return "recorded" if new else "duplicate"
        for stmt in writes or []:
            await unit.session.execute(stmt)
        await unit.commit()
    return "applied"
