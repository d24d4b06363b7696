"""Every error code of PROTOCOLS.md §2.4 exists with its exact value and a message in ru, uz and en."""

from __future__ import annotations

import pytest
from providers_svc.protocols.payme.errors import PaymeError, PaymeErrorCode

# §2.4, copied by hand: a renamed or renumbered member fails here.
DOCUMENTED = {
    -32300: "METHOD_NOT_POST",
    -32700: "PARSE_ERROR",
    -32600: "INVALID_REQUEST",
    -32601: "METHOD_NOT_FOUND",
    -32504: "INSUFFICIENT_PRIVILEGE",
    -32400: "SYSTEM_ERROR",
    -31001: "INVALID_AMOUNT",
    -31003: "TRANSACTION_NOT_FOUND",
    -31007: "CANNOT_CANCEL",
    -31008: "CANNOT_PERFORM",
    -32001: "RECEIPT_NOT_FOUND",  # SetFiscalData (§2.2)
}


class TestPaymeErrorCode:
    @pytest.mark.parametrize(("code", "name"), sorted(DOCUMENTED.items()))
    def test_documented_code_has_its_value(self, code: int, name: str) -> None:
        assert PaymeErrorCode[name].value == code

    def test_account_errors_stay_in_the_account_range(self) -> None:
        extra = {c for c in PaymeErrorCode if c.value not in DOCUMENTED}
        assert extra
        assert all(-31099 <= c.value <= -31050 and c.is_account_error for c in extra)
        assert not any(PaymeErrorCode(c).is_account_error for c in DOCUMENTED)

    @pytest.mark.parametrize("code", list(PaymeErrorCode))
    def test_every_code_has_three_distinct_languages(self, code: PaymeErrorCode) -> None:
        message = code.message.as_json()
        assert set(message) == {"ru", "uz", "en"}
        assert all(text.strip() for text in message.values())
        assert len(set(message.values())) == 3
        assert any("\u0400" <= char <= "\u04ff" for char in message["ru"])  # Russian is in Cyrillic
        assert message["en"].isascii()

    def test_messages_are_distinct_across_codes(self) -> None:
        english = [code.message.en for code in PaymeErrorCode]
        assert len(set(english)) == len(english)


class TestPaymeError:
    def test_account_error_without_field_is_refused(self) -> None:
        with pytest.raises(ValueError, match="account field"):
            PaymeError(PaymeErrorCode.ORDER_NOT_FOUND)

    def test_account_error_carries_the_field(self) -> None:
        error = PaymeError(PaymeErrorCode.ORDER_NOT_PAYABLE, data="order_id")
        assert error.as_json() == {
            "code": -31051,
            "message": PaymeErrorCode.ORDER_NOT_PAYABLE.message.as_json(),
            "data": "order_id",
        }

    def test_error_without_data_has_no_data_member(self) -> None:
        error = PaymeError(PaymeErrorCode.TRANSACTION_NOT_FOUND)
        assert error.code is PaymeErrorCode.TRANSACTION_NOT_FOUND
        assert error.message == PaymeErrorCode.TRANSACTION_NOT_FOUND.message
        assert "data" not in error.as_json()
        assert "-31003" in str(error)
