"""Which verdict a refund takes (REF-2..4) and what its refunds make of a payment (REF-5)."""

from datetime import UTC, datetime, timedelta

import pytest
from payments_svc.domain.payment import PaymentStatus
from payments_svc.domain.refunds import RefundState, RefundStatus, Verdict, status_after_refunds, totals, verdict

R = RefundStatus
T = datetime(2026, 12, 6, tzinfo=UTC)


def _state(status: RefundStatus, seconds: int | None) -> RefundState:
    return RefundState(status, None if seconds is None else T + timedelta(seconds=seconds))


class TestVerdict:
    @pytest.mark.parametrize(
        ("held", "new", "expected"),
        [
            # A refund we created, never heard of: any verdict applies.
            (_state(R.PENDING, None), _state(R.PENDING, 1), Verdict.APPLY),
            (_state(R.PENDING, None), _state(R.SUCCEEDED, 1), Verdict.APPLY),
            (_state(R.PENDING, None), _state(R.FAILED, 1), Verdict.APPLY),
            # Pending states in the provider's order; an older or equal one is stale.
            (_state(R.PENDING, 5), _state(R.PENDING, 6), Verdict.APPLY),
            (_state(R.PENDING, 5), _state(R.PENDING, 5), Verdict.STALE),
            (_state(R.PENDING, 5), _state(R.PENDING, 4), Verdict.STALE),
            # A final verdict wins over a pending state whatever its time.
            (_state(R.PENDING, 5), _state(R.SUCCEEDED, 4), Verdict.APPLY),
            (_state(R.PENDING, 5), _state(R.FAILED, 4), Verdict.APPLY),
            # A final state is final: pending or the same again change nothing...
            (_state(R.SUCCEEDED, 5), _state(R.PENDING, 9), Verdict.FINAL),
            (_state(R.SUCCEEDED, 5), _state(R.SUCCEEDED, 9), Verdict.FINAL),
            (_state(R.FAILED, 5), _state(R.FAILED, 1), Verdict.FINAL),
            # ...and the other final state contradicts a fact: an anomaly.
            (_state(R.SUCCEEDED, 5), _state(R.FAILED, 9), Verdict.CONFLICT),
            (_state(R.FAILED, 5), _state(R.SUCCEEDED, 1), Verdict.CONFLICT),
        ],
    )
    def test_table(self, held: RefundState, new: RefundState, expected: Verdict) -> None:
        assert verdict(held, new) is expected


class TestTotals:
    def test_within_the_payment_the_totals_are_the_sums(self) -> None:
        t = totals(5000, succeeded=2000, pending=1000)
        assert (t.amount_refunded, t.refund_reserved, t.over_refunded, t.over_reserved) == (2000, 3000, 0, 0)

    def test_beyond_the_payment_they_stop_at_its_amount_and_say_by_how_much(self) -> None:
        over_reserved = totals(5000, succeeded=5000, pending=5000)
        assert (over_reserved.amount_refunded, over_reserved.refund_reserved) == (5000, 5000)
        assert (over_reserved.over_refunded, over_reserved.over_reserved) == (0, 5000)
        over_refunded = totals(5000, succeeded=7000, pending=0)
        assert (over_refunded.amount_refunded, over_refunded.over_refunded) == (5000, 2000)

    @pytest.mark.parametrize(
        ("refunded", "status"),
        [
            (1, PaymentStatus.PARTIALLY_REFUNDED),
            (4999, PaymentStatus.PARTIALLY_REFUNDED),
            (5000, PaymentStatus.REFUNDED),
        ],
    )
    def test_status_after_refunds(self, refunded: int, status: PaymentStatus) -> None:
        assert status_after_refunds(5000, refunded) is status
