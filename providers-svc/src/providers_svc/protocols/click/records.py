"""Frozen views of what is stored, as the decisions need them: the order Click pays, and our reservations.

The wiring builds these from its rows; the decisions never see a row, a session or a lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class OrderState(StrEnum):
    """Whether the order behind ``merchant_trans_id`` can still be paid."""

    PAYABLE = "payable"
    PAID = "paid"
    # Cancelled, failed or expired on our side: no attempt may be confirmed for it any more.
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class OrderView:
    """The order (our provider transaction) that ``merchant_trans_id`` names."""

    merchant_trans_id: str
    amount: int  # minor units of ``currency``
    currency: str
    state: OrderState


class PrepareState(StrEnum):
    """One Click attempt (``click_trans_id``) as our reservation for it records it."""

    PREPARED = "prepared"  # Prepare answered 0; the order is reserved for this attempt
    CONFIRMED = "confirmed"  # Complete with error=0 answered 0: money taken, order paid
    CANCELLED = "cancelled"  # Click cancelled the attempt (error<0), or the order was gone at Complete


@dataclass(frozen=True)
class PrepareView:
    """Our reservation for one Click attempt; ``merchant_prepare_id`` is its id, sent to Click in Prepare."""

    merchant_prepare_id: int
    click_trans_id: int
    merchant_trans_id: str
    amount: int  # minor units, as reserved
    state: PrepareState
