"""The JSON-RPC 2.0 envelope of Payme's Merchant API: a raw body in, an answer's bytes out (PROTOCOLS.md §2.1).

Parsing stops at the envelope (``id``, ``method``, ``params`` as an object): the method name and its params are
checked by ``params.parse_params`` only after ``auth.authenticate``, because Payme expects -32504 for bad
credentials whatever the method, and the account field to read depends on the account the key picked.

Transport is the caller's job: every answer, errors included, goes out with HTTP 200 and
``CONTENT_TYPE`` (Payme counts any other status as a system error, -32400), and a request whose HTTP method
is not POST is answered ``error_response(None, PaymeError(PaymeErrorCode.METHOD_NOT_POST))``, also with 200.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeAlias, TypeGuard

from providers_svc.protocols.payme.errors import PaymeError, PaymeErrorCode

JsonValue: TypeAlias = "bool | int | str | list[JsonValue] | dict[str, JsonValue] | None"
RequestId: TypeAlias = int | str

CONTENT_TYPE = "application/json; charset=utf-8"


@dataclass(frozen=True)
class RpcRequest:
    id: RequestId
    method: str
    params: Mapping[str, object]


class MalformedRequestError(PaymeError):
    """The body is not a JSON-RPC request we can dispatch. ``request_id`` is the request's own id when it
    could be read (the answer must echo it), else None (answered as ``"id": null``)."""

    def __init__(self, code: PaymeErrorCode, request_id: RequestId | None) -> None:
        super().__init__(code)
        self.request_id = request_id


def parse_request(body: bytes) -> RpcRequest:
    """Read the envelope of one request; raises ``MalformedRequestError`` (-32700 or -32600)."""
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        # ValueError covers JSONDecodeError and ints past Python's digit limit; RecursionError deep nesting.
        raise MalformedRequestError(PaymeErrorCode.PARSE_ERROR, None) from None
    if not isinstance(document, dict):
        # A batch (array) or a bare value: Payme never sends either.
        raise MalformedRequestError(PaymeErrorCode.INVALID_REQUEST, None)
    request_id = document.get("id")
    if not _is_request_id(request_id):
        raise MalformedRequestError(PaymeErrorCode.INVALID_REQUEST, None)
    method = document.get("method")
    params = document.get("params")
    if not isinstance(method, str) or not isinstance(params, dict):
        raise MalformedRequestError(PaymeErrorCode.INVALID_REQUEST, request_id)
    return RpcRequest(id=request_id, method=method, params=MappingProxyType(params))


def result_response(request_id: RequestId, result: Mapping[str, JsonValue]) -> bytes:
    return _dump({"jsonrpc": "2.0", "id": request_id, "result": dict(result)})


def error_response(request_id: RequestId | None, error: PaymeError) -> bytes:
    return _dump({"jsonrpc": "2.0", "id": request_id, "error": error.as_json()})


def _dump(document: dict[str, object]) -> bytes:
    # Byte-stable: keys sorted at every level, no whitespace, so a repeat built from the same stored values
    # is the same bytes. ASCII-only (\u escapes): the request id, method name and account values we echo come
    # from the caller and may hold lone surrogates that UTF-8 cannot encode, and ASCII bytes cannot be
    # garbled by a charset mismatch; Payme's own PHP template (json_encode) escapes the same way.
    return json.dumps(document, ensure_ascii=True, sort_keys=True, separators=(",", ":"), allow_nan=False).encode(
        "ascii"
    )


def _is_request_id(value: object) -> TypeGuard[RequestId]:
    # Payme sends integer ids; JSON-RPC also allows strings. A bool is an int to Python but not to JSON.
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")
