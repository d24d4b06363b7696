"""What to answer a Prepare or a Complete, and what to store: PROTOCOLS.md §1.6 (errors) and §1.7 (cancels).

Pure functions over a parsed request and frozen views of what is stored. The check order, first match wins:

    Prepare                                      Complete
    -1  no account, or signature mismatch        -1  no account, or signature mismatch
    -8  signed for another service_id            -8  signed for another service_id
    -9  Click sent error<0 (cancel)               -9  Click sent error<0 (cancel; §1.7)
    -5  no such order                            -5  no such order
    -8  click_trans_id already used for          -6  no such reservation, or it belongs to another
        another order                                click_trans_id / merchant_trans_id
    -2  amount or currency differs               -2  amount or currency differs (order or reservation)
    -4  this attempt already confirmed           -4  this attempt already confirmed
    -9  this attempt already cancelled           -9  this attempt already cancelled
    -4  order paid (by another attempt)          -4  order paid by another attempt      (anomaly)
    -9  order cancelled                          -9  order cancelled meanwhile            (anomaly)
     0  repeat: the same reservation id           0  confirm
     0  reserve: a new reservation id

Click's cancel is checked before any paid-state check: its own test matrix expects -9 (not -4) for a
cancel of a confirmed payment (§1.7). It comes before -5/-6/-2 as well, because a cancel moves no money
and any answer but -9 would leave the attempt stuck at Click for manual handling.
-7 is not decided here: the wiring answers it (``failed_to_update``) when storing a change failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from providers_svc.protocols.click.amounts import CURRENCY, som_matches_tiyin
from providers_svc.protocols.click.answers import (
    ClickError,
    CompleteAnswer,
    PrepareAnswer,
    complete_answer,
    prepare_answer,
)
from providers_svc.protocols.click.credentials import ClickCredentials
from providers_svc.protocols.click.records import OrderState, OrderView, PrepareState, PrepareView
from providers_svc.protocols.click.requests import ClickRequest, CompleteRequest, PrepareRequest
from providers_svc.protocols.click.signing import verify

# The billing_contracts AnomalyKind words these cases are evidence of (kept as strings: the domain does
# not import the contracts package).
Anomaly = Literal["success_for_final_payment", "unexpected_outcome"]


class Change(StrEnum):
    """The state change to store with the answer. The wiring applies it conditionally (see each value)."""

    NONE = "none"
    # Insert a PREPARED reservation with the answer's merchant_prepare_id for this click_trans_id,
    # unique on click_trans_id; if a concurrent repeat won the insert, decide again with it as ``prior``.
    RESERVE = "reserve"
    # PREPARED -> CONFIRMED and the order -> paid, only where the reservation is still PREPARED.
    CONFIRM = "confirm"
    # PREPARED -> CANCELLED (the reservation is released), only where it is still PREPARED.
    CANCEL = "cancel"


@dataclass(frozen=True)
class PrepareOutcome:
    answer: PrepareAnswer
    change: Change
    # The reservation the change applies to (the new one for RESERVE), else None.
    merchant_prepare_id: int | None = None
    anomaly: Anomaly | None = None

    @property
    def error(self) -> ClickError:
        return ClickError(self.answer["error"])


@dataclass(frozen=True)
class CompleteOutcome:
    answer: CompleteAnswer
    change: Change
    merchant_prepare_id: int | None = None
    anomaly: Anomaly | None = None

    @property
    def error(self) -> ClickError:
        return ClickError(self.answer["error"])


def decide_prepare(
    request: PrepareRequest,
    *,
    credentials: ClickCredentials | None,
    order: OrderView | None,
    prior: PrepareView | None,
    new_prepare_id: int,
) -> PrepareOutcome:
    """Answer a Prepare.

    ``credentials``: the account for ``request.service_id`` (None when we have none). ``order``: the order
    named by ``merchant_trans_id``. ``prior``: our reservation for ``request.click_trans_id``, if any.
    ``new_prepare_id``: the id a new reservation gets; unused unless the change is RESERVE.
    """

    def answer(error: ClickError, prepare_id: int | None) -> PrepareAnswer:
        return prepare_answer(
            error,
            click_trans_id=request.click_trans_id,
            merchant_trans_id=request.merchant_trans_id,
            merchant_prepare_id=prepare_id,
        )

    prior_id = prior.merchant_prepare_id if prior is not None else None
    auth_error = _authenticate(request, credentials)
    if auth_error is not None:
        return PrepareOutcome(answer(auth_error, None), Change.NONE)
    if request.error < 0:
        if prior is not None and prior.state is PrepareState.PREPARED and _same_order(prior, request):
            return PrepareOutcome(answer(ClickError.TRANSACTION_CANCELLED, prior_id), Change.CANCEL, prior_id)
        return PrepareOutcome(answer(ClickError.TRANSACTION_CANCELLED, prior_id), Change.NONE)
    if order is None:
        return PrepareOutcome(answer(ClickError.USER_DOES_NOT_EXIST, None), Change.NONE)
    if prior is not None and not _same_order(prior, request):
        return PrepareOutcome(answer(ClickError.BAD_REQUEST, None), Change.NONE)
    if not _amount_matches(request, order):
        return PrepareOutcome(answer(ClickError.INCORRECT_AMOUNT, prior_id), Change.NONE)
    if prior is not None and prior.state is PrepareState.CONFIRMED:
        return PrepareOutcome(answer(ClickError.ALREADY_PAID, prior_id), Change.NONE)
    if prior is not None and prior.state is PrepareState.CANCELLED:
        return PrepareOutcome(answer(ClickError.TRANSACTION_CANCELLED, prior_id), Change.NONE)
    if order.state is OrderState.PAID:
        return PrepareOutcome(answer(ClickError.ALREADY_PAID, prior_id), Change.NONE)
    if order.state is OrderState.CANCELLED:
        return PrepareOutcome(answer(ClickError.TRANSACTION_CANCELLED, prior_id), Change.NONE)
    if prior is not None:
        return PrepareOutcome(answer(ClickError.SUCCESS, prior_id), Change.NONE)
    return PrepareOutcome(answer(ClickError.SUCCESS, new_prepare_id), Change.RESERVE, new_prepare_id)


def decide_complete(
    request: CompleteRequest,
    *,
    credentials: ClickCredentials | None,
    order: OrderView | None,
    prepare: PrepareView | None,
) -> CompleteOutcome:
    """Answer a Complete.

    ``order``: the order named by ``merchant_trans_id``. ``prepare``: our reservation whose id is
    ``request.merchant_prepare_id``, if any. A repeated successful Complete answers -4 with the same
    merchant_confirm_id (Click's test matrix, scenario 7); every later repeat answers the same.
    """

    def answer(error: ClickError, confirm_id: int | None = None) -> CompleteAnswer:
        return complete_answer(
            error,
            click_trans_id=request.click_trans_id,
            merchant_trans_id=request.merchant_trans_id,
            merchant_confirm_id=confirm_id,
        )

    auth_error = _authenticate(request, credentials)
    if auth_error is not None:
        return CompleteOutcome(answer(auth_error), Change.NONE)
    matching = prepare if prepare is not None and _is_reservation_for(prepare, request) else None
    if request.error < 0:
        if matching is None or matching.state is PrepareState.CANCELLED:
            return CompleteOutcome(answer(ClickError.TRANSACTION_CANCELLED), Change.NONE)
        if matching.state is PrepareState.CONFIRMED:
            # Money we recorded as taken, now cancelled by Click: -9 as its matrix expects, but the
            # payment stays paid here until a human (or reconciliation) settles which side is right.
            return CompleteOutcome(
                answer(ClickError.TRANSACTION_CANCELLED),
                Change.NONE,
                matching.merchant_prepare_id,
                anomaly="unexpected_outcome",
            )
        return CompleteOutcome(answer(ClickError.TRANSACTION_CANCELLED), Change.CANCEL, matching.merchant_prepare_id)
    if order is None:
        return CompleteOutcome(answer(ClickError.USER_DOES_NOT_EXIST), Change.NONE)
    if matching is None:
        return CompleteOutcome(answer(ClickError.TRANSACTION_DOES_NOT_EXIST), Change.NONE)
    if not _amount_matches(request, order) or not som_matches_tiyin(request.amount, matching.amount):
        return CompleteOutcome(answer(ClickError.INCORRECT_AMOUNT), Change.NONE)
    prepare_id = matching.merchant_prepare_id
    if matching.state is PrepareState.CONFIRMED:
        return CompleteOutcome(answer(ClickError.ALREADY_PAID, prepare_id), Change.NONE)
    if matching.state is PrepareState.CANCELLED:
        return CompleteOutcome(answer(ClickError.TRANSACTION_CANCELLED), Change.NONE)
    if order.state is OrderState.PAID:
        # Click took money for a second attempt at an order another attempt already paid.
        return CompleteOutcome(
            answer(ClickError.ALREADY_PAID), Change.NONE, prepare_id, anomaly="success_for_final_payment"
        )
    if order.state is OrderState.CANCELLED:
        # Money taken for an order we gave up on while Click was debiting: refuse it, release the
        # reservation so that repeats answer -9 from the reservation alone, and leave evidence.
        return CompleteOutcome(
            answer(ClickError.TRANSACTION_CANCELLED), Change.CANCEL, prepare_id, anomaly="success_for_final_payment"
        )
    return CompleteOutcome(answer(ClickError.SUCCESS, prepare_id), Change.CONFIRM, prepare_id)


def failed_to_update(request: ClickRequest) -> PrepareAnswer | CompleteAnswer:
    """The -7 answer, for when storing a decided change failed. Click calls again; nothing was stored."""
    if isinstance(request, PrepareRequest):
        return prepare_answer(
            ClickError.FAILED_TO_UPDATE_USER,
            click_trans_id=request.click_trans_id,
            merchant_trans_id=request.merchant_trans_id,
            merchant_prepare_id=None,
        )
    return complete_answer(
        ClickError.FAILED_TO_UPDATE_USER,
        click_trans_id=request.click_trans_id,
        merchant_trans_id=request.merchant_trans_id,
        merchant_confirm_id=None,
    )


def _authenticate(request: ClickRequest, credentials: ClickCredentials | None) -> ClickError | None:
    if credentials is None or not verify(request.signed, credentials.secret_key, request.sign_string):
        return ClickError.SIGN_CHECK_FAILED
    if request.service_id != credentials.service_id:
        return ClickError.BAD_REQUEST
    return None


def _same_order(prior: PrepareView, request: PrepareRequest) -> bool:
    return prior.merchant_trans_id == request.merchant_trans_id


def _is_reservation_for(prepare: PrepareView, request: CompleteRequest) -> bool:
    return (
        prepare.merchant_prepare_id == request.merchant_prepare_id
        and prepare.click_trans_id == request.click_trans_id
        and prepare.merchant_trans_id == request.merchant_trans_id
    )


def _amount_matches(request: ClickRequest, order: OrderView) -> bool:
    return order.currency == CURRENCY and som_matches_tiyin(request.amount, order.amount)
