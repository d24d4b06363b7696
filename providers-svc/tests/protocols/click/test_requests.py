from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from providers_svc.protocols.click.answers import ClickError
from providers_svc.protocols.click.requests import CompleteRequest, PrepareRequest, Rejected, parse_request

FormBuilder = Callable[..., dict[str, str]]

PREPARE_FIELDS = [
    "click_trans_id", "service_id", "click_paydoc_id", "merchant_trans_id", "amount", "error", "sign_time",
    "sign_string",
]  # fmt: skip


def rejected(result: object) -> Rejected:
    assert isinstance(result, Rejected), result
    return result


class TestParsePrepare:
    def test_well_formed_form_parses(self, click_form: FormBuilder) -> None:
        form = click_form("0", amount="1000.0", extra_field="ignored")
        request = parse_request(form)
        assert isinstance(request, PrepareRequest)
        assert request.click_trans_id == 9001
        assert request.service_id == 111
        assert request.click_paydoc_id == 77001
        assert request.merchant_trans_id == "ord_1"
        assert request.amount == Decimal("1000.0")
        assert request.signed.amount == "1000.0"  # the raw string is what gets signed
        assert request.signed.merchant_prepare_id is None
        assert request.sign_string == form["sign_string"]

    def test_error_note_is_optional(self, click_form: FormBuilder) -> None:
        request = parse_request(click_form("0", error_note=None))
        assert isinstance(request, PrepareRequest)
        assert request.error_note == ""

    def test_negative_error_from_click_parses(self, click_form: FormBuilder) -> None:
        request = parse_request(click_form("0", error="-5017"))
        assert isinstance(request, PrepareRequest)
        assert request.error == -5017

    @pytest.mark.parametrize("field", PREPARE_FIELDS)
    def test_missing_field_answers_minus_8(self, click_form: FormBuilder, field: str) -> None:
        result = rejected(parse_request(click_form("0", **{field: None})))
        assert result.error is ClickError.BAD_REQUEST
        assert result.answer["error_note"] == "Error in request from click"
        assert "merchant_prepare_id" in result.answer
        assert result.answer["merchant_prepare_id"] is None  # type: ignore[typeddict-item]
        assert field in result.reason

    @pytest.mark.parametrize("field", PREPARE_FIELDS)
    def test_empty_field_answers_minus_8(self, click_form: FormBuilder, field: str) -> None:
        assert rejected(parse_request(click_form("0", **{field: ""}))).error is ClickError.BAD_REQUEST

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("click_trans_id", "abc"), ("click_trans_id", "-1"), ("click_trans_id", "1.0"), ("click_trans_id", " 1"),
            ("click_trans_id", "9223372036854775808"), ("click_trans_id", "9" * 5000),
            ("click_trans_id", "\u0661\u0662"), ("click_trans_id", "12\n"),
            ("service_id", "111a"), ("click_paydoc_id", "1e5"),
            ("amount", "1e3"), ("amount", "-1000"), ("amount", "1000,00"), ("amount", "abc"), ("amount", "NaN"),
            ("error", "x"), ("error", "-"), ("error", "-99999999999999999999"), ("error", "0.0"),
            ("sign_time", "2026-01-01T10:00:00"), ("sign_time", "2026-13-01 10:00:00"),
            ("sign_time", "2026-1-1 10:00:00"), ("sign_time", "2026-01-01 10:00:00\n"),
        ],
    )  # fmt: skip
    def test_wrong_type_answers_minus_8(self, click_form: FormBuilder, field: str, value: str) -> None:
        result = rejected(parse_request(click_form("0", **{field: value})))
        assert result.error is ClickError.BAD_REQUEST
        assert field in result.reason

    def test_huge_amount_is_well_formed(self, click_form: FormBuilder) -> None:
        # Not malformed, only not any order's amount: the decisions answer -2 for it.
        request = parse_request(click_form("0", amount="9" * 5000 + ".00"))
        assert isinstance(request, PrepareRequest)

    @pytest.mark.parametrize("value", [b"9001", 9001, ["9001"], None])
    def test_non_text_value_answers_minus_8(self, click_form: FormBuilder, value: object) -> None:
        form: dict[str, object] = dict(click_form("0"))
        form["click_trans_id"] = value
        result = rejected(parse_request(form))
        assert result.error is ClickError.BAD_REQUEST
        assert result.answer["click_trans_id"] is None

    def test_minus_8_answer_echoes_what_parses(self, click_form: FormBuilder) -> None:
        result = rejected(parse_request(click_form("0", amount="x")))
        assert result.answer == {
            "click_trans_id": 9001,
            "merchant_trans_id": "ord_1",
            "merchant_prepare_id": None,
            "error": -8,
            "error_note": "Error in request from click",
        }


class TestParseComplete:
    def test_well_formed_form_parses(self, click_form: FormBuilder) -> None:
        request = parse_request(click_form("1", merchant_prepare_id="0042"))
        assert isinstance(request, CompleteRequest)
        assert request.merchant_prepare_id == 42
        assert request.signed.merchant_prepare_id == "0042"

    @pytest.mark.parametrize("value", [None, "", "x", "-5", "99999999999999999999"])
    def test_missing_or_malformed_merchant_prepare_id_answers_minus_8(
        self, click_form: FormBuilder, value: str | None
    ) -> None:
        result = rejected(parse_request(click_form("1", merchant_prepare_id=value)))
        assert result.error is ClickError.BAD_REQUEST
        assert result.answer == {
            "click_trans_id": 9001,
            "merchant_trans_id": "ord_1",
            "merchant_confirm_id": None,
            "error": -8,
            "error_note": "Error in request from click",
        }

    def test_prepare_ignores_a_posted_merchant_prepare_id(self, click_form: FormBuilder) -> None:
        request = parse_request(click_form("0", merchant_prepare_id="x"))
        assert isinstance(request, PrepareRequest)


class TestParseAction:
    @pytest.mark.parametrize("action", ["2", "-1", "3", "10", "99999999999999999999999", "9" * 5000])
    def test_unknown_action_answers_minus_3(self, click_form: FormBuilder, action: str) -> None:
        result = rejected(parse_request(click_form(action)))
        assert result.answer == {
            "click_trans_id": 9001,
            "merchant_trans_id": "ord_1",
            "error": -3,
            "error_note": "Action not found",
        }

    @pytest.mark.parametrize("action", [None, "", "x", "1.0", " 1", "1\n", "\uff11"])
    def test_missing_or_non_integer_action_answers_minus_8(self, click_form: FormBuilder, action: str | None) -> None:
        result = rejected(parse_request(click_form(action)))
        assert result.error is ClickError.BAD_REQUEST
        assert set(result.answer) == {"click_trans_id", "merchant_trans_id", "error", "error_note"}

    def test_unknown_action_wins_over_missing_fields(self) -> None:
        # The action decides which fields are required, so it is judged first.
        form = {"action": "2", "click_trans_id": "9001"}
        assert rejected(parse_request(form)).error is ClickError.ACTION_NOT_FOUND

    def test_empty_form_answers_minus_8(self) -> None:
        result = rejected(parse_request({}))
        assert result.answer == {
            "click_trans_id": None,
            "merchant_trans_id": None,
            "error": -8,
            "error_note": "Error in request from click",
        }
