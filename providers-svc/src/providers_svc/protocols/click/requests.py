"""Parsing a posted SHOP API form (PROTOCOLS.md §1.2, §1.3) into a typed request, or Click's error answer.

Every value arrives as a string. Nothing here raises on input: a missing field, a value of the wrong type
or an out-of-range number becomes -8, and an action other than 0 or 1 becomes -3. The action is read
first because it decides which fields are required and which signature formula applies.
The signature itself is checked by the decisions, which hold the account's secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import IntEnum

from providers_svc.protocols.click.amounts import parse_som
from providers_svc.protocols.click.answers import (
    Answer,
    ClickError,
    complete_answer,
    error_answer,
    prepare_answer,
)
from providers_svc.protocols.click.signing import SignedFields

_BIGINT_MAX = 2**63 - 1
# [0-9], not \d: \d and int() accept non-ASCII digits that Click never sends. At most 19 digits keeps
# every id inside BIGINT (checked again below) and far from int()'s digit limit for huge inputs.
_UNSIGNED = re.compile(r"[0-9]{1,19}")
_SIGNED = re.compile(r"-?[0-9]{1,19}")
_INTEGER = re.compile(r"-?[0-9]+")
_SIGN_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


class Action(IntEnum):
    PREPARE = 0
    COMPLETE = 1


@dataclass(frozen=True)
class PrepareRequest:
    """A well-formed Prepare (action=0). Not yet authenticated: ``signed`` holds the raw strings to check."""

    click_trans_id: int
    service_id: int
    click_paydoc_id: int
    merchant_trans_id: str
    amount: Decimal  # so'm, exactly as posted
    error: int  # Click's own status; < 0 means Click cancels
    error_note: str
    sign_time: str
    sign_string: str
    signed: SignedFields


@dataclass(frozen=True)
class CompleteRequest:
    """A well-formed Complete (action=1): Prepare's fields plus the reservation id we gave Click."""

    click_trans_id: int
    service_id: int
    click_paydoc_id: int
    merchant_trans_id: str
    merchant_prepare_id: int
    amount: Decimal
    error: int
    error_note: str
    sign_time: str
    sign_string: str
    signed: SignedFields


@dataclass(frozen=True)
class Rejected:
    """A form that is not a Prepare or Complete request: the answer to send, and why (for our logs only)."""

    answer: Answer
    reason: str

    @property
    def error(self) -> ClickError:
        return ClickError(self.answer["error"])


ClickRequest = PrepareRequest | CompleteRequest


class _Malformed(Exception):  # control flow inside this module only: parse_request never lets it out
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_request(form: Mapping[str, object]) -> ClickRequest | Rejected:
    """Parse the posted ``form`` (field name to value, as posted). Unknown fields are ignored."""
    click_trans_id = _echo_id(form.get("click_trans_id"))
    merchant_trans_id = _echo_text(form.get("merchant_trans_id"))

    raw_action = form.get("action")
    if not isinstance(raw_action, str) or _INTEGER.fullmatch(raw_action) is None:
        return Rejected(
            error_answer(ClickError.BAD_REQUEST, click_trans_id=click_trans_id, merchant_trans_id=merchant_trans_id),
            "action is missing or not an integer",
        )
    # Length first: int() of a huge digit string is slow and, past 4300 digits, raises.
    value = int(raw_action) if len(raw_action) <= 20 else None
    if value is None or value not in (Action.PREPARE, Action.COMPLETE):
        return Rejected(
            error_answer(
                ClickError.ACTION_NOT_FOUND, click_trans_id=click_trans_id, merchant_trans_id=merchant_trans_id
            ),
            f"action {raw_action[:20]!r} is neither 0 nor 1",
        )
    action = Action(value)

    try:
        return _parse_fields(form, action, raw_action)
    except _Malformed as exc:
        answer: Answer
        if action is Action.PREPARE:
            answer = prepare_answer(
                ClickError.BAD_REQUEST,
                click_trans_id=click_trans_id,
                merchant_trans_id=merchant_trans_id,
                merchant_prepare_id=None,
            )
        else:
            answer = complete_answer(
                ClickError.BAD_REQUEST,
                click_trans_id=click_trans_id,
                merchant_trans_id=merchant_trans_id,
                merchant_confirm_id=None,
            )
        return Rejected(answer, exc.reason)


def _parse_fields(form: Mapping[str, object], action: Action, raw_action: str) -> ClickRequest:
    raw_click_trans_id = _text(form, "click_trans_id")
    raw_service_id = _text(form, "service_id")
    raw_paydoc_id = _text(form, "click_paydoc_id")
    merchant_trans_id = _text(form, "merchant_trans_id")
    raw_amount = _text(form, "amount")
    raw_error = _text(form, "error")
    sign_time = _text(form, "sign_time")
    sign_string = _text(form, "sign_string")
    error_note = _optional_text(form, "error_note")
    raw_prepare_id = _text(form, "merchant_prepare_id") if action is Action.COMPLETE else None

    click_trans_id = _bigint(raw_click_trans_id, "click_trans_id")
    service_id = _bigint(raw_service_id, "service_id")
    click_paydoc_id = _bigint(raw_paydoc_id, "click_paydoc_id")
    amount = parse_som(raw_amount)
    if amount is None:
        raise _Malformed("amount is not a plain decimal")
    error = _error_code(raw_error)
    if _SIGN_TIME.fullmatch(sign_time) is None or not _is_calendar_time(sign_time):
        raise _Malformed("sign_time is not YYYY-MM-DD HH:mm:ss")
    signed = SignedFields(
        click_trans_id=raw_click_trans_id,
        service_id=raw_service_id,
        merchant_trans_id=merchant_trans_id,
        merchant_prepare_id=raw_prepare_id,
        amount=raw_amount,
        action=raw_action,
        sign_time=sign_time,
    )
    if raw_prepare_id is None:
        return PrepareRequest(
            click_trans_id=click_trans_id,
            service_id=service_id,
            click_paydoc_id=click_paydoc_id,
            merchant_trans_id=merchant_trans_id,
            amount=amount,
            error=error,
            error_note=error_note,
            sign_time=sign_time,
            sign_string=sign_string,
            signed=signed,
        )
    return CompleteRequest(
        click_trans_id=click_trans_id,
        service_id=service_id,
        click_paydoc_id=click_paydoc_id,
        merchant_trans_id=merchant_trans_id,
        merchant_prepare_id=_bigint(raw_prepare_id, "merchant_prepare_id"),
        amount=amount,
        error=error,
        error_note=error_note,
        sign_time=sign_time,
        sign_string=sign_string,
        signed=signed,
    )


def _text(form: Mapping[str, object], name: str) -> str:
    value = form.get(name)
    if value is None or value == "":
        raise _Malformed(f"{name} is missing")
    if not isinstance(value, str):
        raise _Malformed(f"{name} is not text")
    return value


def _optional_text(form: Mapping[str, object], name: str) -> str:
    value = form.get(name, "")
    if not isinstance(value, str):
        raise _Malformed(f"{name} is not text")
    return value


def _bigint(raw: str, name: str) -> int:
    if _UNSIGNED.fullmatch(raw) is None or int(raw) > _BIGINT_MAX:
        raise _Malformed(f"{name} is not a non-negative 64-bit integer")
    return int(raw)


def _error_code(raw: str) -> int:
    if _SIGNED.fullmatch(raw) is None or not -_BIGINT_MAX <= int(raw) <= _BIGINT_MAX:
        raise _Malformed("error is not a 64-bit integer")
    return int(raw)


def _is_calendar_time(raw: str) -> bool:
    try:
        datetime.strptime(raw, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return False
    return True


def _echo_id(value: object) -> int | None:
    """An id fit to echo in an error answer, or None when the posted one is not an id at all."""
    if isinstance(value, str) and _UNSIGNED.fullmatch(value) is not None and int(value) <= _BIGINT_MAX:
        return int(value)
    return None


def _echo_text(value: object) -> str | None:
    return value if isinstance(value, str) and value != "" else None
