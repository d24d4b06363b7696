"""What we answer Click: the error codes of the SHOP API with their canonical notes, and the JSON bodies.

The bodies are TypedDicts so that the endpoint serializes them as they are (HTTP 200, ``application/json``).
Keys hold even on errors: Click reads ``error`` first, and the ids let its support match a failed call.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TypedDict


class ClickError(IntEnum):
    """The ``error`` values a merchant returns (PROTOCOLS.md §1.6)."""

    SUCCESS = 0
    SIGN_CHECK_FAILED = -1
    INCORRECT_AMOUNT = -2
    ACTION_NOT_FOUND = -3
    ALREADY_PAID = -4
    USER_DOES_NOT_EXIST = -5
    TRANSACTION_DOES_NOT_EXIST = -6
    FAILED_TO_UPDATE_USER = -7
    BAD_REQUEST = -8
    TRANSACTION_CANCELLED = -9

    @property
    def note(self) -> str:
        """The canonical ``error_note``, word for word as Click's error table spells it."""
        return _NOTES[self]


_NOTES: dict[ClickError, str] = {
    ClickError.SUCCESS: "Success",
    ClickError.SIGN_CHECK_FAILED: "SIGN CHECK FAILED!",
    ClickError.INCORRECT_AMOUNT: "Incorrect parameter amount",
    ClickError.ACTION_NOT_FOUND: "Action not found",
    ClickError.ALREADY_PAID: "Already paid",
    ClickError.USER_DOES_NOT_EXIST: "User does not exist",
    ClickError.TRANSACTION_DOES_NOT_EXIST: "Transaction does not exist",
    ClickError.FAILED_TO_UPDATE_USER: "Failed to update user",
    ClickError.BAD_REQUEST: "Error in request from click",
    ClickError.TRANSACTION_CANCELLED: "Transaction cancelled",
}


class PrepareAnswer(TypedDict):
    click_trans_id: int | None
    merchant_trans_id: str | None
    # Our reservation's id; None when the answer is an error and no reservation exists.
    merchant_prepare_id: int | None
    error: int
    error_note: str


class CompleteAnswer(TypedDict):
    click_trans_id: int | None
    merchant_trans_id: str | None
    # The confirmation's id (we reuse the reservation's); None unless the payment is confirmed.
    merchant_confirm_id: int | None
    error: int
    error_note: str


class ErrorAnswer(TypedDict):
    """For a request whose action is missing or unknown: neither Prepare's nor Complete's shape applies."""

    click_trans_id: int | None
    merchant_trans_id: str | None
    error: int
    error_note: str


Answer = PrepareAnswer | CompleteAnswer | ErrorAnswer


def prepare_answer(
    error: ClickError, *, click_trans_id: int | None, merchant_trans_id: str | None, merchant_prepare_id: int | None
) -> PrepareAnswer:
    return {
        "click_trans_id": click_trans_id,
        "merchant_trans_id": merchant_trans_id,
        "merchant_prepare_id": merchant_prepare_id,
        "error": int(error),
        "error_note": error.note,
    }


def complete_answer(
    error: ClickError, *, click_trans_id: int | None, merchant_trans_id: str | None, merchant_confirm_id: int | None
) -> CompleteAnswer:
    return {
        "click_trans_id": click_trans_id,
        "merchant_trans_id": merchant_trans_id,
        "merchant_confirm_id": merchant_confirm_id,
        "error": int(error),
        "error_note": error.note,
    }


def error_answer(error: ClickError, *, click_trans_id: int | None, merchant_trans_id: str | None) -> ErrorAnswer:
    return {
        "click_trans_id": click_trans_id,
        "merchant_trans_id": merchant_trans_id,
        "error": int(error),
        "error_note": error.note,
    }
