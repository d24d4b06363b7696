"""PAY-6: a failed attempt returns the payment to CREATED (announced as ``payment.attempt_failed``), and
a payment closes as FAILED, not EXPIRED, when its last attempt failed."""

from types import SimpleNamespace

import pytest
from payments_svc.domain.attempts import AttemptStatus, closed_status, ended_status
from payments_svc.domain.payment import PaymentStatus, can_transition, event_for

S = PaymentStatus


class TestBackToCreated:
    def test_a_pending_payment_may_become_payable_again(self) -> None:
        assert can_transition(S.PROVIDER_PENDING, S.CREATED)

    def test_that_move_is_announced_as_the_attempts_failure(self) -> None:
        assert event_for(S.PROVIDER_PENDING, S.CREATED) == "payment.attempt_failed"
        assert event_for(None, S.CREATED) == "payment.created"
        assert event_for(S.CREATED, S.FAILED) == "payment.failed"
        assert event_for(S.PROVIDER_PENDING, S.SUCCEEDED) == "payment.succeeded"

    @pytest.mark.parametrize("final", [S.SUCCEEDED, S.FAILED, S.EXPIRED, S.CANCELLED, S.REFUNDED])
    def test_no_final_payment_becomes_payable_again(self, final: S) -> None:
        assert not can_transition(final, S.CREATED)


class TestClosing:
    def test_after_a_failed_attempt_the_checkout_closes_as_failed(self) -> None:
        payment = SimpleNamespace(status=S.CREATED, failure_code="card_declined")
        assert closed_status(payment) is S.FAILED

    def test_never_tried_or_still_pending_closes_as_expired(self) -> None:
        assert closed_status(SimpleNamespace(status=S.CREATED, failure_code=None)) is S.EXPIRED
        # A later attempt is under way: the earlier failure is not the payment's outcome.
        assert closed_status(SimpleNamespace(status=S.PROVIDER_PENDING, failure_code="card_declined")) is S.EXPIRED


class TestEndedStatus:
    @pytest.mark.parametrize("code", ["payme_cancelled", "click_-9_cancelled", "octo_expired", "sandbox_timeout"])
    def test_cancellations_and_expiries_are_cancelled(self, code: str) -> None:
        assert ended_status(code) is AttemptStatus.CANCELLED

    @pytest.mark.parametrize("code", ["card_declined", "insufficient_funds", None])
    def test_declines_are_failed(self, code: str | None) -> None:
        assert ended_status(code) is AttemptStatus.FAILED
