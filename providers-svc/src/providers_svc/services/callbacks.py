"""What a verified provider callback does, whatever the provider: record it, then move the transaction
and publish the outcome, all in one unit of work."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast

from billing_contracts.envelope import utcnow
from billing_contracts.events.anomalies import Anomaly, AnomalyKind, ProviderAnomalyRecordedV1
from billing_contracts.events.providers import (
    ProviderPaymentAuthorizedV1,
    ProviderPaymentFailedV1,
    ProviderPaymentOutcome,
    ProviderPaymentSucceededV1,
)
from billing_runtime.ids import new_id
from billing_runtime.outages import is_lock_conflict
from billing_runtime.writes import Precondition, Write, all_hold
from sqlalchemy.exc import DBAPIError

from providers_svc.db.repositories import (
    IncomingEvent,
    NewAnomaly,
    anomaly_insert,
    authorize_update,
    provider_event_insert,
    provider_event_seen,
    settle_update,
    siblings_cancel,
    transaction_snapshot,
    transaction_unchanged,
)
from providers_svc.domain.transactions import (
    CallbackResult,
    Transaction,
    TransactionStatus,
    Verdict,
    anomaly_kind,
    late_verdict_result,
)
from providers_svc.services.uow import ProvidersUnitOfWork, UowFactory

log = logging.getLogger(__name__)

ObservedVia = Literal["callback", "status_check"]


@dataclass(frozen=True)
class ProviderNotice:
    """A provider's callback after its signature was verified, in our terms (minor units, our ids)."""

    provider: str
    external_id: str
    event_type: str
    transaction_id: str
    # None: an event type we record but do not act on.
    verdict: Verdict | None
    amount: int | None
    currency: str | None
    payload: str
    provider_reference: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    # From a provider that moves no real money (the sandbox, the simulators): never acts on a live
    # transaction, whatever it says (API.md "Test mode and live mode").
    test_only: bool = False
    # How we learned it: the provider called us, or we asked it (reconciliation's sync). Copied into
    # the outcome event; the rules that apply it are the same either way.
    observed_via: ObservedVia = "callback"
    # ``Verdict.AUTHORIZED``: when the provider lets the hold lapse (None: it does not say).
    authorization_expires_at: datetime | None = None


@dataclass(frozen=True)
class Handled:
    """What a callback did, and the anomaly it recorded (None: none, or it was recorded before)."""

    result: CallbackResult
    anomaly: str | None = None


@dataclass(frozen=True)
class Companion:
    """Writes of a provider's own records that go with an applied verdict, under their own guard
    (Click: the paid attempt's reservation confirmed, as its Complete would have done)."""

    writes: tuple[Write, ...]
    unchanged: Precondition


class TransactionBusy(Exception):
    """The transaction kept changing while a callback was being applied: nothing was written, and the
    provider should send it again (it retries callbacks that are not acknowledged)."""


# A transaction moves a handful of times in its life, so a few rounds always settle a conflict.
NOTICE_ATTEMPTS = 5


async def handle_notice(
    uow_factory: UowFactory,
    notice: ProviderNotice,
    *,
    clock: Callable[[], datetime] = utcnow,
    companion: Companion | None = None,
) -> Handled:
    """Record ``notice`` once and apply it. Nothing is written for an unknown transaction, nor for a
    test-only provider's word on a live one; a duplicate writes nothing either (PRV-1, PRV-4, PRV-12).

    The transaction is read (no lock, no transaction) and the outcome decided in memory; then the
    event row (with its result), the transaction's move and the outcome event are one statement, all
    of it conditional on the event row being new and on the transaction being, under its row lock,
    exactly as it was read. If it moved meanwhile the notice is decided again. Two round trips on
    PostgreSQL instead of seven: every payment's callback comes through here.

    A verdict that is evidence of money we cannot apply (other money than ours, or a contradiction of
    a final state) is recorded as an anomaly in that same statement: its row, linked to the event
    row that keeps the raw body, and a ``provider.anomaly.recorded`` event (PRV-8, PRV-11).

    ``companion``'s writes join a verdict that is applied, and its guard then joins the transaction's."""
    for _ in range(NOTICE_ATTEMPTS):
        now = clock()
        async with uow_factory() as uow:
            txn = await transaction_snapshot(uow, notice.transaction_id)
            if txn is None or txn.provider != notice.provider:
                return Handled(CallbackResult.UNKNOWN_TRANSACTION)
            if notice.test_only and txn.livemode:
                log.error(
                    "%s callback %s speaks of live transaction %s: refused",
                    notice.provider,
                    notice.external_id,
                    txn.id,
                )
                return Handled(CallbackResult.LIVEMODE_REFUSED)
            row_id = new_id("pev")
            result, kind, anomaly = decide_notice(uow, txn, notice, row_id, now)
            event = IncomingEvent(
                provider=notice.provider,
                external_id=notice.external_id,
                event_type=notice.event_type,
                transaction_id=txn.id,
                payload=notice.payload,
            )
            recorded = provider_event_insert(row_id, event, now, result.value)
            guard = transaction_unchanged(txn)
            if companion is not None and result is CallbackResult.APPLIED:
                for write in companion.writes:
                    uow.write(write)
                guard = all_hold(guard, companion.unchanged)
            try:
                committed = await uow.commit_unless_exists(recorded, guard)
            except DBAPIError as exc:
                if not is_lock_conflict(exc):
                    raise
                # Two providers' successes for one payment, each closing the other's transaction
                # (siblings_cancel): PostgreSQL aborted one; it is decided again and finds its own closed.
                continue
            if committed:
                log_outcome(notice, txn, result, anomaly)
                return Handled(result, kind)
        seen, stored = await provider_event_seen(uow_factory, notice.provider, notice.external_id)
        if seen:
            # A repeat answers as the first did where the provider must see a refusal again.
            if stored == CallbackResult.AMOUNT_MISMATCH.value:
                return Handled(CallbackResult.AMOUNT_MISMATCH)
            return Handled(CallbackResult.DUPLICATE)
    raise TransactionBusy(notice.transaction_id)


def decide_notice(
    uow: ProvidersUnitOfWork, txn: Transaction, notice: ProviderNotice, row_id: str, now: datetime
) -> tuple[CallbackResult, str | None, Anomaly | None]:
    """What a verified notice does to ``txn`` as read: its result, the anomaly kind it is evidence of,
    and that anomaly, with the transaction's move, the outcome event and the anomaly queued on ``uow``
    (written only with the notice's event row ``row_id``, under whatever guards the caller's commit:
    ``handle_notice``'s precondition, or a row lock the caller holds, as Stripe's webhook does)."""
    kind: str | None = None
    if notice.verdict is None:
        result = CallbackResult.IGNORED
    elif notice.verdict is Verdict.AUTHORIZED:
        return _decide_authorization(uow, txn, notice, row_id, now), None, None
    else:
        kind = anomaly_kind(txn, notice.verdict, notice.amount, notice.currency)
        if kind in ("amount_mismatch", "currency_mismatch"):
            # PRV-8: never report an outcome for money we did not ask for.
            result = CallbackResult.AMOUNT_MISMATCH
        elif txn.status is TransactionStatus.PENDING:
            queue_outcome(uow, txn, notice, notice.verdict, row_id, now)
            result = CallbackResult.APPLIED
        else:
            # PRV-3: a final state never flips. The event row keeps the provider's word for the record.
            result = late_verdict_result(txn.status, notice.verdict)
    anomaly = queue_anomaly(uow, txn, notice, kind, row_id, now) if kind is not None else None
    return result, kind, anomaly


def _decide_authorization(
    uow: ProvidersUnitOfWork, txn: Transaction, notice: ProviderNotice, row_id: str, now: datetime
) -> CallbackResult:
    """The provider holds the funds of a manual-capture transaction: recorded once, and published as
    ``provider.payment.authorized``. An authorization moves no money, so one that cannot apply (an
    automatic transaction's, one for a final or already authorized transaction) is only kept on record;
    one for other money than ours is refused like any other (PRV-8)."""
    if notice.currency != txn.currency or notice.amount != txn.amount:
        return CallbackResult.AMOUNT_MISMATCH
    if not txn.manual:
        return CallbackResult.IGNORED
    if txn.status is not TransactionStatus.PENDING or txn.authorized_at is not None:
        return CallbackResult.SAME_OUTCOME
    uow.write(
        authorize_update(
            txn.id, expires_at=notice.authorization_expires_at, provider_reference=notice.provider_reference, now=now
        )
    )
    uow.emit(
        ProviderPaymentAuthorizedV1(
            tenant_id=txn.tenant_id,
            livemode=txn.livemode,
            correlation_id=txn.payment_id,
            causation_id=row_id,
            data=_outcome(txn, notice, txn.amount, failed=False),
        )
    )
    return CallbackResult.APPLIED


def _outcome(txn: Transaction, notice: ProviderNotice, amount: int, *, failed: bool) -> ProviderPaymentOutcome:
    return ProviderPaymentOutcome(
        livemode=txn.livemode,
        payment_id=txn.payment_id,
        provider=txn.provider,
        provider_transaction_id=txn.id,
        provider_reference=notice.provider_reference or txn.provider_reference,
        amount=amount,
        currency=txn.currency,
        failure_code=notice.failure_code if failed else None,
        failure_message=notice.failure_message if failed else None,
        account_id=txn.account_id,
        observed_via=notice.observed_via,
        authorization_expires_at=notice.authorization_expires_at if notice.verdict is Verdict.AUTHORIZED else None,
    )


def log_outcome(notice: ProviderNotice, txn: Transaction, result: CallbackResult, anomaly: Anomaly | None) -> None:
    """The log lines of a committed notice: a late verdict, an anomaly."""
    _log_late(notice, txn, result)
    if anomaly is not None:
        log.error(
            "anomaly %s (%s): %s (provider event %s)",
            anomaly.anomaly_id,
            anomaly.kind,
            anomaly.detail,
            notice.external_id,
        )


def queue_anomaly(
    uow: ProvidersUnitOfWork, txn: Transaction, notice: ProviderNotice, kind: str, row_id: str, now: datetime
) -> Anomaly:
    """Queue the anomaly's row and its event on ``uow`` (written only with the callback's event row,
    ``row_id``, which keeps the raw body)."""
    assert notice.verdict is not None
    anomaly_id = new_id("anm")
    detail = (
        f"{notice.provider} says {notice.verdict.value} for {notice.amount} {notice.currency}; "
        f"transaction {txn.id} is {txn.status.value} for {txn.amount} {txn.currency}"
    )
    uow.write(
        anomaly_insert(
            NewAnomaly(
                anomaly_id=anomaly_id,
                kind=kind,
                provider_event_id=row_id,
                transaction=txn,
                outcome=notice.verdict.value,
                amount=notice.amount,
                currency=notice.currency,
                detail=detail,
            ),
            now,
        )
    )
    anomaly = Anomaly(
        anomaly_id=anomaly_id,
        kind=cast("AnomalyKind", kind),
        payment_id=txn.payment_id,
        provider=txn.provider,
        provider_transaction_id=txn.id,
        provider_reference=notice.provider_reference or txn.provider_reference,
        amount=notice.amount,
        currency=notice.currency,
        outcome=notice.verdict.value,
        expected_amount=txn.amount,
        expected_currency=txn.currency,
        evidence_id=row_id,
        detail=detail,
    )
    uow.emit(
        ProviderAnomalyRecordedV1(
            tenant_id=txn.tenant_id,
            livemode=txn.livemode,
            correlation_id=txn.payment_id,
            causation_id=row_id,
            data=anomaly,
        )
    )
    return anomaly


def _log_late(notice: ProviderNotice, txn: Transaction, result: CallbackResult) -> None:
    if result in (CallbackResult.APPLIED, CallbackResult.IGNORED, CallbackResult.AMOUNT_MISMATCH):
        # A mismatch is logged as its anomaly.
        return
    assert notice.verdict is not None
    level = logging.ERROR if result is CallbackResult.CONFLICT else logging.INFO
    log.log(
        level,
        "%s says %s for %s, already %s: %s",
        notice.provider,
        notice.verdict.value,
        txn.id,
        txn.status.value,
        result.value,
    )


def queue_outcome(
    uow: ProvidersUnitOfWork, txn: Transaction, notice: ProviderNotice, verdict: Verdict, row_id: str, now: datetime
) -> None:
    """Queue pending → final and the outcome event on ``uow``, written only with what guards them (the
    caller's ``commit_unless_exists`` or its row lock). Payme and Click call it beside their own record."""
    failed = verdict is Verdict.FAILED
    # A manual transaction's capture may take part of its amount: the provider's figure is the truth.
    captured = None if failed else (notice.amount if txn.manual and notice.amount is not None else txn.amount)
    uow.write(
        settle_update(
            txn.id,
            verdict.status,
            provider_reference=notice.provider_reference,
            failure_code=notice.failure_code if failed else None,
            failure_message=notice.failure_message if failed else None,
            now=now,
            captured_amount=captured,
        )
    )
    if not failed:
        uow.write(siblings_cancel(txn, now))
    event_cls = ProviderPaymentFailedV1 if failed else ProviderPaymentSucceededV1
    uow.emit(
        event_cls(
            tenant_id=txn.tenant_id,
            livemode=txn.livemode,
            correlation_id=txn.payment_id,
            causation_id=row_id,
            data=_outcome(txn, notice, txn.amount if captured is None else captured, failed=failed),
        )
    )
