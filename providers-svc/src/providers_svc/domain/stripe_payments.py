"""Stripe's payment objects in our terms (PROTOCOLS.md §4.1). Pure: what a PaymentIntent's or a Checkout
Session's own state means for our transaction, whatever event carried it and in whatever order."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from providers_svc.domain.transactions import TransactionStatus, Verdict

Flow = Literal["checkout_session", "payment_intent"]
# PaymentIntent statuses in which the payer is still at work (or Stripe is): nothing is decided yet.
# ``requires_payment_method`` follows a declined attempt too: the payer may try again (not a failure).
WAITING = frozenset({"requires_payment_method", "requires_confirmation", "requires_action", "processing"})
# The payer's bank authorised the amount; a manual-capture account captures it (or cancels it).
AUTHORISED = "requires_capture"
# How long Stripe holds an authorised card payment before it lets it lapse (7 days; PROTOCOLS.md §4).
STRIPE_AUTHORIZATION = timedelta(days=7)
# The ids we put in every object's ``metadata`` (and find our transaction by).
METADATA_TRANSACTION = "transaction_id"


def intent_verdict(intent: Mapping[str, Any]) -> Verdict | None:
    """A PaymentIntent's final word: succeeded took the money, canceled never will; otherwise none yet."""
    status = intent.get("status")
    if status == "succeeded":
        return Verdict.SUCCEEDED
    if status == "canceled":
        return Verdict.FAILED
    return None


def intent_status(intent: Mapping[str, Any]) -> TransactionStatus:
    verdict = intent_verdict(intent)
    return TransactionStatus.PENDING if verdict is None else verdict.status


def last_error(intent: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The code and message of the intent's last failed attempt (``last_payment_error``), if any."""
    error = intent.get("last_payment_error")
    if not isinstance(error, Mapping):
        return None, None
    code = error.get("decline_code") or error.get("code")
    message = error.get("message")
    return (f"stripe_{code}" if code else "stripe_payment_failed"), (str(message)[:500] if message else None)


def failure_of(intent: Mapping[str, Any]) -> tuple[str, str]:
    """Why a canceled intent failed: its last payer error when there was one, else its cancellation."""
    code, message = last_error(intent)
    if code is not None:
        return code, message or "The payment failed at Stripe"
    reason = intent.get("cancellation_reason") or "canceled"
    return f"stripe_{reason}", "Stripe cancelled the payment"


def session_paid(session: Mapping[str, Any]) -> bool:
    """A completed Checkout Session took the money only when its ``payment_status`` says so; ``unpaid``
    waits for ``checkout.session.async_payment_succeeded|failed``."""
    return session.get("status") == "complete" and session.get("payment_status") == "paid"


def page_token(secret: str, transaction_id: str) -> str:
    """The unguessable part of a transaction's payer-page link (it shows the intent's client secret to
    whoever holds it): a MAC of the transaction id under the account's secret key, so no table keeps it
    and nobody without that key can make one."""
    mac = hmac.new(secret.encode(), f"stripe-payer-page:{transaction_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")
