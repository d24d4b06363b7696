"""Payme's transaction rules (PROTOCOLS.md §2.3, §2.5) as pure functions over frozen records.

Each method function takes what the caller read (the transaction with Payme's id, or None; a view of the
order) plus "now", and returns a ``Decision``: the record to store (or None), what that means for the
order, and the exact answer. A function raises ``PaymeError`` only when nothing is to be stored; the one
answer that is an error *and* a write (cancelling a transaction found expired, §2.5) comes back as a
``Decision`` with ``error`` set, so a caller that stores ``record`` whenever present cannot lose it.

Every answer about an existing transaction is built from its stored fields, never from "now": Payme repeats
Create/Perform/Cancel when a reply is lost (the sandbox sends each twice) and expects the same bytes.

Times are Payme's: integer milliseconds since the epoch (UTC). Amounts are tiyin (see ``amounts``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from providers_svc.protocols.payme.errors import PaymeError, PaymeErrorCode
from providers_svc.protocols.payme.jsonrpc import JsonValue
from providers_svc.protocols.payme.params import (
    CheckPerformTransactionParams,
    CreateTransactionParams,
    GetStatementParams,
)
from providers_svc.protocols.payme.states import TIMEOUT_MS, CancelReason, TransactionState


@dataclass(frozen=True)
class PaymeTransaction:
    """One Payme transaction as we store it. ``transaction_id`` is ours (answered as ``transaction``);
    ``payment_id`` is the value of the account field, our payment id; ``time`` is Payme's creation time,
    which the 12-hour timeout and GetStatement are measured on; 0 means "not set" for the three times."""

    payme_id: str
    transaction_id: str
    payment_id: str
    amount: int
    time: int
    create_time: int
    state: TransactionState = TransactionState.CREATED
    perform_time: int = 0
    cancel_time: int = 0
    reason: CancelReason | None = None

    def __post_init__(self) -> None:
        # A record that breaks these did not come out of this module (a bad row, a bad migration): refuse it
        # rather than answer Payme from it.
        performed = self.state in (TransactionState.PERFORMED, TransactionState.CANCELLED_AFTER_PERFORM)
        cancelled = self.state.is_cancelled
        if (
            self.amount <= 0
            or self.create_time <= 0
            or (self.perform_time > 0) != performed
            or (self.cancel_time > 0) != cancelled
            or (self.reason is not None) != cancelled
        ):
            raise ValueError(f"inconsistent Payme transaction {self.payme_id!r} in state {self.state.value}")

    def is_expired(self, now_ms: int) -> bool:
        """Past the 12 hours since Payme's ``time``. Exactly 12 h counts as expired, the same boundary as the
        one for accepting a new transaction (``now - time >= 43 200 000``), so no age is both."""
        return _past_timeout(self.time, now_ms)

    def performed(self, now_ms: int) -> PaymeTransaction:
        if self.state is not TransactionState.CREATED:
            raise ValueError(f"cannot perform a transaction in state {self.state.value}")
        return replace(self, state=TransactionState.PERFORMED, perform_time=now_ms)

    def cancelled(self, now_ms: int, reason: CancelReason) -> PaymeTransaction:
        if self.state is TransactionState.CREATED:
            state = TransactionState.CANCELLED
        elif self.state is TransactionState.PERFORMED:
            state = TransactionState.CANCELLED_AFTER_PERFORM
        else:
            raise ValueError(f"cannot cancel a transaction in state {self.state.value}")
        return replace(self, state=state, cancel_time=now_ms, reason=reason)


@dataclass(frozen=True)
class PaymeOrder:
    """Our payment as Payme's methods need to see it. ``payable``: the payment itself can still be paid
    (pending, not expired, cancelled or paid through any provider), whatever Payme holds on it.
    ``active_transaction_id``: Payme's id of a transaction in state 1 or 2 on this payment, if any;
    ``active_time``: that transaction's Payme ``time`` when it is a created one (state 1), else None."""

    payment_id: str
    amount: int
    payable: bool
    active_transaction_id: str | None = None
    active_time: int | None = None

    def active_timed_out(self, now_ms: int) -> bool:
        """The active transaction is a created one past its 12-hour timeout: it no longer holds the order.
        The caller locks it and decides through ``release_timed_out`` instead of on this order."""
        return self.active_time is not None and _past_timeout(self.active_time, now_ms)


class OrderEffect(StrEnum):
    """What a stored change means for our payment; the caller applies it in the same database transaction."""

    RESERVE = "reserve"  # state 1: held for this Payme transaction, awaiting payment
    PAY = "pay"  # state 2: paid
    RELEASE = "release"  # state -1: free again (cancelled before perform, or timed out)
    REFUND = "refund"  # state -2: paid money given back


@dataclass(frozen=True)
class Decision:
    record: PaymeTransaction | None = None
    effect: OrderEffect | None = None
    result: dict[str, JsonValue] | None = None
    error: PaymeError | None = None

    def __post_init__(self) -> None:
        if (self.result is None) == (self.error is None):
            raise ValueError("a decision answers with exactly one of result and error")
        if (self.record is None) != (self.effect is None):
            raise ValueError("a stored change always says what it means for the order")


def release_timed_out(
    order: PaymeOrder, active: PaymeTransaction, now_ms: int
) -> tuple[PaymeOrder, PaymeTransaction | None]:
    """Before CheckPerformTransaction or CreateTransaction is decided for ``order``: if its active
    transaction ``active`` is a created one past its 12-hour timeout, that transaction cancelled with
    reason 4 at ``now_ms`` (to store, ``OrderEffect.RELEASE``, exactly as when Payme calls about it:
    later answers about it come from the stored cancel), and the order without it, on which the call is
    then decided. Otherwise the order as it is and None: a created transaction inside its 12 hours, and a
    performed one, keep the order."""
    if order.active_transaction_id != active.payme_id:
        raise ValueError(f"{active.payme_id!r} is not the active transaction of {order.payment_id!r}")
    if active.state is not TransactionState.CREATED or not active.is_expired(now_ms):
        return order, None
    released = active.cancelled(now_ms, CancelReason.TIMEOUT)
    return replace(order, active_transaction_id=None, active_time=None), released


def check_perform_transaction(params: CheckPerformTransactionParams, order: PaymeOrder | None) -> Decision:
    order = _payable_order(order, params.amount, params.account_field)
    if order.active_transaction_id is not None:
        # CheckPerformTransaction may answer only -31001 and account errors (§2.2), so not -31008 here.
        raise PaymeError(PaymeErrorCode.ORDER_AWAITING_PAYMENT, data=params.account_field)
    return Decision(result={"allow": True})


def create_transaction(
    params: CreateTransactionParams,
    existing: PaymeTransaction | None,
    order: PaymeOrder | None,
    *,
    transaction_id: str,
    now_ms: int,
) -> Decision:
    """``existing`` is the stored transaction with ``params.id``; ``order`` is read only when there is none.
    ``transaction_id`` is the id we give a new transaction."""
    if existing is not None:
        _check_same_transaction(existing, params.id)
        if existing.state is not TransactionState.CREATED:
            raise PaymeError(PaymeErrorCode.CANNOT_PERFORM)
        if existing.is_expired(now_ms):
            return _expire(existing, now_ms)
        return Decision(result=_create_result(existing))

    order = _payable_order(order, params.amount, params.account_field)
    if order.active_transaction_id is not None:
        # One active transaction per order. The official template and the sandbox guides answer -31008;
        # CheckPerformTransaction, which cannot, already answered ORDER_AWAITING_PAYMENT.
        raise PaymeError(PaymeErrorCode.CANNOT_PERFORM)
    if now_ms - params.time >= TIMEOUT_MS:
        # §2.4 gives -31008 "also for an expired transaction"; -31050..-31099 stay for the account input.
        raise PaymeError(PaymeErrorCode.CANNOT_PERFORM)
    if params.time - now_ms >= TIMEOUT_MS:
        # A time 12 hours or more ahead of our clock is no clock's skew: its timeout would not fire for
        # that long, and it would hold the order's one active place meanwhile.
        raise PaymeError(PaymeErrorCode.CANNOT_PERFORM)
    record = PaymeTransaction(
        payme_id=params.id,
        transaction_id=transaction_id,
        payment_id=order.payment_id,
        amount=params.amount,
        time=params.time,
        create_time=now_ms,
    )
    return Decision(record=record, effect=OrderEffect.RESERVE, result=_create_result(record))


def perform_transaction(existing: PaymeTransaction | None, *, order_payable: bool, now_ms: int) -> Decision:
    """``order_payable`` is ``PaymeOrder.payable`` of the transaction's payment: false when it was cancelled,
    expired or paid elsewhere meanwhile, and then Payme must not take the money (it cancels on -31008)."""
    txn = _found(existing)
    if txn.state is TransactionState.PERFORMED:
        return Decision(result=_perform_result(txn))
    if txn.state is not TransactionState.CREATED:
        raise PaymeError(PaymeErrorCode.CANNOT_PERFORM)
    if txn.is_expired(now_ms):
        return _expire(txn, now_ms)
    if not order_payable:
        raise PaymeError(PaymeErrorCode.CANNOT_PERFORM)
    record = txn.performed(now_ms)
    return Decision(record=record, effect=OrderEffect.PAY, result=_perform_result(record))


def cancel_transaction(
    existing: PaymeTransaction | None, reason: CancelReason, *, refund_allowed: bool, now_ms: int
) -> Decision:
    """``refund_allowed``: a performed transaction's payment may still be cancelled (nothing delivered that
    cannot be taken back); when false, cancelling it answers -31007."""
    txn = _found(existing)
    if txn.state.is_cancelled:
        # The stored cancel_time, state and reason stand; a repeat's reason is not recorded.
        return Decision(result=_cancel_result(txn))
    if txn.state is TransactionState.PERFORMED and not refund_allowed:
        raise PaymeError(PaymeErrorCode.CANNOT_CANCEL)
    effect = OrderEffect.RELEASE if txn.state is TransactionState.CREATED else OrderEffect.REFUND
    record = txn.cancelled(now_ms, reason)
    return Decision(record=record, effect=effect, result=_cancel_result(record))


def check_transaction(existing: PaymeTransaction | None) -> Decision:
    txn = _found(existing)
    return Decision(
        result={
            "create_time": txn.create_time,
            "perform_time": txn.perform_time,
            "cancel_time": txn.cancel_time,
            "transaction": txn.transaction_id,
            "state": int(txn.state),
            "reason": _reason(txn),
        }
    )


def get_statement(
    params: GetStatementParams, transactions: Iterable[PaymeTransaction], *, account_field: str
) -> Decision:
    """The stored transactions with ``from <= time <= to`` (Payme's ``time``), oldest first. Only a
    successful CreateTransaction stores one, so every stored transaction qualifies by its state."""
    chosen = sorted(
        (t for t in transactions if params.start <= t.time <= params.end),
        key=lambda t: (t.time, t.payme_id),
    )
    return Decision(result={"transactions": [statement_row(t, account_field=account_field) for t in chosen]})


def statement_row(txn: PaymeTransaction, *, account_field: str) -> dict[str, JsonValue]:
    """One GetStatement row. ``account`` holds only our field: the one value we keep from Payme's account."""
    return {
        "id": txn.payme_id,
        "time": txn.time,
        "amount": txn.amount,
        "account": {account_field: txn.payment_id},
        "create_time": txn.create_time,
        "perform_time": txn.perform_time,
        "cancel_time": txn.cancel_time,
        "transaction": txn.transaction_id,
        "state": int(txn.state),
        "reason": _reason(txn),
        "receivers": None,
    }


def _payable_order(order: PaymeOrder | None, amount: int, account_field: str) -> PaymeOrder:
    if order is None:
        raise PaymeError(PaymeErrorCode.ORDER_NOT_FOUND, data=account_field)
    if amount != order.amount:
        raise PaymeError(PaymeErrorCode.INVALID_AMOUNT)
    if not order.payable:
        raise PaymeError(PaymeErrorCode.ORDER_NOT_PAYABLE, data=account_field)
    return order


def _check_same_transaction(txn: PaymeTransaction, payme_id: str) -> None:
    if txn.payme_id != payme_id:
        raise ValueError(f"looked up {payme_id!r} but got {txn.payme_id!r}")


def _found(existing: PaymeTransaction | None) -> PaymeTransaction:
    if existing is None:
        raise PaymeError(PaymeErrorCode.TRANSACTION_NOT_FOUND)
    return existing


def _past_timeout(payme_time: int, now_ms: int) -> bool:
    return now_ms - payme_time >= TIMEOUT_MS


def _expire(txn: PaymeTransaction, now_ms: int) -> Decision:
    return Decision(
        record=txn.cancelled(now_ms, CancelReason.TIMEOUT),
        effect=OrderEffect.RELEASE,
        error=PaymeError(PaymeErrorCode.CANNOT_PERFORM),
    )


def _reason(txn: PaymeTransaction) -> int | None:
    return None if txn.reason is None else int(txn.reason)


def _create_result(txn: PaymeTransaction) -> dict[str, JsonValue]:
    return {"create_time": txn.create_time, "transaction": txn.transaction_id, "state": int(txn.state)}


def _perform_result(txn: PaymeTransaction) -> dict[str, JsonValue]:
    return {"transaction": txn.transaction_id, "perform_time": txn.perform_time, "state": int(txn.state)}


def _cancel_result(txn: PaymeTransaction) -> dict[str, JsonValue]:
    return {"transaction": txn.transaction_id, "cancel_time": txn.cancel_time, "state": int(txn.state)}
