"""Payme's methods and their params (PROTOCOLS.md §2.2), read from a parsed envelope into typed values.

Which error a bad param earns follows §2.4 and the official template: anything wrong with ``amount`` is
-31001 and anything wrong with the ``account`` (missing, not an object, no value under our field) is -31050
naming the field, because those two are what the payer typed or what the order says; every other missing or
wrongly typed field (``id``, ``time``, ``reason``, ``from``, ``to``, ``password``) is -32600.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeAlias, TypeGuard

from providers_svc.protocols.payme.errors import PaymeError, PaymeErrorCode
from providers_svc.protocols.payme.jsonrpc import RpcRequest
from providers_svc.protocols.payme.states import CancelReason

# Payme's ids are 24 characters (a Mongo ObjectId); the margin tolerates a change without letting a
# caller make us store an unbounded key.
MAX_TRANSACTION_ID_LENGTH = 64


class Method(StrEnum):
    CHECK_PERFORM_TRANSACTION = "CheckPerformTransaction"
    CREATE_TRANSACTION = "CreateTransaction"
    PERFORM_TRANSACTION = "PerformTransaction"
    CANCEL_TRANSACTION = "CancelTransaction"
    CHECK_TRANSACTION = "CheckTransaction"
    GET_STATEMENT = "GetStatement"
    CHANGE_PASSWORD = "ChangePassword"  # noqa: S105 (a method name, not a password)
    SET_FISCAL_DATA = "SetFiscalData"


class FiscalType(StrEnum):
    PERFORM = "PERFORM"
    CANCEL = "CANCEL"


@dataclass(frozen=True)
class CheckPerformTransactionParams:
    amount: int
    account_field: str
    payment_id: str


@dataclass(frozen=True)
class CreateTransactionParams:
    id: str
    time: int
    amount: int
    account_field: str
    payment_id: str


@dataclass(frozen=True)
class PerformTransactionParams:
    id: str


@dataclass(frozen=True)
class CancelTransactionParams:
    id: str
    reason: CancelReason


@dataclass(frozen=True)
class CheckTransactionParams:
    id: str


@dataclass(frozen=True)
class GetStatementParams:
    start: int  # Payme's ``from``
    end: int  # Payme's ``to``


@dataclass(frozen=True)
class ChangePasswordParams:
    password: str = field(repr=False)


@dataclass(frozen=True)
class SetFiscalDataParams:
    """The fiscal receipt Payme reports for a transaction's perform or cancel (§2.2, optional method).
    ``fiscal_data`` is kept as sent: we store it, we do not interpret it."""

    id: str
    type: FiscalType
    fiscal_data: Mapping[str, object]


Params: TypeAlias = (
    CheckPerformTransactionParams
    | CreateTransactionParams
    | PerformTransactionParams
    | CancelTransactionParams
    | CheckTransactionParams
    | GetStatementParams
    | ChangePasswordParams
    | SetFiscalDataParams
)


def parse_params(request: RpcRequest, *, account_field: str) -> Params:
    """The typed params of ``request``'s method. ``account_field`` is the authenticated account's
    ``settings.account_field``, the ``account`` key that carries our payment id. Raises ``PaymeError``."""
    try:
        method = Method(request.method)
    except ValueError:
        raise PaymeError(PaymeErrorCode.METHOD_NOT_FOUND, data=request.method) from None
    p = request.params
    match method:
        case Method.CHECK_PERFORM_TRANSACTION:
            amount = _amount(p)
            return CheckPerformTransactionParams(amount, account_field, _payment_id(p, account_field))
        case Method.CREATE_TRANSACTION:
            payme_id, time = _transaction_id(p), _timestamp(p, "time")
            amount = _amount(p)
            return CreateTransactionParams(payme_id, time, amount, account_field, _payment_id(p, account_field))
        case Method.PERFORM_TRANSACTION:
            return PerformTransactionParams(_transaction_id(p))
        case Method.CANCEL_TRANSACTION:
            return CancelTransactionParams(_transaction_id(p), _reason(p))
        case Method.CHECK_TRANSACTION:
            return CheckTransactionParams(_transaction_id(p))
        case Method.GET_STATEMENT:
            return GetStatementParams(_timestamp(p, "from"), _timestamp(p, "to"))
        case Method.CHANGE_PASSWORD:
            return ChangePasswordParams(_password(p))
        case Method.SET_FISCAL_DATA:
            return SetFiscalDataParams(_transaction_id(p), _fiscal_type(p), _fiscal_data(p))


def _invalid() -> PaymeError:
    return PaymeError(PaymeErrorCode.INVALID_REQUEST)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _transaction_id(params: Mapping[str, object]) -> str:
    value = params.get("id")
    # Printable only: a control character (a NUL above all) is in no id Payme sends, and no database stores it.
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TRANSACTION_ID_LENGTH or not value.isprintable():
        raise _invalid()
    return value


def _timestamp(params: Mapping[str, object], name: str) -> int:
    value = params.get(name)
    # Within 64 bits: a time is stored and compared in the database (Payme's are 13-digit milliseconds).
    if not _is_int(value) or not 0 <= value < 2**63:
        raise _invalid()
    return value


def _amount(params: Mapping[str, object]) -> int:
    value = params.get("amount")
    if not _is_int(value) or value <= 0:
        raise PaymeError(PaymeErrorCode.INVALID_AMOUNT)
    return value


def _payment_id(params: Mapping[str, object], account_field: str) -> str:
    account = params.get("account")
    value = account.get(account_field) if isinstance(account, dict) else None
    # A kassa field may be typed as a number in the cabinet, so Payme can send 197 as well as "197".
    if _is_int(value):
        return str(value)
    if not isinstance(value, str) or not value or not value.isprintable():
        raise PaymeError(PaymeErrorCode.ORDER_NOT_FOUND, data=account_field)
    return value


def _reason(params: Mapping[str, object]) -> CancelReason:
    value = params.get("reason")
    if not _is_int(value):
        raise _invalid()
    try:
        return CancelReason(value)
    except ValueError:
        raise _invalid() from None


def _password(params: Mapping[str, object]) -> str:
    value = params.get("password")
    if not isinstance(value, str) or not value.strip():
        raise _invalid()
    return value


def _fiscal_type(params: Mapping[str, object]) -> FiscalType:
    value = params.get("type")
    if not isinstance(value, str):
        raise _invalid()
    try:
        return FiscalType(value)
    except ValueError:
        raise _invalid() from None


# A receipt is a handful of short fields; anything much larger is not one, and is not stored.
MAX_FISCAL_DATA_LENGTH = 4096


def _fiscal_data(params: Mapping[str, object]) -> Mapping[str, object]:
    value = params.get("fiscal_data")
    if not isinstance(value, dict) or len(repr(value)) > MAX_FISCAL_DATA_LENGTH:
        raise _invalid()
    return dict(value)
