"""Stripe on provider accounts (PROTOCOLS.md §4): ``StripeProvider.bind(account)`` gives the adapter
that pays through that account, by the account's ``settings.flow``:

- ``checkout_session`` (default): a Checkout Session; the payer pays on Stripe's hosted page. The
  transaction's ``provider_reference`` is the session id (``cs_...``) until the payment succeeds, when
  the webhook replaces it with the PaymentIntent's id (``pi_...``).
- ``payment_intent``: a PaymentIntent the payer confirms on our payer page (Stripe Elements, or test
  cards at a fake Stripe); ``provider_reference`` is the intent's id from the start.

Only the webhook (``POST /billing/stripe``) decides a payment, never the payer's redirect. Every POST
carries an idempotency key derived from our ids, so a retried call is the same call at Stripe, and every
object carries our ids in its ``metadata``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import aiohttp
from billing_contracts.envelope import utcnow

from providers_svc.adapters.base import (
    CaptureResult,
    PaymentProvider,
    ProviderRejectedError,
    RefundResult,
    StartResult,
    StatusResult,
)
from providers_svc.adapters.stripe.amounts import StripeAmountError, from_stripe, to_stripe
from providers_svc.adapters.stripe.client import Json, StripeApi
from providers_svc.adapters.stripe.currencies import STRIPE_CURRENCIES
from providers_svc.domain.accounts import BoundAccount
from providers_svc.domain.stripe_payments import (
    AUTHORISED,
    METADATA_TRANSACTION,
    STRIPE_AUTHORIZATION,
    failure_of,
    intent_status,
    page_token,
)
from providers_svc.domain.transactions import Transaction, TransactionStatus

NAME = "stripe"
# Stripe keeps a Checkout Session open for 30 minutes at least and 24 hours at most.
_SESSION_MIN = timedelta(minutes=31)
_SESSION_MAX = timedelta(hours=23, minutes=59)
_REFUND_STATUSES: dict[str, Literal["pending", "succeeded", "failed"]] = {
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "failed",
}


def idempotency_key(txn: Transaction, operation: str) -> str:
    """The key of one operation on one attempt: the transaction is the attempt (one per payment and
    provider), so a retry of the same operation is the same request at Stripe (PROTOCOLS.md §4.1)."""
    return f"{txn.tenant_id}:{txn.payment_id}:{txn.id}:{operation}"


def metadata_of(txn: Transaction) -> dict[str, str]:
    return {"tenant_id": txn.tenant_id, "payment_id": txn.payment_id, METADATA_TRANSACTION: txn.id}


def stripe_amount(amount: int, currency: str) -> int:
    try:
        return to_stripe(amount, currency)
    except StripeAmountError as exc:
        raise ProviderRejectedError("stripe_amount_not_supported", str(exc)) from None


@dataclass(frozen=True)
class StripeAdapter:
    """One account's Stripe. Test-only exactly when the account is a test one."""

    account: BoundAccount
    api: StripeApi
    page_base: str
    name: str = NAME
    display_name: str = "Stripe"
    currencies: frozenset[str] = STRIPE_CURRENCIES

    @property
    def test_only(self) -> bool:
        return self.account.test

    @property
    def starts_locally(self) -> bool:
        return False  # a PaymentIntent or Checkout Session at Stripe

    @property
    def flow(self) -> str:
        return self.account.settings.get("flow", "checkout_session")

    @property
    def manual_capture(self) -> bool:
        return self.account.settings.get("capture_method") == "manual"

    def payer_page(self, txn: Transaction) -> str:
        return f"{self.page_base}/{txn.id}/{page_token(self.account.credentials['secret_key'], txn.id)}"

    def return_page(self, txn: Transaction) -> str:
        """Where Stripe's Checkout sends back the payer of a payment that came with no return URL: our
        page saying where the payment stands (``api/stripe_return.py``), under the payer page's link."""
        return f"{self.payer_page(txn)}/return"

    async def start(self, txn: Transaction) -> StartResult:
        amount = stripe_amount(txn.amount, txn.currency)
        # The payment's own manual capture (the tenant captures), or the account's (we capture at once).
        capture = "manual" if self.manual_capture or txn.manual else "automatic"
        if self.flow == "payment_intent":
            intent = await self.api.create_payment_intent(
                {
                    "amount": amount,
                    "currency": txn.currency.lower(),
                    "metadata": metadata_of(txn),
                    "payment_method_types": ["card"],
                    "capture_method": capture,
                },
                idempotency_key=idempotency_key(txn, "payment_intent"),
            )
            return StartResult(redirect_url=self.payer_page(txn), provider_reference=str(intent["id"]))
        session = await self.api.create_checkout_session(
            self.session_params(txn, amount, capture), idempotency_key=idempotency_key(txn, "checkout_session")
        )
        url = session.get("url")
        if not url:
            raise ProviderRejectedError("stripe_no_checkout_url", "Stripe gave no page for the Checkout Session")
        return StartResult(redirect_url=str(url), provider_reference=str(session["id"]))

    def session_params(self, txn: Transaction, amount: int, capture: str) -> dict[str, Any]:
        now = utcnow()
        expires = min(max(txn.expires_at, now + _SESSION_MIN), now + _SESSION_MAX)
        # Paid or not (``cancel_url``: the payer left Stripe's page), the payer comes back to the shop, or
        # without a return URL to our page; neither redirect decides anything, the webhook does.
        back = txn.return_url or self.return_page(txn)
        return {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": txn.currency.lower(),
                        "unit_amount": amount,
                        "product_data": {"name": (txn.description or f"Payment {txn.payment_id}")[:250]},
                    },
                }
            ],
            "success_url": back,
            "cancel_url": back,
            "client_reference_id": txn.id,
            "metadata": metadata_of(txn),
            "payment_intent_data": {"metadata": metadata_of(txn), "capture_method": capture},
            "expires_at": int(expires.timestamp()),
        }

    async def intent_of(self, txn: Transaction) -> Json | None:
        """The transaction's PaymentIntent as Stripe has it now; None while a session has none yet."""
        reference = txn.provider_reference
        if reference is None:
            return None
        if reference.startswith("cs_"):
            session = await self.api.checkout_session(reference)
            intent = session.get("payment_intent")
            if isinstance(intent, dict):
                return intent
            return await self.api.payment_intent(str(intent)) if intent else None
        return await self.api.payment_intent(reference)

    async def cancel(self, txn: Transaction) -> bool:
        reference = txn.provider_reference
        if reference is None:
            return True  # never created at Stripe: nothing to take money with
        if reference.startswith("cs_"):
            session = await self.api.checkout_session(reference)
            if session.get("status") == "open" and await self._expire(txn, reference):
                return True
        intent = await self.intent_of(txn)
        if intent is None:
            return True
        return await self._release(txn, intent)

    async def _expire(self, txn: Transaction, session_id: str) -> bool:
        """Expire an open session; False when Stripe refuses (it completed meanwhile: its intent decides)."""
        try:
            await self.api.expire_checkout_session(session_id, idempotency_key=idempotency_key(txn, "expire"))
        except ProviderRejectedError:
            return False
        return True

    async def _release(self, txn: Transaction, intent: Json) -> bool:
        status = intent.get("status")
        if status in ("succeeded", "processing"):
            return False
        if status == "canceled":
            return True
        try:
            await self.api.cancel_payment_intent(str(intent["id"]), idempotency_key=idempotency_key(txn, "cancel"))
            return True
        except ProviderRejectedError:
            # Stripe would not cancel it (it succeeded meanwhile): what it is now decides.
            intent = await self.api.payment_intent(str(intent["id"]))
            return intent.get("status") == "canceled"

    async def fetch_status(self, txn: Transaction) -> StatusResult:
        reference = txn.provider_reference
        if reference is not None and reference.startswith("cs_"):
            session = await self.api.checkout_session(reference)
            if session.get("status") == "expired":
                return StatusResult(
                    TransactionStatus.FAILED, reference, "stripe_session_expired", "The Checkout Session expired"
                )
        intent = await self.intent_of(txn)
        if intent is None:
            return StatusResult(TransactionStatus.PENDING, reference)
        status = intent_status(intent)
        failed = status is TransactionStatus.FAILED
        code, message = failure_of(intent) if failed else (None, None)
        if status is TransactionStatus.SUCCEEDED:
            # What Stripe took: a manual capture may have taken part of the amount.
            amount = captured_amount(intent, txn.currency, txn.amount)
            return StatusResult(status, str(intent["id"]), amount=amount, currency=txn.currency)
        if intent.get("status") == AUTHORISED and txn.manual:
            return StatusResult(
                status,
                str(intent["id"]),
                authorized=True,
                authorization_expires_at=utcnow() + STRIPE_AUTHORIZATION,
            )
        return StatusResult(status, str(intent["id"]), code, message)

    async def capture_intent(self, txn: Transaction, amount: int | None = None) -> Json:
        """Capture an authorised intent (manual capture), all of it or ``amount`` minor units of it
        (Stripe releases the rest). Keyed by the amount: a retry is the same capture."""
        intent = await self.intent_of(txn)
        if intent is None:
            raise ProviderRejectedError("stripe_not_authorised", "The payment has no PaymentIntent yet")
        wanted = txn.amount if amount is None else amount
        return await self.api.capture_payment_intent(
            str(intent["id"]),
            stripe_amount(wanted, txn.currency),
            idempotency_key=idempotency_key(txn, f"capture:{wanted}"),
        )

    async def capture(self, txn: Transaction, amount: int) -> CaptureResult:
        """The tenant's capture of a manual-capture payment: ``PaymentIntent.capture(amount_to_capture)``
        with a key derived from the payment; an intent Stripe already captured (our earlier call, whose
        answer was lost) answers with what it took."""
        try:
            intent = await self.capture_intent(txn, amount)
        except ProviderRejectedError:
            intent = await self.intent_of(txn) or {}
            if intent.get("status") != "succeeded":
                raise
        if intent.get("status") != "succeeded":
            raise ProviderRejectedError("stripe_not_captured", f"Stripe left the intent {intent.get('status')}")
        return CaptureResult(captured_amount(intent, txn.currency, amount), str(intent["id"]))

    async def refund(
        self, txn: Transaction, *, refund_id: str, amount: int, reason: str | None, retry: bool = False
    ) -> RefundResult:
        intent = await self.intent_of(txn)
        if intent is None or intent.get("status") != "succeeded":
            raise ProviderRejectedError("stripe_not_paid", "The payment was not paid at Stripe")
        if retry:
            # An earlier attempt may have made the refund and lost its answer, and Stripe forgets an
            # idempotency key after 24 hours: the refund our metadata names is adopted, never made twice.
            made = await self._refund_made(str(intent["id"]), refund_id)
            if made is not None:
                return refund_result(made)
        metadata = {**metadata_of(txn), "refund_id": refund_id}
        if reason:
            # Stripe's ``reason`` takes three words of its own; ours is free text, kept in the metadata.
            metadata["reason"] = reason[:500]
        refund = await self.api.create_refund(
            {"payment_intent": str(intent["id"]), "amount": stripe_amount(amount, txn.currency), "metadata": metadata},
            # Our refund id: a retried refund is the same refund at Stripe.
            idempotency_key=refund_idempotency_key(refund_id),
        )
        return refund_result(refund)

    async def _refund_made(self, intent_id: str, refund_id: str) -> Json | None:
        """The intent's refund whose ``metadata.refund_id`` is ours (None: none was made)."""
        async for refund in self.api.refunds_of_intent(intent_id):
            metadata = refund.get("metadata")
            if isinstance(metadata, Mapping) and metadata.get("refund_id") == refund_id:
                return refund
        return None

    async def refund_status(
        self, txn: Transaction, *, refund_id: str, provider_refund_id: str | None, amount: int
    ) -> RefundResult:
        if provider_refund_id is None:
            # Stripe never answered with its refund: found among the intent's refunds, else made.
            return await self.refund(txn, refund_id=refund_id, amount=amount, reason=None, retry=True)
        return refund_result(await self.api.refund(provider_refund_id))


def captured_amount(intent: Mapping[str, Any], currency: str, asked: int) -> int:
    """What a succeeded intent took, in our units: ``amount_received`` (a partial capture took less
    than ``amount``), else what was asked."""
    received = intent.get("amount_received")
    if isinstance(received, int) and not isinstance(received, bool) and received > 0:
        ours = from_stripe(received, currency.upper())
        if ours is not None:
            return ours
    return asked


def refund_idempotency_key(refund_id: str) -> str:
    """The Stripe ``Idempotency-Key`` of our refund: our refund id (``rfnd_...``, globally unique), so
    every retry of it is the same refund at Stripe."""
    return refund_id


def refund_result(refund: Mapping[str, Any]) -> RefundResult:
    """A Stripe Refund object in our terms (``pending``/``requires_action`` are still pending)."""
    status = _REFUND_STATUSES.get(str(refund.get("status")), "pending")
    if status != "failed":
        return RefundResult(status=status, provider_refund_id=str(refund["id"]))
    reason = refund.get("failure_reason")
    named = isinstance(reason, str) and reason.isidentifier() and len(reason) <= 48
    return RefundResult(
        status=status,
        provider_refund_id=str(refund["id"]),
        failure_code=f"stripe_{reason}" if named else "stripe_refund_failed",
        failure_message=f"Stripe could not make the refund ({reason})" if named else "Stripe refused the refund",
    )


@dataclass(frozen=True)
class StripeProvider:
    """The account provider: ``bind`` is cheap (no I/O; the client is built on the first call)."""

    http: Callable[[], aiohttp.ClientSession]
    # Where our payer pages are served (through the gateway): ``{page_base}/{ptx}/{token}``.
    page_base: str
    name: str = NAME
    display_name: str = "Stripe"
    currencies: frozenset[str] = STRIPE_CURRENCIES

    def bind(self, account: BoundAccount) -> PaymentProvider:
        return self.bound(account)

    def bound(self, account: BoundAccount) -> StripeAdapter:
        return StripeAdapter(account, StripeApi(account, self.http), self.page_base)
