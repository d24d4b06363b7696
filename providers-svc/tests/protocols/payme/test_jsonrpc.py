"""The JSON-RPC envelope: malformed bodies get the exact error of §2.1/§2.4, answers are byte-stable bytes."""

from __future__ import annotations

import json

import pytest
from providers_svc.protocols.payme.errors import PaymeError, PaymeErrorCode
from providers_svc.protocols.payme.jsonrpc import (
    MalformedRequestError,
    error_response,
    parse_request,
    result_response,
)


def _malformed(body: bytes) -> MalformedRequestError:
    with pytest.raises(MalformedRequestError) as caught:
        parse_request(body)
    return caught.value


class TestParseRequest:
    def test_valid_request_is_read(self) -> None:
        request = parse_request(b'{"method":"CheckTransaction","params":{"id":"5305e3bab097f420a62ced0b"},"id":2032}')
        assert request.id == 2032
        assert request.method == "CheckTransaction"
        assert request.params == {"id": "5305e3bab097f420a62ced0b"}

    def test_string_id_and_unknown_members_are_accepted(self) -> None:
        request = parse_request(b'{"jsonrpc":"2.0","id":"abc","method":"X","params":{},"extra":1}')
        assert request.id == "abc"

    def test_params_are_read_only(self) -> None:
        request = parse_request(b'{"id":1,"method":"X","params":{"a":1}}')
        with pytest.raises(TypeError):
            request.params["a"] = 2  # type: ignore[index]

    @pytest.mark.parametrize(
        "body",
        [
            b"",
            b"{",
            b"not json",
            b'{"id":1,"method":"X","params":{}',
            b"{'id':1}",
            b'{"id":NaN,"method":"X","params":{}}',
            b'{"id":Infinity,"method":"X","params":{}}',
            b'{"id":1,"method":"\xff","params":{}}',
            b"\xef\xbb\xbf{}",  # a UTF-8 byte-order mark
            b"[" * 100_000 + b"]" * 100_000,
            b'{"id":' + b"9" * 5000 + b',"method":"X","params":{}}',
        ],
    )
    def test_unparseable_body_is_32700_with_null_id(self, body: bytes) -> None:
        error = _malformed(body)
        assert error.code is PaymeErrorCode.PARSE_ERROR
        assert error.request_id is None

    @pytest.mark.parametrize(
        "body",
        [
            b"[]",
            b'[{"id":1,"method":"X","params":{}}]',
            b'"CheckTransaction"',
            b"null",
            b'{"method":"X","params":{}}',
            b'{"id":null,"method":"X","params":{}}',
            b'{"id":true,"method":"X","params":{}}',
            b'{"id":1.5,"method":"X","params":{}}',
            b'{"id":[1],"method":"X","params":{}}',
        ],
    )
    def test_no_usable_id_is_32600_with_null_id(self, body: bytes) -> None:
        error = _malformed(body)
        assert error.code is PaymeErrorCode.INVALID_REQUEST
        assert error.request_id is None

    @pytest.mark.parametrize(
        "body",
        [
            b'{"id":7,"params":{}}',
            b'{"id":7,"method":null,"params":{}}',
            b'{"id":7,"method":5,"params":{}}',
            b'{"id":7,"method":"X"}',
            b'{"id":7,"method":"X","params":null}',
            b'{"id":7,"method":"X","params":[1,2]}',
            b'{"id":7,"method":"X","params":"id=1"}',
        ],
    )
    def test_bad_method_or_params_is_32600_echoing_the_id(self, body: bytes) -> None:
        error = _malformed(body)
        assert error.code is PaymeErrorCode.INVALID_REQUEST
        assert error.request_id == 7


class TestResponses:
    def test_result_bytes_are_exact(self) -> None:
        body = result_response(2032, {"transaction": "ptx_1", "state": 1, "create_time": 1700000000000})
        assert (
            body
            == b'{"id":2032,"jsonrpc":"2.0","result":{"create_time":1700000000000,"state":1,"transaction":"ptx_1"}}'
        )

    def test_error_bytes_are_exact_and_ascii(self) -> None:
        body = error_response(7, PaymeError(PaymeErrorCode.TRANSACTION_NOT_FOUND))
        assert body == (
            b'{"error":{"code":-31003,"message":{"en":"Transaction not found.","ru":'
            b'"\\u0422\\u0440\\u0430\\u043d\\u0437\\u0430\\u043a\\u0446\\u0438\\u044f '
            b'\\u043d\\u0435 \\u043d\\u0430\\u0439\\u0434\\u0435\\u043d\\u0430.","uz":"Tranzaksiya topilmadi."}},'
            b'"id":7,"jsonrpc":"2.0"}'
        )

    def test_parse_error_answers_null_id(self) -> None:
        body = error_response(None, PaymeError(PaymeErrorCode.PARSE_ERROR))
        assert json.loads(body)["id"] is None
        assert json.loads(body)["error"]["code"] == -32700

    def test_same_result_in_another_key_order_gives_same_bytes(self) -> None:
        first = result_response(1, {"a": 1, "b": {"y": None, "x": [1, "z"]}})
        second = result_response(1, {"b": {"x": [1, "z"], "y": None}, "a": 1})
        assert first == second

    @pytest.mark.parametrize("code", list(PaymeErrorCode))
    def test_every_error_round_trips_its_localized_message(self, code: PaymeErrorCode) -> None:
        error = PaymeError(code, data="order_id" if code.is_account_error else None)
        body = error_response(3, error)
        assert body.isascii()
        assert json.loads(body)["error"] == {
            "code": code.value,
            "message": code.message.as_json(),
            **({"data": "order_id"} if code.is_account_error else {}),
        }

    def test_echoed_lone_surrogate_still_serializes(self) -> None:
        # A string id with an escaped lone surrogate is valid JSON, and we echo it back.
        request = parse_request(b'{"id":"\\ud800","method":"Nope","params":{}}')
        body = error_response(request.id, PaymeError(PaymeErrorCode.METHOD_NOT_FOUND, data=request.method))
        assert json.loads(body)["id"] == "\ud800"
        assert json.loads(body)["error"]["data"] == "Nope"
