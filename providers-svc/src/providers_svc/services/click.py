"""Click's Prepare and Complete (PROTOCOLS.md §1), wired: the pure core (``protocols/click``) decides,
this module finds the account and the order, locks them, stores the decision and answers.

A Prepare that reserves and a Complete that confirms (every paid order's two calls) decide on the order
and the reservation read without locks and write in one statement, conditional on both being as read
under their row locks (a new reservation: on its attempt being unknown), so two deliveries of one call
move money once: the loser decides again on what the winner stored. Any other change (a cancel, an
anomaly) runs in one locked database transaction: the order (our provider transaction) first, then the
reservation. Either way the change, the ``provider_events`` row (the inbox, unique per Click attempt and
step), an anomaly and the payment's move with its outcome event are written together in one statement.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from billing_contracts.envelope import utcnow
from billing_runtime.ids import new_id
from billing_runtime.outages import is_database_outage, is_lock_conflict
from billing_runtime.writes import all_hold
from sqlalchemy.exc import DBAPIError

from providers_svc.db.click import (
    PROVIDER,
    NewReservation,
    Reservation,
    click_order_unlocked,
    insert_reservation,
    lock_click_order,
    lock_reservation,
    reservation_insert,
    reservation_move,
    reservation_unchanged,
    reservation_unlocked,
)
from providers_svc.db.repositories import IncomingEvent, provider_event_insert, transaction_unchanged
from providers_svc.domain.transactions import Transaction, TransactionStatus, Verdict
from providers_svc.protocols.click.amounts import CURRENCY
from providers_svc.protocols.click.answers import Answer, ClickError
from providers_svc.protocols.click.decisions import (
    Change,
    CompleteOutcome,
    PrepareOutcome,
    decide_complete,
    decide_prepare,
    failed_to_update,
)
from providers_svc.protocols.click.records import OrderState, OrderView, PrepareState
from providers_svc.protocols.click.requests import (
    ClickRequest,
    PrepareRequest,
    Rejected,
    parse_request,
)
from providers_svc.protocols.click.signing import verify
from providers_svc.services.callbacks import ProviderNotice, queue_anomaly, queue_outcome
from providers_svc.services.click_accounts import ClickAccount, ClickAccounts
from providers_svc.services.uow import ProvidersUnitOfWork, UowFactory

log = logging.getLogger(__name__)

# payment_id is String(64); a longer or NUL-carrying merchant_trans_id names no order of ours and is
# never sent to the database (PostgreSQL refuses NUL in text).
_MAX_ORDER_ID = 64
# A concurrent Prepare of the same attempt for another order can win the reservation's unique key;
# the loser decides again with it. Nothing else makes a unit retry.
_ATTEMPTS = 3

_CHANGE_RESULTS = {Change.RESERVE: "reserved", Change.CONFIRM: "confirmed", Change.CANCEL: "cancelled"}


@dataclass(frozen=True)
class ClickReply:
    """The answer to send (HTTP 200, JSON) and how to count it: ``rejected`` (a reason slug) for bad
    input refused before anything was looked up or changed, else ``result``."""

    answer: Answer
    result: str | None = None
    rejected: str | None = None
    anomaly: str | None = None


@dataclass(frozen=True)
class ClickCallbacks:
    uow: UowFactory
    accounts: ClickAccounts
    clock: Callable[[], datetime] = utcnow

    async def handle(self, form: Mapping[str, object], payload: str) -> ClickReply:
        """Answer one posted form (either action, whichever path it came to)."""
        parsed = parse_request(form)
        if isinstance(parsed, Rejected):
            log.info("click callback refused: %s", parsed.reason)
            return ClickReply(parsed.answer, rejected=_rejection_slug(parsed, form))
        try:
            candidates = await self.accounts.by_service_id(parsed.service_id)
            signer = next((a for a in candidates if _signed_by(parsed, a)), None)
            if signer is None:
                # -1 whether the service is unknown or the signature wrong: no oracle for service ids.
                answer = _decide(parsed, None, None, None).answer
                return ClickReply(answer, rejected="bad_signature" if candidates else "unknown_service")
            return await self._store(parsed, signer, payload)
        except Exception as exc:
            # A lock conflict (another provider's success for the same payment closing this order at
            # the same moment) wrote nothing, as an outage: Click calls again and finds the order closed.
            if not (is_database_outage(exc) or is_lock_conflict(exc)):
                raise
            log.warning("click %s of attempt %s not stored: %s", _step(parsed), parsed.click_trans_id, exc)
            return ClickReply(failed_to_update(parsed), result="failed_to_update")

    async def _store(self, request: ClickRequest, signer: ClickAccount, payload: str) -> ClickReply:
        """The hot path, a Prepare that reserves and a Complete that confirms, is three round trips: the
        order and the reservation read without locks, then one statement writing the change, its
        provider event row and (on confirm) the payment's move, conditional on what was read still
        being so under the row locks. A decision that changes nothing answers from the reads; the rest
        (cancels, anomalies) takes the locked path."""
        for _ in range(_ATTEMPTS):
            now = self.clock()
            async with self.uow() as uow:
                prepare = isinstance(request, PrepareRequest)
                found = (
                    await click_order_unlocked(uow, request.merchant_trans_id, with_next_id=prepare)
                    if _storable(request)
                    else None
                )
                txn, next_id = found if found is not None else (None, 0)
                order = _order_view(txn, signer, now)
                if isinstance(request, PrepareRequest):
                    prior = await reservation_unlocked(uow, click_trans_id=request.click_trans_id)
                else:
                    prior = await reservation_unlocked(uow, reservation_id=request.merchant_prepare_id)
                outcome = _decide(request, signer, order, _own(request, signer, txn, order, prior), next_id)
                if outcome.change is Change.NONE and outcome.anomaly is None:
                    return _reply(outcome)
                if outcome.anomaly is not None or outcome.change not in (Change.RESERVE, Change.CONFIRM):
                    return await self._store_locked(request, signer, payload)
                assert txn is not None
                try:
                    if await self._apply(uow, request, signer, outcome, txn, prior, payload, now):
                        return _reply(outcome)
                except DBAPIError as exc:
                    if not is_lock_conflict(exc):
                        raise
            # A concurrent call about this attempt or order wrote first: decide again on what it stored.
        raise RuntimeError(f"click attempt {request.click_trans_id}: its reservation kept changing")

    async def _apply(
        self,
        uow: ProvidersUnitOfWork,
        request: ClickRequest,
        signer: ClickAccount,
        outcome: PrepareOutcome | CompleteOutcome,
        txn: Transaction,
        prior: Reservation | None,
        payload: str,
        now: datetime,
    ) -> bool:
        """Write a RESERVE or CONFIRM decided on unlocked reads; False when they went stale."""
        assert outcome.merchant_prepare_id is not None
        row_id = new_id("pev")
        recorded = provider_event_insert(row_id, _event(request, txn.id, payload), now, _result(outcome))
        if outcome.change is Change.RESERVE:
            assert isinstance(request, PrepareRequest)
            # The reservation is the guard (unique per attempt); the event row rides on it.
            uow.write(recorded)
            new = _new_reservation(request, signer, txn)
            guard = reservation_insert(new, outcome.merchant_prepare_id, now)
            return await uow.commit_unless_exists(guard, transaction_unchanged(txn))
        assert prior is not None
        uow.write(reservation_move(outcome.merchant_prepare_id, PrepareState.CONFIRMED, now))
        notice = _notice(request, signer, txn, Verdict.SUCCEEDED, payload)
        queue_outcome(uow, txn, notice, Verdict.SUCCEEDED, row_id, now)
        unchanged = all_hold(transaction_unchanged(txn), reservation_unchanged(prior.view))
        return await uow.commit_unless_exists(recorded, unchanged)

    async def _store_locked(self, request: ClickRequest, signer: ClickAccount, payload: str) -> ClickReply:
        for _ in range(_ATTEMPTS):
            now = self.clock()
            async with self.uow() as uow:
                session = uow.session
                txn = await lock_click_order(session, request.merchant_trans_id) if _storable(request) else None
                order = _order_view(txn, signer, now)
                if isinstance(request, PrepareRequest):
                    prior = await lock_reservation(session, click_trans_id=request.click_trans_id)
                else:
                    prior = await lock_reservation(session, reservation_id=request.merchant_prepare_id)
                outcome = _decide(request, signer, order, _own(request, signer, txn, order, prior), 0)
                if outcome.change is Change.RESERVE:
                    assert txn is not None
                    assert isinstance(request, PrepareRequest)
                    reserved = await insert_reservation(session, _new_reservation(request, signer, txn), now)
                    if reserved is None:
                        await uow.rollback()
                        continue
                    outcome = decide_prepare(
                        request, credentials=signer.credentials, order=order, prior=None, new_prepare_id=reserved
                    )
                if outcome.change is not Change.NONE or outcome.anomaly is not None:
                    await self._record(uow, request, signer, outcome, txn, prior, payload, now)
                else:
                    await uow.rollback()
                return _reply(outcome)
        raise RuntimeError(f"click attempt {request.click_trans_id}: its reservation kept changing")

    async def _record(
        self,
        uow: ProvidersUnitOfWork,
        request: ClickRequest,
        signer: ClickAccount,
        outcome: PrepareOutcome | CompleteOutcome,
        txn: Transaction | None,
        prior: Reservation | None,
        payload: str,
        now: datetime,
    ) -> None:
        """Queue the change with its inbox row and commit, all in the locked transaction."""
        transaction_id = txn.id if txn is not None else (prior.provider_transaction_id if prior else None)
        row_id = new_id("pev")
        if outcome.change is Change.CANCEL:
            assert outcome.merchant_prepare_id is not None
            uow.write(reservation_move(outcome.merchant_prepare_id, PrepareState.CANCELLED, now))
        elif outcome.change is Change.CONFIRM:
            assert outcome.merchant_prepare_id is not None
            assert txn is not None
            uow.write(reservation_move(outcome.merchant_prepare_id, PrepareState.CONFIRMED, now))
            notice = _notice(request, signer, txn, Verdict.SUCCEEDED, payload)
            queue_outcome(uow, txn, notice, Verdict.SUCCEEDED, row_id, now)
        if outcome.anomaly is not None and txn is not None:
            # Success evidence for an order we gave up on, or Click cancelling money we hold as paid.
            verdict = Verdict.FAILED if request.error < 0 else Verdict.SUCCEEDED
            queue_anomaly(uow, txn, _notice(request, signer, txn, verdict, payload), outcome.anomaly, row_id, now)
        event = _event(request, transaction_id, payload)
        # Unique per attempt and step: an anomaly repeated by Click's retries is recorded once. Every
        # other change is guarded by the locks and its ``prepared`` condition, so its row is new.
        if not await uow.commit_unless_exists(provider_event_insert(row_id, event, now, _result(outcome))):
            log.info("click %s of attempt %s: recorded before", _step(request), request.click_trans_id)
        elif outcome.anomaly is not None:
            log.error("click %s of attempt %s: anomaly %s", _step(request), request.click_trans_id, outcome.anomaly)


def _decide(
    request: ClickRequest,
    signer: ClickAccount | None,
    order: OrderView | None,
    prior: Reservation | None,
    new_prepare_id: int = 0,
) -> PrepareOutcome | CompleteOutcome:
    """``new_prepare_id``: the id a RESERVE stores (0: decided again with the inserted row's id)."""
    credentials = signer.credentials if signer is not None else None
    view = prior.view if prior is not None else None
    if isinstance(request, PrepareRequest):
        return decide_prepare(request, credentials=credentials, order=order, prior=view, new_prepare_id=new_prepare_id)
    return decide_complete(request, credentials=credentials, order=order, prepare=view)


def _own(
    request: ClickRequest,
    signer: ClickAccount,
    txn: Transaction | None,
    order: OrderView | None,
    prior: Reservation | None,
) -> Reservation | None:
    """``prior``, unless a cancel names another account's attempt (or a live one, from a test account):
    that is not this account's to apply, so it is answered as for an unknown attempt, nothing released
    and no anomaly filed against a payment that is not its own."""
    if (
        request.error < 0
        and prior is not None
        and (prior.account_id != signer.account.id or (txn is not None and order is None))
    ):
        return None
    return prior


def _event(request: ClickRequest, transaction_id: str | None, payload: str) -> IncomingEvent:
    return IncomingEvent(
        provider=PROVIDER,
        external_id=f"{request.click_trans_id}:{_step(request)}",
        event_type=_step(request),
        transaction_id=transaction_id,
        payload=payload,
    )


def _signed_by(request: ClickRequest, candidate: ClickAccount) -> bool:
    return verify(request.signed, candidate.credentials.secret_key, request.sign_string)


def _storable(request: ClickRequest) -> bool:
    mti = request.merchant_trans_id
    return len(mti) <= _MAX_ORDER_ID and "\x00" not in mti


def _order_view(txn: Transaction | None, signer: ClickAccount, now: datetime) -> OrderView | None:
    """The order as the core sees it; None when it is not this account's (unknown to this merchant)."""
    if txn is None or txn.account_id != signer.account.id:
        return None
    if signer.account.test and txn.livemode:
        log.error("click test account %s spoke of live transaction %s: refused", signer.account.id, txn.id)
        return None
    if txn.status is TransactionStatus.SUCCEEDED:
        state = OrderState.PAID
    elif txn.status is TransactionStatus.PENDING and not txn.is_expired(now):
        state = OrderState.PAYABLE
    else:
        # Failed, cancelled or expired: no attempt may be confirmed for it any more.
        state = OrderState.CANCELLED
    return OrderView(merchant_trans_id=txn.payment_id, amount=txn.amount, currency=txn.currency, state=state)


def _new_reservation(request: PrepareRequest, signer: ClickAccount, txn: Transaction) -> NewReservation:
    return NewReservation(
        click_trans_id=request.click_trans_id,
        click_paydoc_id=request.click_paydoc_id,
        merchant_trans_id=request.merchant_trans_id,
        account_id=signer.account.id,
        provider_transaction_id=txn.id,
        amount=txn.amount,
    )


def _notice(
    request: ClickRequest, signer: ClickAccount, txn: Transaction, verdict: Verdict, payload: str
) -> ProviderNotice:
    return ProviderNotice(
        provider=PROVIDER,
        external_id=f"{request.click_trans_id}:{_step(request)}",
        event_type=_step(request),
        transaction_id=txn.id,
        verdict=verdict,
        amount=_tiyin(request.amount),
        currency=CURRENCY,
        payload=payload,
        # Click's payment number: what its Merchant API's status and reversal take (protocols/click).
        provider_reference=str(request.click_paydoc_id),
        failure_code=f"click_{request.error}" if request.error < 0 else None,
        failure_message=request.error_note or None if request.error < 0 else None,
        test_only=signer.account.test,
    )


def _tiyin(som: Decimal) -> int | None:
    tiyin = som * 100
    return int(tiyin) if tiyin == tiyin.to_integral_value() else None


def _step(request: ClickRequest) -> str:
    if request.error < 0:
        return "cancel"
    return "prepare" if isinstance(request, PrepareRequest) else "complete"


def _result(outcome: PrepareOutcome | CompleteOutcome) -> str:
    if outcome.change is not Change.NONE:
        return _CHANGE_RESULTS[outcome.change]
    return "repeat" if outcome.error is ClickError.SUCCESS else outcome.error.name.lower()


def _reply(outcome: PrepareOutcome | CompleteOutcome) -> ClickReply:
    return ClickReply(outcome.answer, result=_result(outcome), anomaly=outcome.anomaly)


def _rejection_slug(rejected: Rejected, form: Mapping[str, object]) -> str:
    if rejected.error is ClickError.ACTION_NOT_FOUND:
        return "unknown_action"
    if rejected.reason.startswith("action "):  # "action is missing or not an integer"
        return "missing_field" if form.get("action") in (None, "") else "bad_field"
    return "missing_field" if rejected.reason.endswith(" is missing") else "bad_field"
