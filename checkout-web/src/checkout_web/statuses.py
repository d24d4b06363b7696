"""What each payment status means to the payer, in words. Shared by the server-side render and the
return page's polling script, so both always say the same thing."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Tone = Literal["neutral", "pending", "success", "error"]

KNOWN_STATUSES = (
    "CREATED",
    "PROVIDER_PENDING",
    "AUTHORIZED",
    "SUCCEEDED",
    "FAILED",
    "EXPIRED",
    "CANCELLED",
    "PARTIALLY_REFUNDED",
    "REFUNDED",
)


@dataclass(frozen=True)
class StatusCopy:
    title: str
    message: str
    tone: Tone
    # Terminal: nothing more will happen on this checkout, so the page stops polling and offers the way back.
    terminal: bool


def describe(status: str, merchant: str) -> StatusCopy:
    match status:
        case "CREATED":
            # Also what a payer sees after a failed attempt (the payment is payable again).
            return StatusCopy(
                "Not paid yet",
                "No payment has been made for this order yet. You can choose a way to pay.",
                "neutral",
                False,
            )
        case "PROVIDER_PENDING":
            return StatusCopy(
                "Waiting for confirmation from the provider…",
                "This page updates by itself as soon as the payment provider confirms the payment.",
                "pending",
                False,
            )
        case "AUTHORIZED":
            # Manual capture: the provider holds the funds and the merchant captures them later; for
            # the payer this checkout is done, as it is once a payment succeeded.
            return StatusCopy(
                "Payment authorized",
                f"Your payment provider authorized the payment; {merchant} will capture it. You can close this page.",
                "success",
                True,
            )
        case "SUCCEEDED":
            return StatusCopy(
                "Payment confirmed",
                f"The payment provider confirmed your payment to {merchant}. You can close this page.",
                "success",
                True,
            )
        case "FAILED":
            return StatusCopy(
                "Payment failed",
                f"This payment could not be completed before the payment link closed. Contact {merchant} to try again.",
                "error",
                True,
            )
        case "EXPIRED":
            return StatusCopy(
                "This payment link has expired",
                f"The time to pay has run out. Ask {merchant} for a new payment link.",
                "neutral",
                True,
            )
        case "CANCELLED":
            return StatusCopy(
                "This payment was cancelled",
                f"It can no longer be paid. Contact {merchant} if you still want to pay.",
                "neutral",
                True,
            )
        case "PARTIALLY_REFUNDED":
            return StatusCopy(
                "Payment partially refunded",
                f"This payment was completed and {merchant} has refunded part of it.",
                "neutral",
                True,
            )
        case "REFUNDED":
            return StatusCopy(
                "Payment refunded", f"This payment was completed and {merchant} has refunded it.", "neutral", True
            )
        case _:
            return StatusCopy(
                "Checking the payment", "We are checking the state of this payment with the provider.", "pending", False
            )


def copy_table(merchant: str) -> dict[str, dict[str, object]]:
    """Every known status described, for the polling script to switch texts without a reload."""
    return {status: asdict(describe(status, merchant)) for status in KNOWN_STATUSES}
