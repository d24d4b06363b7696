"""The rules of PROTOCOLS.md §2.3 and §2.5, one class per method, over frozen records and a fixed clock."""

from __future__ import annotations

from dataclasses import replace

import pytest
from providers_svc.protocols.payme.errors import PaymeError, PaymeErrorCode
from providers_svc.protocols.payme.params import (
    CheckPerformTransactionParams,
    CreateTransactionParams,
    GetStatementParams,
)
from providers_svc.protocols.payme.states import TIMEOUT_MS, CancelReason, TransactionState
from providers_svc.protocols.payme.transactions import (
    Decision,
    OrderEffect,
    PaymeOrder,
    PaymeTransaction,
    cancel_transaction,
    check_perform_transaction,
    check_transaction,
    create_transaction,
    get_statement,
    perform_transaction,
    release_timed_out,
)

PAYME_ID = "5305e3bab097f420a62ced0b"
OTHER_PAYME_ID = "5305e3bab097f420a62ced0c"
PAYME_TIME = 1_700_000_000_000  # Payme's ``time`` of CreateTransaction
CREATED_AT = PAYME_TIME + 1_500  # our clock when we stored it
AMOUNT = 500_000
ORDER = PaymeOrder(payment_id="pay_1", amount=AMOUNT, payable=True)
CREATE = CreateTransactionParams(PAYME_ID, PAYME_TIME, AMOUNT, "order_id", "pay_1")
CREATED = PaymeTransaction(
    payme_id=PAYME_ID,
    transaction_id="ptx_1",
    payment_id="pay_1",
    amount=AMOUNT,
    time=PAYME_TIME,
    create_time=CREATED_AT,
)
PERFORMED = CREATED.performed(CREATED_AT + 10_000)
CANCELLED = CREATED.cancelled(CREATED_AT + 20_000, CancelReason.DEBIT_ERROR)
REFUNDED = PERFORMED.cancelled(CREATED_AT + 30_000, CancelReason.REFUND)
LATER = CREATED_AT + 60_000  # "now" in most tests: well inside the 12 hours


def raises(code: PaymeErrorCode) -> pytest.RaisesExc[PaymeError]:
    return pytest.raises(PaymeError, check=lambda error: error.code is code)


def expired_error(decision: Decision, txn: PaymeTransaction, now_ms: int) -> None:
    """The §2.5 timeout: cancelled with reason 4 at ``now_ms``, stored, and answered -31008."""
    assert decision.error is not None and decision.error.code is PaymeErrorCode.CANNOT_PERFORM
    assert decision.result is None
    assert decision.record == replace(
        txn, state=TransactionState.CANCELLED, cancel_time=now_ms, reason=CancelReason.TIMEOUT
    )
    assert decision.effect is OrderEffect.RELEASE


class TestPaymeTransaction:
    def test_cancel_reasons_are_exactly_the_documented_ones(self) -> None:
        assert sorted(r.value for r in CancelReason) == [1, 2, 3, 4, 5, 10]

    def test_states_are_the_documented_ones(self) -> None:
        assert sorted(s.value for s in TransactionState) == [-2, -1, 1, 2]
        assert TIMEOUT_MS == 43_200_000

    @pytest.mark.parametrize(
        ("txn", "state", "perform_time", "cancel_time", "reason"),
        [
            (PERFORMED, TransactionState.PERFORMED, CREATED_AT + 10_000, 0, None),
            (CANCELLED, TransactionState.CANCELLED, 0, CREATED_AT + 20_000, CancelReason.DEBIT_ERROR),
            (
                REFUNDED,
                TransactionState.CANCELLED_AFTER_PERFORM,
                CREATED_AT + 10_000,
                CREATED_AT + 30_000,
                CancelReason.REFUND,
            ),
        ],
    )
    def test_transitions_set_their_times(
        self,
        txn: PaymeTransaction,
        state: TransactionState,
        perform_time: int,
        cancel_time: int,
        reason: CancelReason | None,
    ) -> None:
        assert (txn.state, txn.perform_time, txn.cancel_time, txn.reason) == (state, perform_time, cancel_time, reason)
        assert txn.create_time == CREATED_AT

    @pytest.mark.parametrize("txn", [PERFORMED, CANCELLED, REFUNDED])
    def test_only_a_created_transaction_can_be_performed(self, txn: PaymeTransaction) -> None:
        with pytest.raises(ValueError, match="cannot perform"):
            txn.performed(LATER)

    @pytest.mark.parametrize("txn", [CANCELLED, REFUNDED])
    def test_a_cancelled_transaction_cannot_be_cancelled_again(self, txn: PaymeTransaction) -> None:
        with pytest.raises(ValueError, match="cannot cancel"):
            txn.cancelled(LATER, CancelReason.UNKNOWN)

    @pytest.mark.parametrize(
        "changes",
        [
            {"state": TransactionState.PERFORMED},
            {"perform_time": LATER},
            {"cancel_time": LATER},
            {"reason": CancelReason.TIMEOUT},
            {"state": TransactionState.CANCELLED, "cancel_time": LATER},
            {"state": TransactionState.CANCELLED_AFTER_PERFORM, "cancel_time": LATER, "reason": CancelReason.REFUND},
            {"amount": 0},
            {"create_time": 0},
        ],
    )
    def test_inconsistent_record_is_refused(self, changes: dict[str, object]) -> None:
        with pytest.raises(ValueError, match="inconsistent"):
            replace(CREATED, **changes)

    @pytest.mark.parametrize(
        ("age", "expired"),
        [(TIMEOUT_MS - 1, False), (TIMEOUT_MS, True), (TIMEOUT_MS + 1, True), (0, False), (-5_000, False)],
    )
    def test_expiry_is_measured_from_paymes_time(self, age: int, expired: bool) -> None:
        assert CREATED.is_expired(PAYME_TIME + age) is expired


class TestDecision:
    def test_needs_exactly_one_answer(self) -> None:
        with pytest.raises(ValueError, match="exactly one"):
            Decision()
        with pytest.raises(ValueError, match="exactly one"):
            Decision(result={}, error=PaymeError(PaymeErrorCode.CANNOT_PERFORM))

    def test_a_record_needs_an_effect(self) -> None:
        with pytest.raises(ValueError, match="order"):
            Decision(record=CREATED, result={})


class TestCheckPerformTransaction:
    PARAMS = CheckPerformTransactionParams(AMOUNT, "order_id", "pay_1")

    def test_payable_order_is_allowed(self) -> None:
        assert check_perform_transaction(self.PARAMS, ORDER) == Decision(result={"allow": True})

    @pytest.mark.parametrize(
        ("order", "code", "data"),
        [
            (None, PaymeErrorCode.ORDER_NOT_FOUND, "order_id"),
            (replace(ORDER, amount=AMOUNT + 1), PaymeErrorCode.INVALID_AMOUNT, None),
            (replace(ORDER, amount=AMOUNT - 100), PaymeErrorCode.INVALID_AMOUNT, None),
            (replace(ORDER, payable=False), PaymeErrorCode.ORDER_NOT_PAYABLE, "order_id"),
            (replace(ORDER, active_transaction_id=PAYME_ID), PaymeErrorCode.ORDER_AWAITING_PAYMENT, "order_id"),
            # Paid through Payme: "not payable" says more than "awaiting payment".
            (
                replace(ORDER, payable=False, active_transaction_id=PAYME_ID),
                PaymeErrorCode.ORDER_NOT_PAYABLE,
                "order_id",
            ),
        ],
    )
    def test_refusals(self, order: PaymeOrder | None, code: PaymeErrorCode, data: str | None) -> None:
        with raises(code) as caught:
            check_perform_transaction(self.PARAMS, order)
        assert caught.value.data == data

    def test_only_the_account_range_and_31001_are_answered(self) -> None:
        # §2.2: CheckPerformTransaction's own errors are -31001 and -31050..-31099, never -31008.
        with pytest.raises(PaymeError) as caught:
            check_perform_transaction(self.PARAMS, replace(ORDER, active_transaction_id=OTHER_PAYME_ID))
        assert caught.value.code.is_account_error


class TestReleaseTimedOut:
    """Before CheckPerform/Create is decided for an order, its active transaction past the 12 hours is
    cancelled with reason 4 and the call is decided on the order without it."""

    ACTIVE = replace(ORDER, active_transaction_id=PAYME_ID, active_time=PAYME_TIME)

    @pytest.mark.parametrize(("age", "expired"), [(TIMEOUT_MS - 1, False), (TIMEOUT_MS, True), (TIMEOUT_MS + 1, True)])
    def test_a_created_one_at_the_12_hour_boundary(self, age: int, expired: bool) -> None:
        now = PAYME_TIME + age
        assert self.ACTIVE.active_timed_out(now) is expired
        order, released = release_timed_out(self.ACTIVE, CREATED, now)
        if expired:
            assert order == ORDER
            assert released == replace(
                CREATED, state=TransactionState.CANCELLED, cancel_time=now, reason=CancelReason.TIMEOUT
            )
            # The call is then decided as for a free order.
            assert check_perform_transaction(TestCheckPerformTransaction.PARAMS, order).result == {"allow": True}
        else:
            assert (order, released) == (self.ACTIVE, None)
            with raises(PaymeErrorCode.ORDER_AWAITING_PAYMENT):
                check_perform_transaction(TestCheckPerformTransaction.PARAMS, order)

    def test_a_performed_one_is_never_released(self) -> None:
        # The order view carries no ``active_time`` for a performed transaction, and the record decides.
        order = replace(ORDER, active_transaction_id=PAYME_ID, payable=False)
        far = PAYME_TIME + 10 * TIMEOUT_MS
        assert not order.active_timed_out(far)
        assert release_timed_out(order, PERFORMED, far) == (order, None)

    def test_only_the_orders_active_transaction_is_released(self) -> None:
        with pytest.raises(ValueError, match="not the active transaction"):
            release_timed_out(replace(self.ACTIVE, active_transaction_id=OTHER_PAYME_ID), CREATED, LATER)


class TestCreateTransaction:
    def create(
        self, existing: PaymeTransaction | None = None, order: PaymeOrder | None = ORDER, *, now_ms: int = LATER
    ) -> Decision:
        return create_transaction(CREATE, existing, order, transaction_id="ptx_1", now_ms=now_ms)

    def test_new_transaction_is_created_and_reserves_the_order(self) -> None:
        decision = self.create(now_ms=CREATED_AT)
        assert decision.record == CREATED
        assert decision.effect is OrderEffect.RESERVE
        assert decision.result == {"create_time": CREATED_AT, "transaction": "ptx_1", "state": 1}

    def test_same_id_again_returns_the_stored_answer(self) -> None:
        first = self.create(now_ms=CREATED_AT)
        assert first.record is not None
        repeat = self.create(first.record, now_ms=LATER)
        assert repeat == Decision(result=first.result)
        assert repeat.result is not None and repeat.result["create_time"] == CREATED_AT

    def test_same_id_again_does_not_reread_the_order(self) -> None:
        # The order is reserved by this very transaction now, and may even be gone from the view.
        assert self.create(CREATED, None).result == {"create_time": CREATED_AT, "transaction": "ptx_1", "state": 1}

    @pytest.mark.parametrize("txn", [PERFORMED, CANCELLED, REFUNDED])
    def test_same_id_in_another_state_is_31008(self, txn: PaymeTransaction) -> None:
        with raises(PaymeErrorCode.CANNOT_PERFORM):
            self.create(txn)

    @pytest.mark.parametrize(("age", "expired"), [(TIMEOUT_MS - 1, False), (TIMEOUT_MS, True), (TIMEOUT_MS + 1, True)])
    def test_same_id_at_the_12_hour_boundary(self, age: int, expired: bool) -> None:
        now = PAYME_TIME + age
        decision = self.create(CREATED, now_ms=now)
        if expired:
            expired_error(decision, CREATED, now)
        else:
            assert decision == Decision(result={"create_time": CREATED_AT, "transaction": "ptx_1", "state": 1})

    def test_expired_repeat_then_answers_31008_from_the_stored_cancel(self) -> None:
        now = PAYME_TIME + TIMEOUT_MS
        stored = self.create(CREATED, now_ms=now).record
        with raises(PaymeErrorCode.CANNOT_PERFORM):
            self.create(stored, now_ms=now + 1)

    @pytest.mark.parametrize(
        ("age", "accepted"),
        [
            (TIMEOUT_MS - 1, True),
            (TIMEOUT_MS, False),
            (TIMEOUT_MS + 1, False),
            # Payme's time ahead of our clock: a skew is accepted, a time 12 hours ahead is not.
            (-60_000, True),
            (-(TIMEOUT_MS - 1), True),
            (-TIMEOUT_MS, False),
            (-10 * 365 * 86_400_000, False),
        ],
    )
    def test_new_id_at_the_12_hour_boundary(self, age: int, accepted: bool) -> None:
        now = PAYME_TIME + age
        if accepted:
            decision = self.create(now_ms=now)
            assert decision.record is not None and decision.record.create_time == now
        else:
            with raises(PaymeErrorCode.CANNOT_PERFORM):
                self.create(now_ms=now)

    def test_new_id_for_an_order_with_an_active_transaction_is_31008(self) -> None:
        with raises(PaymeErrorCode.CANNOT_PERFORM):
            self.create(order=replace(ORDER, active_transaction_id=OTHER_PAYME_ID))

    @pytest.mark.parametrize(
        ("order", "code", "data"),
        [
            (None, PaymeErrorCode.ORDER_NOT_FOUND, "order_id"),
            (replace(ORDER, amount=AMOUNT * 2), PaymeErrorCode.INVALID_AMOUNT, None),
            (replace(ORDER, payable=False), PaymeErrorCode.ORDER_NOT_PAYABLE, "order_id"),
        ],
    )
    def test_new_id_order_refusals(self, order: PaymeOrder | None, code: PaymeErrorCode, data: str | None) -> None:
        with raises(code) as caught:
            self.create(order=order)
        assert caught.value.data == data

    def test_a_record_looked_up_by_another_id_is_a_bug(self) -> None:
        with pytest.raises(ValueError, match="looked up"):
            self.create(replace(CREATED, payme_id=OTHER_PAYME_ID))


class TestPerformTransaction:
    def test_created_transaction_is_performed_and_pays_the_order(self) -> None:
        decision = perform_transaction(CREATED, order_payable=True, now_ms=LATER)
        assert decision.record == replace(CREATED, state=TransactionState.PERFORMED, perform_time=LATER)
        assert decision.effect is OrderEffect.PAY
        assert decision.result == {"transaction": "ptx_1", "perform_time": LATER, "state": 2}

    def test_performed_again_returns_the_stored_perform_time(self) -> None:
        decision = perform_transaction(PERFORMED, order_payable=False, now_ms=LATER + TIMEOUT_MS * 10)
        assert decision == Decision(result={"transaction": "ptx_1", "perform_time": PERFORMED.perform_time, "state": 2})

    @pytest.mark.parametrize("txn", [CANCELLED, REFUNDED])
    def test_cancelled_transaction_cannot_be_performed(self, txn: PaymeTransaction) -> None:
        with raises(PaymeErrorCode.CANNOT_PERFORM):
            perform_transaction(txn, order_payable=True, now_ms=LATER)

    def test_unknown_transaction_is_31003(self) -> None:
        with raises(PaymeErrorCode.TRANSACTION_NOT_FOUND):
            perform_transaction(None, order_payable=True, now_ms=LATER)

    def test_order_no_longer_payable_is_31008_and_nothing_is_stored(self) -> None:
        with raises(PaymeErrorCode.CANNOT_PERFORM):
            perform_transaction(CREATED, order_payable=False, now_ms=LATER)

    @pytest.mark.parametrize(("age", "expired"), [(TIMEOUT_MS - 1, False), (TIMEOUT_MS, True), (TIMEOUT_MS + 1, True)])
    def test_12_hour_boundary(self, age: int, expired: bool) -> None:
        now = PAYME_TIME + age
        decision = perform_transaction(CREATED, order_payable=True, now_ms=now)
        if expired:
            expired_error(decision, CREATED, now)
        else:
            assert decision.record is not None and decision.record.state is TransactionState.PERFORMED


class TestCancelTransaction:
    def test_created_transaction_is_cancelled_and_releases_the_order(self) -> None:
        decision = cancel_transaction(CREATED, CancelReason.TIMEOUT, refund_allowed=False, now_ms=LATER)
        assert decision.record == replace(
            CREATED, state=TransactionState.CANCELLED, cancel_time=LATER, reason=CancelReason.TIMEOUT
        )
        assert decision.effect is OrderEffect.RELEASE
        assert decision.result == {"transaction": "ptx_1", "cancel_time": LATER, "state": -1}

    def test_performed_transaction_is_refunded_when_allowed(self) -> None:
        decision = cancel_transaction(PERFORMED, CancelReason.REFUND, refund_allowed=True, now_ms=LATER)
        assert decision.record == replace(
            PERFORMED, state=TransactionState.CANCELLED_AFTER_PERFORM, cancel_time=LATER, reason=CancelReason.REFUND
        )
        assert decision.effect is OrderEffect.REFUND
        assert decision.result == {"transaction": "ptx_1", "cancel_time": LATER, "state": -2}

    def test_performed_transaction_is_31007_when_delivered(self) -> None:
        with raises(PaymeErrorCode.CANNOT_CANCEL):
            cancel_transaction(PERFORMED, CancelReason.REFUND, refund_allowed=False, now_ms=LATER)

    @pytest.mark.parametrize("txn", [CANCELLED, REFUNDED])
    @pytest.mark.parametrize("reason", [CancelReason.UNKNOWN, CancelReason.REFUND])
    def test_cancelled_again_returns_the_stored_cancel(self, txn: PaymeTransaction, reason: CancelReason) -> None:
        decision = cancel_transaction(txn, reason, refund_allowed=False, now_ms=LATER + 1)
        assert decision == Decision(
            result={"transaction": "ptx_1", "cancel_time": txn.cancel_time, "state": int(txn.state)}
        )

    def test_unknown_transaction_is_31003(self) -> None:
        with raises(PaymeErrorCode.TRANSACTION_NOT_FOUND):
            cancel_transaction(None, CancelReason.UNKNOWN, refund_allowed=True, now_ms=LATER)


class TestCheckTransaction:
    @pytest.mark.parametrize(
        ("txn", "expected"),
        [
            (CREATED, (0, 0, 1, None)),
            (PERFORMED, (CREATED_AT + 10_000, 0, 2, None)),
            (CANCELLED, (0, CREATED_AT + 20_000, -1, 2)),
            (REFUNDED, (CREATED_AT + 10_000, CREATED_AT + 30_000, -2, 5)),
        ],
    )
    def test_reports_the_stored_times_state_and_reason(
        self, txn: PaymeTransaction, expected: tuple[int, int, int, int | None]
    ) -> None:
        perform_time, cancel_time, state, reason = expected
        assert check_transaction(txn) == Decision(
            result={
                "create_time": CREATED_AT,
                "perform_time": perform_time,
                "cancel_time": cancel_time,
                "transaction": "ptx_1",
                "state": state,
                "reason": reason,
            }
        )

    def test_unknown_transaction_is_31003(self) -> None:
        with raises(PaymeErrorCode.TRANSACTION_NOT_FOUND):
            check_transaction(None)


class TestGetStatement:
    def txn(self, n: int, time: int) -> PaymeTransaction:
        return replace(CREATED, payme_id=f"{n:024d}", transaction_id=f"ptx_{n}", time=time, create_time=time + 1)

    def test_rows_in_range_inclusive_sorted_by_paymes_time(self) -> None:
        stored = [self.txn(1, 300), self.txn(2, 100), self.txn(3, 200), self.txn(4, 99), self.txn(5, 301)]
        decision = get_statement(GetStatementParams(100, 300), stored, account_field="order_id")
        assert decision.result is not None
        rows = decision.result["transactions"]
        assert isinstance(rows, list)
        assert [row["transaction"] for row in rows if isinstance(row, dict)] == ["ptx_2", "ptx_3", "ptx_1"]

    def test_row_shape(self) -> None:
        decision = get_statement(GetStatementParams(0, PAYME_TIME), [REFUNDED], account_field="invoice")
        assert decision == Decision(
            result={
                "transactions": [
                    {
                        "id": PAYME_ID,
                        "time": PAYME_TIME,
                        "amount": AMOUNT,
                        "account": {"invoice": "pay_1"},
                        "create_time": CREATED_AT,
                        "perform_time": CREATED_AT + 10_000,
                        "cancel_time": CREATED_AT + 30_000,
                        "transaction": "ptx_1",
                        "state": -2,
                        "reason": 5,
                        "receivers": None,
                    }
                ]
            }
        )

    @pytest.mark.parametrize(("start", "end"), [(0, PAYME_TIME - 1), (PAYME_TIME + 1, PAYME_TIME * 2), (10, 5)])
    def test_nothing_in_range_is_an_empty_list(self, start: int, end: int) -> None:
        decision = get_statement(GetStatementParams(start, end), [CREATED], account_field="order_id")
        assert decision == Decision(result={"transactions": []})

    def test_equal_times_are_ordered_by_paymes_id(self) -> None:
        stored = [self.txn(2, 100), self.txn(1, 100)]
        decision = get_statement(GetStatementParams(100, 100), stored, account_field="order_id")
        assert decision.result is not None
        rows = decision.result["transactions"]
        assert isinstance(rows, list)
        assert [row["id"] for row in rows if isinstance(row, dict)] == [f"{1:024d}", f"{2:024d}"]
