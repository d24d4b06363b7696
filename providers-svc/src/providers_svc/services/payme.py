"""Payme's Merchant API on our database (PROTOCOLS.md §2): the recipe of ``protocols/payme/__init__.py``.

Raw body and ``Authorization`` header in, the answer's bytes out (always sent with HTTP 200). The protocol
core decides; this module reads what it needs, stores ``Decision.record`` as decided (an error decision's
too: an expired transaction is cancelled with reason 4 *and* answered -31008) and applies
``Decision.effect`` to our provider transaction in the same database transaction:

- RESERVE (state 1) and RELEASE (state -1, a cancel or the 12-hour timeout) leave our transaction as it
  is: pending, so the payer may try again (Payme then makes a new transaction) until our transaction
  expires or is cancelled, which makes the order unpayable for Payme (-31051 on Create, -31008 on Perform).
- PAY (state 2) moves it to succeeded through ``services.callbacks.queue_outcome`` (and the
  ``provider.payment.succeeded`` event), with a ``provider_events`` row keeping Payme's request.
- REFUND (state -2) is recorded in ``payme_reversals``: Payme gave the full amount back to the payer.

The 12-hour timeout (§2.5) is applied to a transaction when Payme calls about it (Create again, Perform)
and also when CheckPerformTransaction or CreateTransaction is decided for its order: a created
transaction past its timeout no longer holds the order. It is cancelled with reason 4 (stored, RELEASE),
in the database transaction that decides the new call, which is then decided on the order without it.

Concurrency: Perform decides on the Payme row and our transaction read without locks and writes only if
both are, under their row locks, still as read (and its provider event row is new); otherwise it decides
again, so a repeat delivered concurrently is answered from what the first stored. A new Create
is inserted only if no row has its Payme id or is the order's active transaction (the partial unique
index of ``payme_transactions``: one active transaction per order) and our transaction is as read; a
loser decides again and gets -31008 or the stored answer. Cancel, a repeated Create and the timeout
lock both rows (``FOR UPDATE``) before deciding; so does a Create or CheckPerform that finds the order's
active transaction timed out (it locks that one and ours, so racing Creates take turns, and each reads
the order again under the locks).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from billing_runtime.ids import new_id
from billing_runtime.outages import is_database_outage, is_lock_conflict
from billing_runtime.writes import InsertRows, all_hold
from sqlalchemy.exc import DBAPIError

from providers_svc.db.payme import (
    OrderRead,
    PaymeRepository,
    PaymeTransactionRow,
    create_unlocked,
    order_in_transaction,
    order_unlocked,
    payme_unchanged,
    payme_unlocked,
    to_record,
)
from providers_svc.db.repositories import transaction_unchanged
from providers_svc.domain.accounts import BoundAccount
from providers_svc.domain.refunds import RefundStatus
from providers_svc.domain.transactions import Transaction, TransactionStatus
from providers_svc.protocols.payme.amounts import to_tiyin
from providers_svc.protocols.payme.auth import authenticate
from providers_svc.protocols.payme.errors import PaymeError, PaymeErrorCode
from providers_svc.protocols.payme.jsonrpc import MalformedRequestError, RpcRequest, error_response, parse_request
from providers_svc.protocols.payme.jsonrpc import result_response as rpc_result
from providers_svc.protocols.payme.params import (
    CancelTransactionParams,
    ChangePasswordParams,
    CheckPerformTransactionParams,
    CheckTransactionParams,
    CreateTransactionParams,
    FiscalType,
    GetStatementParams,
    Params,
    PerformTransactionParams,
    SetFiscalDataParams,
    parse_params,
)
from providers_svc.protocols.payme.transactions import (
    Decision,
    OrderEffect,
    PaymeOrder,
    cancel_transaction,
    check_perform_transaction,
    check_transaction,
    create_transaction,
    get_statement,
    perform_transaction,
    release_timed_out,
)
from providers_svc.services.payme_accounts import PROVIDER, KeyNotAccepted, PaymeAccounts
from providers_svc.services.payme_writes import (
    apply_record,
    new_transaction_row,
    queue_paid,
    record_update,
    reversal_row,
    store,
)
from providers_svc.services.refund_events import provider_started_refund_event
from providers_svc.services.uow import ProvidersUnitOfWork, UowFactory

log = logging.getLogger(__name__)

# Two racing Creates settle in one more round; more rounds than that mean something else is wrong.
CREATE_ATTEMPTS = 3
# A Perform decided on rows a concurrent call moved is decided again; a transaction moves a few times.
PERFORM_ATTEMPTS = 5

# Refusals of bad input (``provider_callbacks_rejected_total{reason}``), by the error the input earned.
_PARAM_REASONS = {
    PaymeErrorCode.METHOD_NOT_FOUND: "unknown_method",
    PaymeErrorCode.INVALID_AMOUNT: "bad_amount",
    PaymeErrorCode.ORDER_NOT_FOUND: "bad_account",
}


@dataclass(frozen=True)
class PaymeAnswer:
    """The bytes to send (HTTP 200), and what to count: ``result`` for a request that reached a method
    (``provider_callbacks_total``), ``rejected`` for bad input (``provider_callbacks_rejected_total``)."""

    body: bytes
    result: str | None = None
    rejected: str | None = None


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def result_slug(code: PaymeErrorCode | None) -> str:
    return "ok" if code is None else code.name.lower()


@dataclass
class PaymeMerchant:
    uow: UowFactory
    accounts: PaymeAccounts
    clock_ms: Callable[[], int] = wall_clock_ms

    async def handle(self, http_method: str, body: bytes, authorization: str | None) -> PaymeAnswer:
        if http_method != "POST":
            return _rejected(None, PaymeError(PaymeErrorCode.METHOD_NOT_POST), "not_post")
        try:
            request = parse_request(body)
        except MalformedRequestError as exc:
            reason = "bad_json" if exc.code is PaymeErrorCode.PARSE_ERROR else "bad_envelope"
            return _rejected(exc.request_id, exc, reason)
        try:
            return await self._authenticated(request, body, authorization)
        except Exception as exc:
            # Payme reads any non-200 answer as -32400 anyway; answering it ourselves keeps the protocol.
            # Nothing was committed: each method writes in one database transaction.
            if is_database_outage(exc):
                log.warning("payme %s not processed, database unavailable: %s", request.method, exc)
                result = "unavailable"
            else:
                log.exception("payme %s failed", request.method)
                result = "system_error"
            return PaymeAnswer(error_response(request.id, PaymeError(PaymeErrorCode.SYSTEM_ERROR)), result=result)

    async def _authenticated(self, request: RpcRequest, body: bytes, authorization: str | None) -> PaymeAnswer:
        accounts = await self.accounts.all()
        try:
            account_id = authenticate(authorization, [(a.id, a.credentials.get("key", "")) for a in accounts])
        except PaymeError as exc:
            return _rejected(request.id, exc, "bad_auth")
        account = next(a for a in accounts if a.id == account_id)
        try:
            params = parse_params(request, account_field=account.settings["account_field"])
        except PaymeError as exc:
            return _rejected(request.id, exc, _PARAM_REASONS.get(exc.code, "bad_params"))
        try:
            decision = await self._decide(account, params, body, accounts)
        except PaymeError as exc:
            return PaymeAnswer(error_response(request.id, exc), result=result_slug(exc.code))
        if decision.error is not None:
            return PaymeAnswer(error_response(request.id, decision.error), result=result_slug(decision.error.code))
        assert decision.result is not None
        return PaymeAnswer(rpc_result(request.id, decision.result), result="ok")

    async def _decide(
        self, account: BoundAccount, params: Params, body: bytes, accounts: list[BoundAccount]
    ) -> Decision:
        match params:
            case CheckPerformTransactionParams():
                return await self._check_perform(account, params)
            case CreateTransactionParams():
                return await self._create(account, params)
            case PerformTransactionParams():
                return await self._perform(account, params, body)
            case CancelTransactionParams():
                return await self._cancel(account, params)
            case CheckTransactionParams():
                async with self.uow() as unit:
                    row = await PaymeRepository(unit.session).get(params.id, account.id)
                return check_transaction(to_record(row).record if row is not None else None)
            case GetStatementParams():
                async with self.uow() as unit:
                    rows = await PaymeRepository(unit.session).statement(account.id, params.start, params.end)
                records = [to_record(r).record for r in rows]
                return get_statement(params, records, account_field=account.settings["account_field"])
            case ChangePasswordParams():
                try:
                    await self.accounts.change_key(account.id, params.password, accounts, _at(self.clock_ms()))
                except KeyNotAccepted as exc:
                    log.warning("payme ChangePassword for %s refused: %s", account.id, exc)
                    raise PaymeError(PaymeErrorCode.INVALID_REQUEST) from None
                log.info("payme ChangePassword: the key of %s was replaced", account.id)
                return Decision(result={"success": True})
            case SetFiscalDataParams():
                return await self._set_fiscal_data(account, params)

    async def _check_perform(self, account: BoundAccount, params: CheckPerformTransactionParams) -> Decision:
        """One read without locks, unless the order's active transaction is a created one past its
        timeout: then ``_after_timeout`` cancels it and answers as for an order without it."""
        for _ in range(CREATE_ATTEMPTS):
            now_ms = self.clock_ms()
            async with self.uow() as unit:
                found = await order_unlocked(unit, params.payment_id, PROVIDER)
            view = _view(account, found, _at(now_ms))
            if view is None or not view[0].active_timed_out(now_ms):
                return check_perform_transaction(params, view[0] if view else None)
            assert view[0].active_transaction_id is not None
            decided = await self._after_timeout(
                account,
                params.payment_id,
                view[0].active_transaction_id,
                lambda order, _txn, _now_ms: (check_perform_transaction(params, order), None),
            )
            if decided is not None:
                return decided
        raise RuntimeError(f"payme CheckPerformTransaction for {params.payment_id} kept conflicting")

    async def _create(self, account: BoundAccount, params: CreateTransactionParams) -> Decision:
        """A new transaction (the hot path) is two round trips: one read without locks (is Payme's id
        stored, and the order), then the row inserted only if no row has its Payme id or is the order's
        active one (the unique indexes) and our transaction is as read. A repeat of a stored Create
        takes the locked path, and so does a new one for an order whose active transaction is a created
        one past its timeout (``_after_timeout``)."""
        for _ in range(CREATE_ATTEMPTS):
            now_ms = self.clock_ms()
            async with self.uow() as unit:
                seen, found = await create_unlocked(unit, params.id, params.payment_id, PROVIDER)
                if seen:
                    return await self._create_again(account, params)
                view = _view(account, found, _at(now_ms))
                if view is not None and view[0].active_timed_out(now_ms):
                    assert view[0].active_transaction_id is not None
                    decided = await self._after_timeout(
                        account,
                        params.payment_id,
                        view[0].active_transaction_id,
                        lambda order, txn, now_ms: _decide_new(account, params, order, txn, now_ms),
                    )
                    if decided is not None:
                        return decided
                    continue
                order, txn = view if view is not None else (None, None)
                decision, row = _decide_new(account, params, order, txn, now_ms)
                if row is None:
                    return decision
                assert txn is not None
                if await unit.commit_unless_exists(row, transaction_unchanged(txn)):
                    return decision
            # Another Create stored first (this Payme id, or another one for the order), or our
            # transaction moved: decide again on what is stored now.
        raise RuntimeError(f"payme CreateTransaction {params.id} kept conflicting")

    async def _after_timeout(
        self,
        account: BoundAccount,
        payment_id: str,
        active_payme_id: str,
        decide: Callable[[PaymeOrder | None, Transaction | None, int], tuple[Decision, InsertRows | None]],
    ) -> Decision | None:
        """CheckPerformTransaction or CreateTransaction for an order whose active transaction was read as
        a created one past its 12-hour timeout. In one database transaction: that Payme transaction and
        ours are locked (as a Cancel or a timeout on Perform locks them), the order is read again under
        the locks, the timed-out transaction is cancelled with reason 4 (``release_timed_out``: stored
        as a timeout is on Perform, RELEASE, nothing else changes) whatever the call is then answered,
        and ``decide`` decides the call on the order without it; a new row it returns is inserted under
        the unique indexes. None: what was read moved meanwhile (another Create took the order, or
        another transaction of it timed out), and nothing was stored; the caller decides again."""
        now_ms = self.clock_ms()
        async with self.uow() as unit:
            locked = await PaymeRepository(unit.session).locked(active_payme_id)
            if locked is None:
                return None
            row, _txn = locked
            view = _view(account, await order_in_transaction(unit, payment_id, PROVIDER), _at(now_ms))
            order = view[0] if view else None
            released = None
            if order is not None and order.active_transaction_id == row.payme_id:
                order, released = release_timed_out(order, to_record(row).record, now_ms)
            if order is not None and order.active_timed_out(now_ms):
                return None
            try:
                decision, new_row = decide(order, view[1] if view else None, now_ms)
            except PaymeError as exc:
                # Refused for another reason (the amount, our payment no longer payable, a stale
                # ``time``): the timed-out transaction is cancelled all the same.
                decision, new_row = Decision(error=exc), None
            if released is not None:
                # Applied now, before the new row is inserted: the unique index then finds no active one.
                apply_record(row, released)
            if new_row is not None:
                return decision if await unit.commit_unless_exists(new_row) else None
            if released is not None:
                await unit.commit()
        if released is not None:
            log.info("payme %s timed out: cancelled (reason 4) for a new call on %s", row.payme_id, payment_id)
        return decision

    async def _create_again(self, account: BoundAccount, params: CreateTransactionParams) -> Decision:
        """A Create of a Payme id we store: answered from the row, locked (it may time out now)."""
        now_ms = self.clock_ms()
        async with self.uow() as unit:
            found = await PaymeRepository(unit.session).locked(params.id)
            assert found is not None, "Payme transactions are never deleted"
            row, _txn = found
            if row.account_id != account.id:
                # Payme's ids are unique at Payme: another merchant's id is not this one's to use.
                raise PaymeError(PaymeErrorCode.CANNOT_PERFORM)
            decision = create_transaction(params, to_record(row).record, None, transaction_id=row.id, now_ms=now_ms)
            if decision.record is not None:
                store(unit, row, decision.record)
                await unit.commit()
            return decision

    async def _perform(self, account: BoundAccount, params: PerformTransactionParams, body: bytes) -> Decision:
        """The hot path, paying a created transaction, is two round trips: the rows read without locks,
        then one statement writing the Payme row, our transaction's move, its event and the provider
        event row, conditional on both rows being exactly as read (``all_hold``) and on the event row
        being new. Anything else a Perform can store (the 12-hour timeout) takes the locked path."""
        for _ in range(PERFORM_ATTEMPTS):
            now_ms = self.clock_ms()
            now = _at(now_ms)
            async with self.uow() as unit:
                found = await payme_unlocked(unit, params.id)
                if found is None or found[0].account_id != account.id:
                    raise PaymeError(PaymeErrorCode.TRANSACTION_NOT_FOUND)
                stored, txn = found
                decision = perform_transaction(stored.record, order_payable=_payable(account, txn, now), now_ms=now_ms)
                if decision.record is None:
                    return decision
                if decision.effect is not OrderEffect.PAY:
                    return await self._perform_locked(account, params, body)
                unit.write(record_update(decision.record))
                recorded = queue_paid(unit, account, txn, params.id, body, now)
                unchanged = all_hold(payme_unchanged(stored.record), transaction_unchanged(txn))
                try:
                    committed = await unit.commit_unless_exists(recorded, unchanged)
                except DBAPIError as exc:
                    if not is_lock_conflict(exc):
                        raise
                    # Another provider's success for the payment closed our transaction at the same
                    # moment (siblings_cancel): decided again, it finds the order no longer payable.
                    continue
            if committed:
                log.info("payme %s performed: %s succeeded", params.id, txn.id)
                return decision
            # A repeat (or a Cancel) of this transaction moved it first: decide again on what it stored.
        raise RuntimeError(f"payme PerformTransaction {params.id} kept conflicting")

    async def _perform_locked(self, account: BoundAccount, params: PerformTransactionParams, body: bytes) -> Decision:
        now_ms = self.clock_ms()
        now = _at(now_ms)
        async with self.uow() as unit:
            row, txn = await _locked(unit, account, params.id)
            decision = perform_transaction(
                to_record(row).record, order_payable=_payable(account, txn, now), now_ms=now_ms
            )
            if decision.record is None:
                return decision
            store(unit, row, decision.record)
            if decision.effect is OrderEffect.PAY:
                unit.write(queue_paid(unit, account, txn, params.id, body, now))
            await unit.commit()
        if decision.effect is OrderEffect.PAY:
            log.info("payme %s performed: %s succeeded", params.id, txn.id)
        return decision

    async def _cancel(self, account: BoundAccount, params: CancelTransactionParams) -> Decision:
        now_ms = self.clock_ms()
        async with self.uow() as unit:
            row, txn = await _locked(unit, account, params.id)
            decision = cancel_transaction(
                to_record(row).record,
                params.reason,
                refund_allowed=await _may_cancel_after_perform(unit, account, txn),
                now_ms=now_ms,
            )
            if decision.record is None:
                return decision
            store(unit, row, decision.record)
            if decision.effect is OrderEffect.REFUND:
                reversal = reversal_row(decision.record, account, txn, _at(now_ms))
                unit.write(reversal)
                # The refund Payme made, for payments-svc (a refund without an id of ours): once, as the
                # move to -2 happens once; a repeated Cancel is answered from the stored record.
                unit.emit(
                    provider_started_refund_event(
                        txn,
                        provider_refund_id=decision.record.payme_id,
                        amount=txn.amount,
                        status=RefundStatus.SUCCEEDED,
                        provider_updated_at=_at(decision.record.cancel_time),
                        observed_via="callback",
                        causation_id=str(reversal.rows[0]["id"]),
                    )
                )
            await unit.commit()
        if decision.effect is OrderEffect.REFUND:
            # Money went back to the payer of a succeeded payment: visible until refunds pick it up.
            log.warning(
                "payme cancelled performed transaction %s (reason %s): reversal of %s %s recorded for %s",
                params.id,
                int(params.reason),
                txn.amount,
                txn.currency,
                txn.payment_id,
            )
        return decision

    async def _set_fiscal_data(self, account: BoundAccount, params: SetFiscalDataParams) -> Decision:
        async with self.uow() as unit:
            row = await PaymeRepository(unit.session).get(params.id, account.id, for_update=True)
            perform = params.type is FiscalType.PERFORM
            if row is None or (row.perform_time if perform else row.cancel_time) == 0:
                # Nothing was performed (or cancelled) that this receipt could be for.
                raise PaymeError(PaymeErrorCode.RECEIPT_NOT_FOUND)
            if perform:
                row.fiscal_perform = dict(params.fiscal_data)
            else:
                row.fiscal_cancel = dict(params.fiscal_data)
            await unit.commit()
        return Decision(result={"success": True})


def _rejected(request_id: int | str | None, error: PaymeError, reason: str) -> PaymeAnswer:
    return PaymeAnswer(error_response(request_id, error), rejected=reason)


def _at(now_ms: int) -> datetime:
    return datetime.fromtimestamp(now_ms / 1000, tz=UTC)


def _payable(account: BoundAccount, txn: Transaction, now: datetime) -> bool:
    """Our side of "the order can still be paid": pending and not expired (cancelled, expired and paid
    transactions are not), and never a live one for a test account."""
    return txn.status is TransactionStatus.PENDING and not txn.is_expired(now) and not (account.test and txn.livemode)


def _view(account: BoundAccount, found: OrderRead | None, now: datetime) -> tuple[PaymeOrder, Transaction] | None:
    """Our Payme transaction of the payment, if it was started with this very account (another
    account's order is unknown to this merchant), and a test account never sees a live one."""
    if found is None:
        return None
    txn = found.transaction
    if txn.account_id != account.id or (account.test and txn.livemode):
        return None
    try:
        amount = to_tiyin(txn.amount, txn.currency)
    except ValueError:
        return None
    payable = _payable(account, txn, now)
    return PaymeOrder(txn.payment_id, amount, payable, found.active_payme_id, found.active_time), txn


def _decide_new(
    account: BoundAccount,
    params: CreateTransactionParams,
    order: PaymeOrder | None,
    txn: Transaction | None,
    now_ms: int,
) -> tuple[Decision, InsertRows | None]:
    """A Create of a Payme id we do not store, decided on the order: the answer, and the row to insert."""
    decision = create_transaction(params, None, order, transaction_id=new_id("pmt"), now_ms=now_ms)
    if decision.record is None:
        return decision, None
    assert txn is not None, "a transaction is created only for an order"
    return decision, new_transaction_row(decision.record, account, txn)


async def _locked(
    unit: ProvidersUnitOfWork, account: BoundAccount, payme_id: str
) -> tuple[PaymeTransactionRow, Transaction]:
    found = await PaymeRepository(unit.session).locked(payme_id)
    if found is None or found[0].account_id != account.id:
        raise PaymeError(PaymeErrorCode.TRANSACTION_NOT_FOUND)
    return found


async def _may_cancel_after_perform(unit: ProvidersUnitOfWork, account: BoundAccount, txn: Transaction) -> bool:
    """Whether a performed transaction may still be cancelled (a refund of the whole payment by Payme):
    not when the account refuses it (``settings.cancel_after_perform = refuse``: the goods cannot be
    taken back), nor once the payment has a refund of ours asked, pending or made (Payme would give the
    whole amount back on top of it). Either way Payme is answered -31007."""
    if account.settings.get("cancel_after_perform", "refund") != "refund":
        return False
    return not await unit.refunds.live_for_transaction(txn.id)
