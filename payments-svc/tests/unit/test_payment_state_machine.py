import pytest
from payments_svc.domain.errors import InvalidState
from payments_svc.domain.money import CURRENCIES, amount_problem
from payments_svc.domain.payment import (
    EVENT_FOR_STATUS,
    PAYABLE,
    TERMINAL,
    TRANSITIONS,
    PaymentStatus,
    can_transition,
    check_transition,
)

S = PaymentStatus

ALLOWED = {
    # PAY-6: a failed attempt makes the payment payable again; it fails when its checkout closes.
    (S.PROVIDER_PENDING, S.CREATED),
    (S.CREATED, S.FAILED),
    (S.CREATED, S.PROVIDER_PENDING),
    (S.CREATED, S.EXPIRED),
    (S.CREATED, S.CANCELLED),
    (S.PROVIDER_PENDING, S.SUCCEEDED),
    (S.PROVIDER_PENDING, S.FAILED),
    (S.PROVIDER_PENDING, S.EXPIRED),
    (S.PROVIDER_PENDING, S.CANCELLED),
    (S.PROVIDER_PENDING, S.AUTHORIZED),
    (S.AUTHORIZED, S.SUCCEEDED),
    (S.AUTHORIZED, S.CANCELLED),
    (S.AUTHORIZED, S.EXPIRED),
    (S.SUCCEEDED, S.PARTIALLY_REFUNDED),
    (S.SUCCEEDED, S.REFUNDED),
    (S.PARTIALLY_REFUNDED, S.PARTIALLY_REFUNDED),
    (S.PARTIALLY_REFUNDED, S.REFUNDED),
}


class TestTransitions:
    @pytest.mark.parametrize("current", list(S))
    @pytest.mark.parametrize("target", list(S))
    def test_every_pair_matches_the_api_contract(self, current: S, target: S) -> None:
        assert can_transition(current, target) == ((current, target) in ALLOWED)

    @pytest.mark.parametrize("terminal", [S.FAILED, S.EXPIRED, S.CANCELLED, S.REFUNDED])
    def test_terminal_states_have_no_exit(self, terminal: S) -> None:
        assert TRANSITIONS[terminal] == frozenset()

    @pytest.mark.parametrize("target", [S.FAILED, S.CREATED, S.PROVIDER_PENDING, S.REFUNDED, S.PARTIALLY_REFUNDED])
    def test_an_authorized_payment_is_only_captured_released_or_expired(self, target: S) -> None:
        with pytest.raises(InvalidState):
            check_transition(S.AUTHORIZED, target)

    def test_authorized_is_announced_and_is_neither_payable_nor_terminal(self) -> None:
        assert EVENT_FOR_STATUS[S.AUTHORIZED] == "payment.authorized"
        assert S.AUTHORIZED not in PAYABLE
        assert S.AUTHORIZED not in TERMINAL

    def test_forbidden_move_raises_409(self) -> None:
        with pytest.raises(InvalidState) as exc:
            check_transition(S.SUCCEEDED, S.CANCELLED)
        assert exc.value.status == 409
        assert exc.value.code == "invalid_state"


class TestCurrencyRegistry:
    @pytest.mark.parametrize("code", ["USD", "EUR", "GBP", "HUF", "UZS", "INR", "JPY"])
    def test_required_currencies_present(self, code: str) -> None:
        assert code in CURRENCIES

    def test_jpy_is_zero_decimal(self) -> None:
        assert CURRENCIES["JPY"].exponent == 0

    @pytest.mark.parametrize(
        ("code", "amount", "ok"),
        [("USD", 50, True), ("USD", 49, False), ("HUF", 99, False), ("HUF", 100, True), ("USD", 10**12, False)],
    )
    def test_limits(self, code: str, amount: int, ok: bool) -> None:
        assert (amount_problem(CURRENCIES[code], amount) is None) is ok
