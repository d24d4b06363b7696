"""Anomalies of our refunds at the providers (``provider.anomaly.recorded``, kind
``unexpected_outcome``, ``outcome`` ``"refund"``): evidence a person (through reconciliation) must look
at because the refund's row cannot say it. The ``anomalies`` row names a ``provider_events`` row as
its evidence, as every anomaly of providers-svc does: the webhook's own row, or one written for the
anomaly (the provider's refusal as it was answered)."""

from __future__ import annotations

import json
from datetime import datetime

from billing_contracts.events.anomalies import Anomaly, ProviderAnomalyRecordedV1
from billing_runtime.ids import new_id

from providers_svc.db.repositories import IncomingEvent, NewAnomaly, anomaly_insert, provider_event_insert
from providers_svc.domain.refunds import Refund
from providers_svc.domain.transactions import Transaction
from providers_svc.services.uow import ProvidersUnitOfWork, UowFactory

KIND = "unexpected_outcome"
OUTCOME = "refund"


def queue_refund_anomaly(
    uow: ProvidersUnitOfWork,
    txn: Transaction,
    refund: Refund,
    *,
    evidence_id: str,
    provider_refund_id: str | None,
    detail: str,
    now: datetime,
) -> Anomaly:
    """Queue the anomaly's row and its event on ``uow``; ``evidence_id`` is the ``provider_events`` row
    written in the same unit (unique there: one anomaly per provider event)."""
    anomaly_id = new_id("anm")
    uow.write(
        anomaly_insert(
            NewAnomaly(
                anomaly_id=anomaly_id,
                kind=KIND,
                provider_event_id=evidence_id,
                transaction=txn,
                outcome=OUTCOME,
                amount=refund.amount,
                currency=refund.currency,
                detail=detail,
            ),
            now,
        )
    )
    anomaly = Anomaly(
        anomaly_id=anomaly_id,
        kind=KIND,
        payment_id=txn.payment_id,
        provider=txn.provider,
        provider_transaction_id=txn.id,
        provider_reference=txn.provider_reference,
        amount=refund.amount,
        currency=refund.currency,
        outcome=OUTCOME,
        expected_amount=txn.amount,
        expected_currency=txn.currency,
        evidence_id=evidence_id,
        detail=detail,
        refund_id=refund.id,
        provider_refund_id=provider_refund_id or refund.provider_refund_id,
    )
    uow.emit(
        ProviderAnomalyRecordedV1(
            tenant_id=txn.tenant_id,
            livemode=txn.livemode,
            correlation_id=txn.payment_id,
            causation_id=evidence_id,
            data=anomaly,
        )
    )
    return anomaly


async def record_unknown_outcome(
    uow_factory: UowFactory, txn: Transaction, refund: Refund, code: str, message: str, now: datetime
) -> bool:
    """Record, once per refund, that the provider refused a repeated attempt whose first answer was lost
    (its outcome unknowable): the refusal kept as a ``provider_events`` row (``refund_outcome_unknown:
    <refund id>``) and the anomaly. True when this call recorded it."""
    row_id = new_id("pev")
    detail = (
        f"{txn.provider} refused refund {refund.id} ({code}) when asked again after an answer that was lost: "
        "it may have been made by the first attempt; the refund is left unanswered"
    )
    evidence = IncomingEvent(
        provider=txn.provider,
        external_id=f"refund_outcome_unknown:{refund.id}",
        event_type="refund.outcome_unknown",
        transaction_id=txn.id,
        payload=json.dumps({"refund_id": refund.id, "code": code, "message": message}),
    )
    async with uow_factory() as uow:
        queue_refund_anomaly(uow, txn, refund, evidence_id=row_id, provider_refund_id=None, detail=detail, now=now)
        return await uow.commit_unless_exists(provider_event_insert(row_id, evidence, now, "anomaly"))
