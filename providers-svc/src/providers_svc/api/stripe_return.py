"""Stripe Checkout's return page: ``GET /pay/stripe/{ptx}/{token}/return``, where a Checkout Session
(``flow=checkout_session``) sends the payer back, paid or not (its ``success_url`` and ``cancel_url``),
when the payment came with no return URL of its own.

As on Octo's return page (``api/octo_pages.py``) the payer reads where the payment stands, and nothing
else; the link is the payer page's (``api/stripe_pages.py``: the token a MAC of the transaction id), so
a wrong one, an unknown id or another provider's transaction is the same 404 page. Neither the redirect
nor this page decides anything: only Stripe's webhook moves the payment. While the payment is pending
the page reads the session at Stripe (an unguessable link's GET, like the payer page's read of its
intent) only to tell a payer who paid (being confirmed) from one who left Stripe's page (not completed,
with the way back to it while the session is open)."""

from __future__ import annotations

import logging

from aiohttp import web

from providers_svc.adapters.base import ProviderError
from providers_svc.adapters.stripe import StripeAdapter
from providers_svc.adapters.stripe.client import Json
from providers_svc.api.stripe_pages import find_payment, render
from providers_svc.domain.transactions import Transaction, TransactionStatus

log = logging.getLogger(__name__)

_CONFIRMING = (
    "Payment being confirmed",
    "Stripe has not confirmed the payment to the shop yet. You can close this page: the shop is told when it does.",
)
_FINAL = {
    TransactionStatus.SUCCEEDED: ("Payment received", "Stripe took the payment. You can close this page."),
    TransactionStatus.FAILED: ("Payment not completed", "Stripe did not take the payment. Nothing was charged."),
    TransactionStatus.CANCELLED: ("Payment closed", "This payment was closed and can no longer be paid."),
}
_LEFT = ("Payment not completed", "You left Stripe's payment page before paying. Nothing was charged.")
_EXPIRED = ("Payment not completed", "Stripe's payment page expired before the payment was made. Nothing was charged.")


async def return_page(request: web.Request) -> web.Response:
    found = await find_payment(request)
    if isinstance(found, web.Response):
        return found
    txn, adapter = found
    checkout_url = None
    if txn.status is TransactionStatus.PENDING:
        session = await _session(adapter, txn)
        (heading, message), checkout_url = _pending(session)
    else:
        heading, message = _FINAL[txn.status]
    context = {"heading": heading, "message": message, "return_url": txn.return_url, "checkout_url": checkout_url}
    return render(request, "stripe_message.html", context)


async def _session(adapter: StripeAdapter, txn: Transaction) -> Json | None:
    """The transaction's Checkout Session as Stripe has it now; None when there is none to read (a
    PaymentIntent's reference: the webhook has been) or Stripe does not answer (the page says less)."""
    reference = txn.provider_reference
    if reference is None or not reference.startswith("cs_"):
        return None
    try:
        return await adapter.api.checkout_session(reference)
    except ProviderError as exc:
        log.warning("stripe return page of %s: %s", txn.id, type(exc).__name__)
        return None


def _pending(session: Json | None) -> tuple[tuple[str, str], str | None]:
    """What a pending payment's page says, by its session: the message, and Stripe's page to go back
    to while the payer may still pay there."""
    status = session.get("status") if session is not None else None
    if status == "open" and session is not None:
        url = session.get("url")
        # Only a link to Stripe's page (an https URL): never a script or another scheme in an href.
        return _LEFT, url if isinstance(url, str) and url.startswith("https://") else None
    if status == "expired":
        return _EXPIRED, None
    # Completed (paid, or an asynchronous method still settling), or not known: the webhook decides.
    return _CONFIRMING, None
