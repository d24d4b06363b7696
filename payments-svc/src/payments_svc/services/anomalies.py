"""Evidence of money: a verified provider outcome the state machine refuses (a success for a payment
already final or never started, for another amount, currency or mode, or from another provider) never
moves the payment (PAY-1); it is recorded instead, for reconciliation, in the same statement as the
consumed event's inbox row (PAY-5): an ``anomalies`` row keeping the event as received, a history row,
and ``payment.anomaly.recorded`` through the outbox (internal: never a webhook, never in the log)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing_contracts.envelope import EventBase, utcnow
from billing_contracts.events import (
    Anomaly,
    PaymentAnomalyRecordedV1,
    ProviderPaymentAuthorizedV1,
    ProviderPaymentFailedV1,
    ProviderPaymentSucceededV1,
)
from billing_contracts.events.anomalies import AnomalyKind
from billing_runtime.db import table_of
from billing_runtime.ids import new_id
from billing_runtime.writes import InsertRows

from payments_svc.db.models import Payment, PaymentAnomaly, PaymentAttempt
from payments_svc.db.repositories import history_insert
from payments_svc.domain.payment import CAPTURED, CaptureMethod, PaymentStatus
from payments_svc.services.uow import PaymentsUnitOfWork

ProviderOutcome = ProviderPaymentSucceededV1 | ProviderPaymentFailedV1 | ProviderPaymentAuthorizedV1


@dataclass(frozen=True)
class Refusal:
    """Why an outcome cannot be applied: the anomaly's kind and a sentence for people."""

    kind: AnomalyKind
    detail: str


def refusal(payment: Payment | None, event: ProviderOutcome, attempt: PaymentAttempt | None = None) -> Refusal | None:
    """The anomaly ``event`` is for ``payment`` as read, or None when the state machine may apply it
    (or it is a decline that changes nothing and moved no money, or a capture already applied).
    ``attempt`` is the payment's attempt the verdict names (by its provider transaction), if it has one."""
    outcome = event.data
    succeeded = isinstance(event, ProviderPaymentSucceededV1)
    authorized = isinstance(event, ProviderPaymentAuthorizedV1)
    if payment is None:
        if succeeded or authorized:
            return Refusal("unexpected_outcome", f"provider {_word(event)} for a payment that does not exist")
        return None
    # A verdict on one of the payment's attempts that is no longer its active one (failed, abandoned).
    ended = attempt is not None and attempt.provider_transaction_id != payment.provider_transaction_id
    if not ended and payment.provider is not None and outcome.provider != payment.provider:
        detail = f"outcome from {outcome.provider}, but the payment is with {payment.provider}"
        return Refusal("provider_mismatch", detail)
    if outcome.livemode != payment.livemode:
        # The sandbox (a test provider) never moves a live payment, and a live account never a test one.
        detail = f"{_mode(outcome.livemode)}-mode outcome for a {_mode(payment.livemode)} payment"
        return Refusal("unexpected_outcome", detail)
    if authorized:
        return _authorization_refusal(payment, event)
    if not succeeded:
        return None
    if outcome.currency != payment.currency:
        return Refusal("currency_mismatch", f"provider captured {outcome.currency}, payment is in {payment.currency}")
    manual = payment.capture_method == CaptureMethod.MANUAL
    same_transaction = outcome.provider_transaction_id == payment.provider_transaction_id
    if manual and same_transaction and payment.status in CAPTURED and outcome.amount == payment.amount_captured:
        # The provider's own word on a capture we already applied (its answer to our capture call came
        # first): the same money of the same transaction, absorbed. Another attempt's success of the
        # same amount is a second charge, never absorbed (below).
        return None
    # A manual payment may be captured in part (never more than the hold); an automatic one takes all.
    limit = payment.amount_capturable if payment.status == PaymentStatus.AUTHORIZED else payment.amount
    if (outcome.amount != payment.amount and not manual) or not 0 < outcome.amount <= limit:
        return Refusal(
            "amount_mismatch",
            f"provider captured {outcome.amount} {outcome.currency}, payment is {payment.amount} {payment.currency}",
        )
    if ended:
        assert attempt is not None
        if payment.status in (PaymentStatus.CREATED, PaymentStatus.PROVIDER_PENDING):
            return None  # the money is real: it pays the payment (services/attempt_outcomes.py)
        # A second payment of the same checkout: evidence for a refund at that provider, made by a
        # person (the refund machinery refunds a payment through its own provider only).
        return Refusal(
            "success_for_final_payment",
            f"duplicate payment: {outcome.provider} took the money for attempt {attempt.id} "
            f"({attempt.status}) after the payment became {payment.status}; not refunded automatically, "
            f"refund it at {outcome.provider}",
        )
    if payment.status == PaymentStatus.CREATED:
        return Refusal("success_for_unstarted_payment", "provider success for a payment never started here")
    if payment.status not in (PaymentStatus.PROVIDER_PENDING, PaymentStatus.AUTHORIZED):
        return Refusal("success_for_final_payment", f"provider success after the payment became {payment.status}")
    return None


def _authorization_refusal(payment: Payment, event: ProviderOutcome) -> Refusal | None:
    """An authorization holds money (it moves none): one that cannot be about the payment is evidence."""
    outcome = event.data
    if payment.capture_method != CaptureMethod.MANUAL:
        return Refusal("unexpected_outcome", "provider authorization for an automatic-capture payment")
    if outcome.currency != payment.currency or outcome.amount != payment.amount:
        kind: AnomalyKind = "currency_mismatch" if outcome.currency != payment.currency else "amount_mismatch"
        detail = (
            f"provider authorized {outcome.amount} {outcome.currency}, payment is {payment.amount} {payment.currency}"
        )
        return Refusal(kind, detail)
    if payment.status == PaymentStatus.CREATED:
        return Refusal("success_for_unstarted_payment", "provider authorization for a payment never started here")
    # Pending: applied. Already authorized, captured, released or expired: a late word, nothing held now.
    return None


def _word(event: ProviderOutcome) -> str:
    return "authorization" if isinstance(event, ProviderPaymentAuthorizedV1) else "success"


_OUTCOME_WORDS: dict[type[ProviderOutcome], str] = {
    ProviderPaymentSucceededV1: "succeeded",
    ProviderPaymentFailedV1: "failed",
    ProviderPaymentAuthorizedV1: "authorized",
}


def _mode(livemode: bool) -> str:
    return "live" if livemode else "test"


def record_anomaly(
    uow: PaymentsUnitOfWork,
    payment: Payment | None,
    event: ProviderOutcome,
    found: Refusal,
    raw: bytes | None = None,
) -> None:
    """Queue the anomaly's rows and event on ``uow`` (they commit with its inbox row, or not at all)."""
    outcome = event.data
    anomaly = Anomaly(
        anomaly_id=new_id("anm"),
        kind=found.kind,
        payment_id=outcome.payment_id,
        provider=outcome.provider,
        provider_transaction_id=outcome.provider_transaction_id,
        provider_reference=outcome.provider_reference,
        amount=outcome.amount,
        currency=outcome.currency,
        outcome=_OUTCOME_WORDS[type(event)],
        expected_amount=payment.amount if payment is not None else None,
        expected_currency=payment.currency if payment is not None else None,
        payment_status=payment.status if payment is not None else None,
        evidence_id=event.event_id,
        detail=found.detail,
    )
    write_anomaly(uow, payment, event, anomaly, raw)


def write_anomaly(
    uow: PaymentsUnitOfWork, payment: Payment | None, event: EventBase, anomaly: Anomaly, raw: bytes | None = None
) -> None:
    """Queue the rows and the event of ``anomaly``, found in the consumed ``event``, on ``uow``: the
    ``anomalies`` row, a history row on the payment (when it exists) and ``payment.anomaly.recorded``."""
    now = utcnow()
    livemode = payment.livemode if payment is not None else event.livemode
    uow.write(InsertRows(table_of(PaymentAnomaly), [_row(anomaly, event, livemode, raw, now)]))
    if payment is not None:
        uow.write(
            history_insert(
                payment_id=payment.id,
                from_status=payment.status,
                to_status=payment.status,
                actor=f"provider:{anomaly.provider}",
                reason=f"anomaly: {anomaly.detail}",
                event_id=event.event_id,
                created_at=now,
            )
        )
    uow.emit(
        PaymentAnomalyRecordedV1(
            tenant_id=event.tenant_id, livemode=livemode, causation_id=event.event_id, data=anomaly
        )
    )


def _row(anomaly: Anomaly, event: EventBase, livemode: bool, raw: bytes | None, now: datetime) -> dict[str, Any]:
    # The columns summarize what was received, and must take whatever a publisher sent (a row that
    # cannot be stored would turn the anomaly into a poison message): an id too long for its column is
    # cut, an amount or currency that cannot be one is left out. ``event`` keeps everything as received.
    return {
        "id": anomaly.anomaly_id,
        "tenant_id": event.tenant_id[:40],
        "livemode": livemode,
        "kind": anomaly.kind,
        "payment_id": anomaly.payment_id[:40],
        "provider": anomaly.provider[:32],
        "amount": anomaly.amount if anomaly.amount is None or abs(anomaly.amount) < 2**63 else None,
        "currency": anomaly.currency if anomaly.currency is None or len(anomaly.currency) == 3 else None,
        "expected_amount": anomaly.expected_amount,
        "expected_currency": anomaly.expected_currency,
        "payment_status": anomaly.payment_status,
        "event_id": event.event_id,
        "event": _as_received(event, raw),
        "detail": anomaly.detail,
        "created_at": now,
    }


def _as_received(event: EventBase, raw: bytes | None) -> dict[str, Any]:
    # The message as it came off the bus (fields this version does not know included), else the event.
    if raw is not None:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict):
            return body
    return event.model_dump(mode="json")
