from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from providers_svc.protocols.click.answers import Answer, ClickError
from providers_svc.protocols.click.credentials import ClickCredentials
from providers_svc.protocols.click.decisions import (
    Change,
    CompleteOutcome,
    PrepareOutcome,
    decide_complete,
    decide_prepare,
    failed_to_update,
)
from providers_svc.protocols.click.records import OrderState, OrderView, PrepareState, PrepareView
from providers_svc.protocols.click.requests import CompleteRequest, PrepareRequest, Rejected, parse_request

FormBuilder = Callable[..., dict[str, str]]

ORDER = OrderView(merchant_trans_id="ord_1", amount=100_000, currency="UZS", state=OrderState.PAYABLE)
PAID = replace(ORDER, state=OrderState.PAID)
GONE = replace(ORDER, state=OrderState.CANCELLED)
NEW_ID = 41


def reservation(state: PrepareState = PrepareState.PREPARED, **fields: Any) -> PrepareView:
    values: dict[str, Any] = {
        "merchant_prepare_id": 5,
        "click_trans_id": 9001,
        "merchant_trans_id": "ord_1",
        "amount": 100_000,
        "state": state,
    }
    values.update(fields)
    return PrepareView(**values)


PREPARED = reservation()
CONFIRMED = reservation(PrepareState.CONFIRMED)
CANCELLED = reservation(PrepareState.CANCELLED)


def as_prepare(form: dict[str, str]) -> PrepareRequest:
    request = parse_request(form)
    assert isinstance(request, PrepareRequest), request
    return request


def as_complete(form: dict[str, str]) -> CompleteRequest:
    request = parse_request(form)
    assert isinstance(request, CompleteRequest), request
    return request


@pytest.fixture
def prepare(click_form: FormBuilder, credentials: ClickCredentials) -> Callable[..., PrepareOutcome]:
    """``prepare(order=..., prior=..., credentials=..., **form fields)`` -> the decision."""

    def run(
        *, order: OrderView | None = ORDER, prior: PrepareView | None = None, creds: object = credentials, **fields: Any
    ) -> PrepareOutcome:
        request = as_prepare(click_form("0", **fields))
        assert creds is None or isinstance(creds, ClickCredentials)
        return decide_prepare(request, credentials=creds, order=order, prior=prior, new_prepare_id=NEW_ID)

    return run


@pytest.fixture
def complete(click_form: FormBuilder, credentials: ClickCredentials) -> Callable[..., CompleteOutcome]:
    def run(
        *,
        order: OrderView | None = ORDER,
        prep: PrepareView | None = PREPARED,
        creds: object = credentials,
        **fields: Any,
    ) -> CompleteOutcome:
        request = as_complete(click_form("1", **fields))
        assert creds is None or isinstance(creds, ClickCredentials)
        return decide_complete(request, credentials=creds, order=order, prepare=prep)

    return run


BAD_SIGN = {"sign_string": "0" * 32}
OTHER_SERVICE = {"service_id": "112"}  # signed with our secret, but for another service id
CANCEL = {"error": "-5017", "error_note": "Insufficient funds"}
WRONG_AMOUNT = {"amount": "300"}
OTHER_ORDER = {"merchant_trans_id": "ord_2"}
NO_ACCOUNT = {"creds": None}


class TestPrepare:
    def test_payable_order_is_reserved(self, prepare: Callable[..., PrepareOutcome]) -> None:
        outcome = prepare()
        assert outcome.answer == {
            "click_trans_id": 9001,
            "merchant_trans_id": "ord_1",
            "merchant_prepare_id": NEW_ID,
            "error": 0,
            "error_note": "Success",
        }
        assert (outcome.change, outcome.merchant_prepare_id, outcome.anomaly) == (Change.RESERVE, NEW_ID, None)

    @pytest.mark.parametrize(
        ("case", "kwargs", "error", "prepare_id", "change"),
        [
            ("signature mismatch", BAD_SIGN, -1, None, Change.NONE),
            ("signed with another secret", {"secret": "other"}, -1, None, Change.NONE),
            ("no account for the service", NO_ACCOUNT, -1, None, Change.NONE),
            ("another service id", OTHER_SERVICE, -8, None, Change.NONE),
            ("click cancels, nothing reserved", CANCEL, -9, None, Change.NONE),
            ("click cancels our reservation", {**CANCEL, "prior": PREPARED}, -9, 5, Change.CANCEL),
            ("click cancels a cancelled one", {**CANCEL, "prior": CANCELLED}, -9, 5, Change.NONE),
            ("order not found", {"order": None}, -5, None, Change.NONE),
            ("attempt reused for another order", {"prior": reservation(merchant_trans_id="ord_0")}, -8, None,
             Change.NONE),
            ("amount differs", WRONG_AMOUNT, -2, None, Change.NONE),
            ("order in another currency", {"order": replace(ORDER, currency="USD")}, -2, None, Change.NONE),
            ("attempt already confirmed", {"prior": CONFIRMED, "order": PAID}, -4, 5, Change.NONE),
            ("attempt already cancelled", {"prior": CANCELLED}, -9, 5, Change.NONE),
            ("order paid by another attempt", {"order": PAID}, -4, None, Change.NONE),
            ("order cancelled", {"order": GONE}, -9, None, Change.NONE),
            ("repeat of our reservation", {"prior": PREPARED}, 0, 5, Change.NONE),
        ],
    )  # fmt: skip
    def test_error_table(
        self,
        prepare: Callable[..., PrepareOutcome],
        case: str,
        kwargs: dict[str, Any],
        error: int,
        prepare_id: int | None,
        change: Change,
    ) -> None:
        outcome = prepare(**kwargs)
        assert outcome.answer["error"] == error, case
        assert outcome.answer["error_note"] == ClickError(error).note
        assert outcome.answer["merchant_prepare_id"] == prepare_id
        assert outcome.change is change

    @pytest.mark.parametrize(
        ("case", "kwargs", "error"),
        [
            ("bad sign beats everything", {**BAD_SIGN, **CANCEL, "order": None, **OTHER_SERVICE}, -1),
            ("service beats cancel", {**OTHER_SERVICE, **CANCEL}, -8),
            ("cancel beats missing order", {**CANCEL, "order": None}, -9),
            ("cancel beats wrong amount", {**CANCEL, **WRONG_AMOUNT}, -9),
            ("cancel beats paid", {**CANCEL, "order": PAID, "prior": CONFIRMED}, -9),
            ("missing order beats reused attempt", {"order": None, "prior": reservation(merchant_trans_id="x")}, -5),
            ("reused attempt beats wrong amount", {"prior": reservation(merchant_trans_id="x"), **WRONG_AMOUNT}, -8),
            ("wrong amount beats paid", {**WRONG_AMOUNT, "order": PAID}, -2),
            ("wrong amount beats cancelled", {**WRONG_AMOUNT, "order": GONE}, -2),
            ("confirmed attempt beats cancelled order", {"prior": CONFIRMED, "order": GONE}, -4),
            ("cancelled attempt beats paid order", {"prior": CANCELLED, "order": PAID}, -9),
            ("paid order beats our open reservation", {"prior": PREPARED, "order": PAID}, -4),
            ("cancelled order beats our open reservation", {"prior": PREPARED, "order": GONE}, -9),
        ],
    )  # fmt: skip
    def test_check_order(
        self, prepare: Callable[..., PrepareOutcome], case: str, kwargs: dict[str, Any], error: int
    ) -> None:
        assert prepare(**kwargs).answer["error"] == error, case

    def test_repeat_answers_identically(self, prepare: Callable[..., PrepareOutcome]) -> None:
        first = prepare()
        stored = reservation(merchant_prepare_id=NEW_ID)
        repeats = [prepare(prior=stored) for _ in range(3)]
        assert all(r.answer == first.answer for r in repeats)
        assert all(r.change is Change.NONE for r in repeats)


class TestComplete:
    def test_reserved_attempt_is_confirmed(self, complete: Callable[..., CompleteOutcome]) -> None:
        outcome = complete()
        assert outcome.answer == {
            "click_trans_id": 9001,
            "merchant_trans_id": "ord_1",
            "merchant_confirm_id": 5,
            "error": 0,
            "error_note": "Success",
        }
        assert (outcome.change, outcome.merchant_prepare_id, outcome.anomaly) == (Change.CONFIRM, 5, None)

    @pytest.mark.parametrize(
        ("case", "kwargs", "error", "confirm_id", "change", "anomaly"),
        [
            ("signature mismatch", BAD_SIGN, -1, None, Change.NONE, None),
            ("no account for the service", NO_ACCOUNT, -1, None, Change.NONE, None),
            ("another service id", OTHER_SERVICE, -8, None, Change.NONE, None),
            ("click cancels", CANCEL, -9, None, Change.CANCEL, None),
            ("click cancels a cancelled one", {**CANCEL, "prep": CANCELLED}, -9, None, Change.NONE, None),
            ("click cancels a confirmed one", {**CANCEL, "prep": CONFIRMED, "order": PAID}, -9, None, Change.NONE,
             "unexpected_outcome"),
            ("click cancels an unknown one", {**CANCEL, "prep": None}, -9, None, Change.NONE, None),
            ("order not found", {"order": None}, -5, None, Change.NONE, None),
            ("reservation not found", {"prep": None}, -6, None, Change.NONE, None),
            ("reservation of another attempt", {"prep": reservation(click_trans_id=9002)}, -6, None, Change.NONE,
             None),
            ("reservation of another order", {"prep": reservation(merchant_trans_id="ord_0")}, -6, None,
             Change.NONE, None),
            ("reservation id differs", {"prep": reservation(merchant_prepare_id=6)}, -6, None, Change.NONE, None),
            ("amount differs", WRONG_AMOUNT, -2, None, Change.NONE, None),
            ("reserved amount differs", {"prep": reservation(amount=100_001)}, -2, None, Change.NONE, None),
            ("order in another currency", {"order": replace(ORDER, currency="USD")}, -2, None, Change.NONE, None),
            ("already confirmed", {"prep": CONFIRMED, "order": PAID}, -4, 5, Change.NONE, None),
            ("already cancelled", {"prep": CANCELLED}, -9, None, Change.NONE, None),
            ("order paid by another attempt", {"order": PAID}, -4, None, Change.NONE, "success_for_final_payment"),
            ("order cancelled meanwhile", {"order": GONE}, -9, None, Change.CANCEL, "success_for_final_payment"),
        ],
    )  # fmt: skip
    def test_error_table(
        self,
        complete: Callable[..., CompleteOutcome],
        case: str,
        kwargs: dict[str, Any],
        error: int,
        confirm_id: int | None,
        change: Change,
        anomaly: str | None,
    ) -> None:
        outcome = complete(**kwargs)
        assert outcome.answer["error"] == error, case
        assert outcome.answer["error_note"] == ClickError(error).note
        assert outcome.answer["merchant_confirm_id"] == confirm_id
        assert outcome.change is change
        assert outcome.anomaly == anomaly

    def test_signature_must_cover_the_posted_prepare_id(
        self, click_form: FormBuilder, credentials: ClickCredentials
    ) -> None:
        form = click_form("1")  # signed over merchant_prepare_id "5"
        form["merchant_prepare_id"] = "6"
        outcome = decide_complete(
            as_complete(form), credentials=credentials, order=ORDER, prepare=reservation(merchant_prepare_id=6)
        )
        assert outcome.error is ClickError.SIGN_CHECK_FAILED

    @pytest.mark.parametrize(
        ("case", "kwargs", "error"),
        [
            ("bad sign beats everything", {**BAD_SIGN, **CANCEL, "order": None, "prep": None}, -1),
            ("service beats cancel", {**OTHER_SERVICE, **CANCEL, "prep": None}, -8),
            ("cancel beats missing order", {**CANCEL, "order": None}, -9),
            ("cancel beats missing reservation", {**CANCEL, "prep": None}, -9),
            ("cancel beats wrong amount", {**CANCEL, **WRONG_AMOUNT}, -9),
            ("cancel beats already paid (matrix #8)", {**CANCEL, "prep": CONFIRMED, "order": PAID}, -9),
            ("missing order beats missing reservation", {"order": None, "prep": None}, -5),
            ("missing reservation beats wrong amount", {"prep": None, **WRONG_AMOUNT}, -6),
            ("wrong amount beats already paid", {**WRONG_AMOUNT, "prep": CONFIRMED, "order": PAID}, -2),
            ("wrong amount beats already cancelled", {**WRONG_AMOUNT, "prep": CANCELLED}, -2),
            ("confirmed attempt beats cancelled order", {"prep": CONFIRMED, "order": GONE}, -4),
            ("cancelled attempt beats paid order", {"prep": CANCELLED, "order": PAID}, -9),
        ],
    )  # fmt: skip
    def test_check_order(
        self, complete: Callable[..., CompleteOutcome], case: str, kwargs: dict[str, Any], error: int
    ) -> None:
        assert complete(**kwargs).answer["error"] == error, case


class TestCancelOfConfirmedPayment:
    def test_answers_minus_9_and_keeps_the_payment_paid(self, complete: Callable[..., CompleteOutcome]) -> None:
        outcome = complete(**CANCEL, prep=CONFIRMED, order=PAID)
        assert outcome.answer == {
            "click_trans_id": 9001,
            "merchant_trans_id": "ord_1",
            "merchant_confirm_id": None,
            "error": -9,
            "error_note": "Transaction cancelled",
        }
        assert outcome.change is Change.NONE
        assert outcome.anomaly == "unexpected_outcome"
        assert outcome.merchant_prepare_id == 5

    def test_repeats_answer_identically(self, complete: Callable[..., CompleteOutcome]) -> None:
        answers = [complete(**CANCEL, prep=CONFIRMED, order=PAID).answer for _ in range(3)]
        assert answers[0] == answers[1] == answers[2]

    def test_later_confirm_still_answers_already_paid(self, complete: Callable[..., CompleteOutcome]) -> None:
        assert complete(prep=CONFIRMED, order=PAID).error is ClickError.ALREADY_PAID


class TestRepeats:
    def test_repeated_confirm_answers_already_paid_with_the_same_confirm_id(
        self, complete: Callable[..., CompleteOutcome]
    ) -> None:
        first = complete()
        repeats = [complete(prep=CONFIRMED, order=PAID) for _ in range(3)]
        assert first.answer["merchant_confirm_id"] == 5
        for repeat in repeats:
            assert repeat.answer == {**first.answer, "error": -4, "error_note": "Already paid"}
            assert repeat.change is Change.NONE

    def test_repeated_cancel_answers_identically(self, complete: Callable[..., CompleteOutcome]) -> None:
        first = complete(**CANCEL)
        repeats = [complete(**CANCEL, prep=CANCELLED) for _ in range(3)]
        assert first.change is Change.CANCEL
        assert all(r.answer == first.answer and r.change is Change.NONE for r in repeats)

    def test_repeat_after_order_cancelled_meanwhile_answers_identically(
        self, complete: Callable[..., CompleteOutcome]
    ) -> None:
        first = complete(order=GONE)
        repeat = complete(order=GONE, prep=CANCELLED)
        assert repeat.answer == first.answer
        assert (repeat.change, repeat.anomaly) == (Change.NONE, None)  # the evidence is recorded once


class TestAmounts:
    @pytest.mark.parametrize("amount", ["1000", "1000.0", "1000.00", "1000.000", "01000.00"])
    def test_equal_spellings_match(
        self,
        prepare: Callable[..., PrepareOutcome],
        complete: Callable[..., CompleteOutcome],
        amount: str,
    ) -> None:
        assert prepare(amount=amount).error is ClickError.SUCCESS
        assert complete(amount=amount).error is ClickError.SUCCESS

    @pytest.mark.parametrize("amount", ["1000.01", "999.99", "1000.001", "100000", "0", "9" * 400, "9" * 40 + ".00"])
    def test_other_amounts_answer_minus_2(
        self,
        prepare: Callable[..., PrepareOutcome],
        complete: Callable[..., CompleteOutcome],
        amount: str,
    ) -> None:
        assert prepare(amount=amount).error is ClickError.INCORRECT_AMOUNT
        assert complete(amount=amount).error is ClickError.INCORRECT_AMOUNT

    @pytest.mark.parametrize("amount", ["1e3", "-1000", "+1000", "1000,00", " 1000"])
    def test_malformed_amounts_answer_minus_8(self, click_form: FormBuilder, amount: str) -> None:
        for action in ("0", "1"):
            result = parse_request(click_form(action, amount=amount))
            assert isinstance(result, Rejected)
            assert result.error is ClickError.BAD_REQUEST


class TestFailedToUpdate:
    def test_prepare_shape(self, click_form: FormBuilder) -> None:
        assert failed_to_update(as_prepare(click_form("0"))) == {
            "click_trans_id": 9001,
            "merchant_trans_id": "ord_1",
            "merchant_prepare_id": None,
            "error": -7,
            "error_note": "Failed to update user",
        }

    def test_complete_shape(self, click_form: FormBuilder) -> None:
        answer = failed_to_update(as_complete(click_form("1")))
        assert answer["error"] == -7
        assert answer.get("merchant_confirm_id", "absent") is None


class Ledger:
    """What the wiring will do, in memory: parse, look up, decide, apply the change."""

    def __init__(self, credentials: ClickCredentials, orders: list[OrderView]) -> None:
        self.credentials = credentials
        self.orders = {o.merchant_trans_id: o for o in orders}
        self.prepares: dict[int, PrepareView] = {}
        self.anomalies: list[str] = []
        self._next_id = 100

    def post(self, form: dict[str, str]) -> Answer:
        request = parse_request(form)
        if isinstance(request, Rejected):
            return request.answer
        order = self.orders.get(request.merchant_trans_id)
        outcome: PrepareOutcome | CompleteOutcome
        if isinstance(request, PrepareRequest):
            prior = next((p for p in self.prepares.values() if p.click_trans_id == request.click_trans_id), None)
            outcome = decide_prepare(
                request, credentials=self.credentials, order=order, prior=prior, new_prepare_id=self._next_id
            )
        else:
            outcome = decide_complete(
                request,
                credentials=self.credentials,
                order=order,
                prepare=self.prepares.get(request.merchant_prepare_id),
            )
        self._apply(request, outcome)
        return outcome.answer

    def _apply(self, request: PrepareRequest | CompleteRequest, outcome: PrepareOutcome | CompleteOutcome) -> None:
        if outcome.anomaly is not None:
            self.anomalies.append(outcome.anomaly)
        prepare_id = outcome.merchant_prepare_id
        if outcome.change is Change.RESERVE:
            assert prepare_id == self._next_id
            self._next_id += 1
            self.prepares[prepare_id] = PrepareView(
                merchant_prepare_id=prepare_id,
                click_trans_id=request.click_trans_id,
                merchant_trans_id=request.merchant_trans_id,
                amount=self.orders[request.merchant_trans_id].amount,
                state=PrepareState.PREPARED,
            )
        elif outcome.change is Change.CONFIRM:
            assert prepare_id is not None
            prep = self.prepares[prepare_id]
            self.prepares[prepare_id] = replace(prep, state=PrepareState.CONFIRMED)
            self.orders[prep.merchant_trans_id] = replace(self.orders[prep.merchant_trans_id], state=OrderState.PAID)
        elif outcome.change is Change.CANCEL:
            assert prepare_id is not None
            self.prepares[prepare_id] = replace(self.prepares[prepare_id], state=PrepareState.CANCELLED)


class TestClickTestMatrix:
    """Click's 15 Postman scenarios (docs.click.uz/testing/postman, via PROTOCOLS.md's mirror), in order,
    against one ledger. Fixtures as the guide prescribes: 1-8 one order, 9-11 a fresh one, 12-15 another."""

    def test_fifteen_scenarios(self, click_form: FormBuilder, credentials: ClickCredentials) -> None:
        orders = [replace(ORDER, merchant_trans_id=f"ord_{n}") for n in (1, 2, 3)]
        ledger = Ledger(credentials, orders)
        seen: list[int] = []

        def run(action: str, **fields: Any) -> Answer:
            answer = ledger.post(click_form(action, **fields))
            seen.append(answer["error"])
            return answer

        run("0", **BAD_SIGN)  # 1
        run("0", merchant_trans_id="ord_missing")  # 2
        prepared = run("0")  # 3
        prepare_id = str(prepared["merchant_prepare_id"])  # type: ignore[typeddict-item]
        run("1", merchant_prepare_id=prepare_id, **BAD_SIGN)  # 4
        run("1", merchant_prepare_id=prepare_id, **WRONG_AMOUNT)  # 5
        confirmed = run("1", merchant_prepare_id=prepare_id)  # 6
        run("1", merchant_prepare_id=prepare_id)  # 7
        run("1", merchant_prepare_id=prepare_id, **CANCEL)  # 8

        second = {"merchant_trans_id": "ord_2", "click_trans_id": "9002", "click_paydoc_id": "77002"}
        prepare_id_2 = str(run("0", **second)["merchant_prepare_id"])  # type: ignore[typeddict-item]  # 9
        run("1", merchant_prepare_id="999999999", **second)  # 10
        run("1", merchant_prepare_id=prepare_id_2, **second)  # 11

        third = {"merchant_trans_id": "ord_3", "click_trans_id": "9003", "click_paydoc_id": "77003"}
        prepare_id_3 = str(run("0", **third)["merchant_prepare_id"])  # type: ignore[typeddict-item]  # 12
        run("1", merchant_prepare_id=prepare_id_3, **third, **CANCEL)  # 13
        run("1", merchant_prepare_id=prepare_id_3, **third, **CANCEL)  # 14
        run("1", merchant_prepare_id=prepare_id_3, **third)  # 15

        assert seen == [-1, -5, 0, -1, -2, 0, -4, -9, 0, -6, 0, 0, -9, -9, -9]
        assert confirmed["merchant_confirm_id"] == prepared["merchant_prepare_id"]  # type: ignore[typeddict-item]
        assert [o.state for o in ledger.orders.values()] == [OrderState.PAID, OrderState.PAID, OrderState.PAYABLE]
        assert [p.state for p in ledger.prepares.values()] == [
            PrepareState.CONFIRMED,
            PrepareState.CONFIRMED,
            PrepareState.CANCELLED,
        ]
        assert ledger.anomalies == ["unexpected_outcome"]  # scenario 8: Click cancelled money we hold as paid
