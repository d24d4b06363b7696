"""Which state of a dispute wins (``domain/disputes.py``: DSP-1..3), without I/O."""

from datetime import UTC, datetime, timedelta

import pytest
from payments_svc.domain.disputes import HeldState, Verdict, verdict

T = datetime(2026, 12, 5, tzinfo=UTC)
LATER = T + timedelta(seconds=1)
EARLIER = T - timedelta(seconds=1)


class TestVerdict:
    def test_the_first_state_is_new_whatever_it_is(self) -> None:
        assert verdict(None, "needs_response", T) == verdict(None, "lost", T) == Verdict.NEW

    @pytest.mark.parametrize(
        ("held", "status", "at", "expected"),
        [
            ("needs_response", "under_review", LATER, Verdict.CHANGE),
            ("needs_response", "lost", LATER, Verdict.CHANGE),
            ("under_review", "needs_response", EARLIER, Verdict.STALE),
            ("under_review", "won", EARLIER, Verdict.STALE),
            ("needs_response", "under_review", T, Verdict.STALE),
            ("needs_response", "needs_response", T, Verdict.STALE),
            ("needs_response", "lost", T, Verdict.CHANGE),
            ("lost", "under_review", LATER, Verdict.FINAL),
            ("lost", "won", LATER, Verdict.FINAL),
            ("won", "lost", T, Verdict.FINAL),
            ("won", "won", LATER, Verdict.CHANGE),
            ("won", "won", T, Verdict.STALE),
            ("won", "won", EARLIER, Verdict.STALE),
        ],
    )
    def test_states_apply_in_the_providers_order_and_a_closed_outcome_is_final(
        self, held: str, status: str, at: datetime, expected: Verdict
    ) -> None:
        assert verdict(HeldState(held, T), status, at) == expected
