"""Method names and params: -32601 for an unknown method, -31001 for the amount, -31050 naming the account
field, -32600 for every other missing or wrongly typed field."""

from __future__ import annotations

from typing import Any

import pytest
from providers_svc.protocols.payme.errors import PaymeError, PaymeErrorCode
from providers_svc.protocols.payme.jsonrpc import RpcRequest
from providers_svc.protocols.payme.params import (
    CancelTransactionParams,
    ChangePasswordParams,
    CheckPerformTransactionParams,
    CheckTransactionParams,
    CreateTransactionParams,
    FiscalType,
    GetStatementParams,
    Method,
    Params,
    PerformTransactionParams,
    SetFiscalDataParams,
    parse_params,
)
from providers_svc.protocols.payme.states import CancelReason

PAYME_ID = "5305e3bab097f420a62ced0b"
VALID: dict[str, dict[str, Any]] = {
    "CheckPerformTransaction": {"amount": 500000, "account": {"order_id": "pay_1"}},
    "CreateTransaction": {"id": PAYME_ID, "time": 1399114284039, "amount": 500000, "account": {"order_id": "pay_1"}},
    "PerformTransaction": {"id": PAYME_ID},
    "CancelTransaction": {"id": PAYME_ID, "reason": 1},
    "CheckTransaction": {"id": PAYME_ID},
    "GetStatement": {"from": 1399114284039, "to": 1399120284000},
    "ChangePassword": {"password": "new-key"},
    "SetFiscalData": {"id": PAYME_ID, "type": "PERFORM", "fiscal_data": {"receipt_id": 1, "status_code": 0}},
}


def parse(method: str, params: dict[str, Any], account_field: str = "order_id") -> Params:
    return parse_params(RpcRequest(id=1, method=method, params=params), account_field=account_field)


def error_of(method: str, params: dict[str, Any], account_field: str = "order_id") -> PaymeError:
    with pytest.raises(PaymeError) as caught:
        parse(method, params, account_field)
    return caught.value


def with_(method: str, **changes: Any) -> dict[str, Any]:
    params = dict(VALID[method])
    for name, value in changes.items():
        if value is _MISSING:
            params.pop(name)
        else:
            params[name] = value
    return params


_MISSING = object()


class TestParseParams:
    def test_every_method_is_known(self) -> None:
        assert {m.value for m in Method} == set(VALID)

    def test_valid_params_of_every_method(self) -> None:
        assert parse("CheckPerformTransaction", VALID["CheckPerformTransaction"]) == CheckPerformTransactionParams(
            500000, "order_id", "pay_1"
        )
        assert parse("CreateTransaction", VALID["CreateTransaction"]) == CreateTransactionParams(
            PAYME_ID, 1399114284039, 500000, "order_id", "pay_1"
        )
        assert parse("PerformTransaction", VALID["PerformTransaction"]) == PerformTransactionParams(PAYME_ID)
        assert parse("CancelTransaction", VALID["CancelTransaction"]) == CancelTransactionParams(
            PAYME_ID, CancelReason.RECEIVER_NOT_FOUND
        )
        assert parse("CheckTransaction", VALID["CheckTransaction"]) == CheckTransactionParams(PAYME_ID)
        assert parse("GetStatement", VALID["GetStatement"]) == GetStatementParams(1399114284039, 1399120284000)
        assert parse("ChangePassword", VALID["ChangePassword"]) == ChangePasswordParams("new-key")

    @pytest.mark.parametrize("method", ["checkTransaction", "SetFiscalDatum", "", "GetStatement "])
    def test_unknown_method_is_32601_naming_it(self, method: str) -> None:
        error = error_of(method, {})
        assert error.code is PaymeErrorCode.METHOD_NOT_FOUND
        assert error.data == method

    def test_unknown_params_are_ignored(self) -> None:
        assert parse("CheckTransaction", {"id": PAYME_ID, "future": True}) == CheckTransactionParams(PAYME_ID)

    def test_password_is_not_in_repr(self) -> None:
        assert "new-key" not in repr(parse("ChangePassword", VALID["ChangePassword"]))


class TestAmountParam:
    @pytest.mark.parametrize("method", ["CheckPerformTransaction", "CreateTransaction"])
    @pytest.mark.parametrize("amount", [_MISSING, None, 0, -100, "500000", 500000.0, True, [500000]])
    def test_bad_amount_is_31001(self, method: str, amount: object) -> None:
        assert error_of(method, with_(method, amount=amount)).code is PaymeErrorCode.INVALID_AMOUNT


class TestAccountParam:
    @pytest.mark.parametrize("method", ["CheckPerformTransaction", "CreateTransaction"])
    @pytest.mark.parametrize(
        "account",
        [
            _MISSING,
            None,
            "pay_1",
            ["pay_1"],
            {},
            {"order": "pay_1"},
            {"order_id": ""},
            {"order_id": None},
            {"order_id": True},
            {"order_id": "pay_\x00x"},
            {"order_id": "pay_\nx"},
        ],
    )
    def test_bad_account_is_31050_naming_the_field(self, method: str, account: object) -> None:
        error = error_of(method, with_(method, account=account))
        assert error.code is PaymeErrorCode.ORDER_NOT_FOUND
        assert error.data == "order_id"

    def test_numeric_account_value_is_read_as_a_string(self) -> None:
        params = parse("CheckPerformTransaction", with_("CheckPerformTransaction", account={"order_id": 197}))
        assert isinstance(params, CheckPerformTransactionParams)
        assert params.payment_id == "197"

    def test_the_accounts_own_field_is_read(self) -> None:
        params = parse("CreateTransaction", with_("CreateTransaction", account={"invoice": "pay_9"}), "invoice")
        assert isinstance(params, CreateTransactionParams)
        assert (params.account_field, params.payment_id) == ("invoice", "pay_9")
        error = error_of("CreateTransaction", VALID["CreateTransaction"], "invoice")
        assert (error.code, error.data) == (PaymeErrorCode.ORDER_NOT_FOUND, "invoice")

    def test_bad_amount_wins_over_bad_account(self) -> None:
        params = with_("CreateTransaction", amount="x", account=None)
        assert error_of("CreateTransaction", params).code is PaymeErrorCode.INVALID_AMOUNT


class TestOtherParams:
    @pytest.mark.parametrize(
        ("method", "changes"),
        [
            ("CreateTransaction", {"id": _MISSING}),
            ("CreateTransaction", {"id": 5305}),
            ("CreateTransaction", {"id": ""}),
            ("CreateTransaction", {"id": "x" * 65}),
            ("CreateTransaction", {"time": _MISSING}),
            ("CreateTransaction", {"time": "1399114284039"}),
            ("CreateTransaction", {"time": 1399114284039.5}),
            ("CreateTransaction", {"time": -1}),
            ("CreateTransaction", {"time": 2**63}),
            ("GetStatement", {"to": 2**70}),
            ("CreateTransaction", {"time": False}),
            ("PerformTransaction", {"id": _MISSING}),
            ("PerformTransaction", {"id": None}),
            ("PerformTransaction", {"id": "5305e3bab097f420a62ced0\x00"}),
            ("CheckTransaction", {"id": ["x"]}),
            ("CancelTransaction", {"id": _MISSING}),
            ("CancelTransaction", {"reason": _MISSING}),
            ("CancelTransaction", {"reason": "1"}),
            ("CancelTransaction", {"reason": 1.0}),
            ("CancelTransaction", {"reason": True}),
            ("GetStatement", {"from": _MISSING}),
            ("GetStatement", {"to": "1399120284000"}),
            ("ChangePassword", {"password": _MISSING}),
            ("ChangePassword", {"password": "   "}),
            ("ChangePassword", {"password": 123}),
        ],
    )
    def test_missing_or_wrongly_typed_field_is_32600(self, method: str, changes: dict[str, object]) -> None:
        assert error_of(method, with_(method, **changes)).code is PaymeErrorCode.INVALID_REQUEST

    def test_bad_id_wins_over_bad_amount(self) -> None:
        params = with_("CreateTransaction", id=None, amount=None)
        assert error_of("CreateTransaction", params).code is PaymeErrorCode.INVALID_REQUEST

    @pytest.mark.parametrize("reason", [1, 2, 3, 4, 5, 10])
    def test_documented_cancel_reason_is_accepted(self, reason: int) -> None:
        params = parse("CancelTransaction", with_("CancelTransaction", reason=reason))
        assert isinstance(params, CancelTransactionParams)
        assert params.reason == reason

    @pytest.mark.parametrize("reason", [0, 6, 7, 8, 9, 11, -1, 100])
    def test_other_cancel_reason_is_32600(self, reason: int) -> None:
        error = error_of("CancelTransaction", with_("CancelTransaction", reason=reason))
        assert error.code is PaymeErrorCode.INVALID_REQUEST


class TestSetFiscalData:
    def test_valid(self) -> None:
        parsed = parse("SetFiscalData", VALID["SetFiscalData"])
        assert parsed == SetFiscalDataParams(PAYME_ID, FiscalType.PERFORM, {"receipt_id": 1, "status_code": 0})
        cancel = parse("SetFiscalData", with_("SetFiscalData", type="CANCEL"))
        assert isinstance(cancel, SetFiscalDataParams)
        assert cancel.type is FiscalType.CANCEL

    @pytest.mark.parametrize(
        "changes",
        [
            {"type": "REFUND"},
            {"type": 1},
            {"type": _MISSING},
            {"fiscal_data": "receipt"},
            {"fiscal_data": [1]},
            {"fiscal_data": _MISSING},
            {"fiscal_data": {"qr_code_url": "x" * 5000}},
            {"id": _MISSING},
            {"id": 5},
        ],
    )
    def test_malformed_is_invalid_request(self, changes: dict[str, Any]) -> None:
        assert error_of("SetFiscalData", with_("SetFiscalData", **changes)).code is PaymeErrorCode.INVALID_REQUEST
