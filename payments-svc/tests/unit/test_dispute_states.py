"""Which state of a dispute wins (``domain/disputes.py``: DSP-1..3), without I/O."""

from datetime import UTC, datetime, timedelta

import pytest
from payments_svc.domain.disputes import DisputeState, Verdict, verdict

T = datetime(2026, 12, 5, tzinfo=UTC)
LATER = T + timedelta(seconds=1)
EARLIER = T - timedelta(seconds=1)


def _held(status: str, withdrawn: bool = True) -> DisputeState:
    return DisputeState(status, withdrawn, T)


class TestVerdict:
    def test_the_first_state_is_new_whatever_it_is(self) -> None:
        assert verdict(None, DisputeState("needs_response", False, T)) == Verdict.NEW
        assert verdict(None, DisputeState("lost", True, T)) == Verdict.NEW

    @pytest.mark.parametrize(
        ("held", "status", "withdrawn", "at", "expected"),
        [
            # DSP-1: the provider's time orders the states.
            ("needs_response", "under_review", True, LATER, Verdict.CHANGE),
            ("needs_response", "needs_response", False, LATER, Verdict.CHANGE),
            ("needs_response", "lost", True, LATER, Verdict.CHANGE),
            ("under_review", "needs_response", True, EARLIER, Verdict.STALE),
            ("under_review", "won", False, EARLIER, Verdict.STALE),
            # DSP-2: a closed outcome is final; its funds may still settle later.
            ("lost", "under_review", True, LATER, Verdict.FINAL),
            ("lost", "won", False, LATER, Verdict.FINAL),
            ("won", "lost", True, T, Verdict.FINAL),
            ("won", "won", False, LATER, Verdict.CHANGE),
            ("won", "won", False, EARLIER, Verdict.STALE),
        ],
    )
    def test_states_apply_in_the_providers_order_and_a_closed_outcome_is_final(
        self, held: str, status: str, withdrawn: bool, at: datetime, expected: Verdict
    ) -> None:
        assert verdict(_held(held), DisputeState(status, withdrawn, at)) == expected

    @pytest.mark.parametrize(
        ("held", "new", "expected"),
        [
            # Opened, then its funds withdrawn, in one second (Stripe's created and funds_withdrawn).
            (("needs_response", False), ("needs_response", True), Verdict.CHANGE),
            (("needs_response", True), ("needs_response", False), Verdict.STALE),
            # Closed as won, then its funds reinstated, in one second (closed and funds_reinstated).
            (("won", True), ("won", False), Verdict.CHANGE),
            (("won", False), ("won", True), Verdict.STALE),
            (("lost", False), ("lost", True), Verdict.CHANGE),
            (("lost", True), ("lost", False), Verdict.STALE),
            # A closing state beats an open one; an answer under review beats one awaited.
            (("needs_response", True), ("lost", True), Verdict.CHANGE),
            (("needs_response", True), ("won", True), Verdict.CHANGE),
            (("needs_response", True), ("under_review", True), Verdict.CHANGE),
            (("warning_under_review", False), ("warning_needs_response", False), Verdict.STALE),
            # Equally far along: the first one applied stays.
            (("needs_response", True), ("needs_response", True), Verdict.STALE),
        ],
    )
    def test_states_of_the_same_second_are_ordered_by_how_far_along_they_are(
        self, held: tuple[str, bool], new: tuple[str, bool], expected: Verdict
    ) -> None:
        assert verdict(DisputeState(*held, T), DisputeState(*new, T)) == expected
