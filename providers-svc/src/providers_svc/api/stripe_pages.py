"""The Stripe payer page of ``flow=payment_intent``: ``GET /pay/stripe/{ptx}/{token}``.

The link is the payer's credential (the page shows the intent's client secret): its token is a MAC of
the transaction id under the account's secret key (``domain.stripe_payments.page_token``), so it cannot be
guessed, and a wrong one is a 404 like an unknown transaction. For a real account the page is Stripe
Elements with the account's publishable key (the CSP allows Stripe's script, frames and API only). For a
test account at a fake Stripe (``api_base`` not Stripe's, e.g. localstripe) it offers test cards that our
server applies to the intent there (``POST``), so a test can pay end to end. Either way only Stripe's
webhook decides the payment, never this page."""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from collections.abc import Mapping

from aiohttp import web

from providers_svc.adapters.base import ProviderError, ProviderRejectedError
from providers_svc.adapters.stripe import NAME, StripeAdapter
from providers_svc.api.forms import payer_form
from providers_svc.db.repositories import transaction_snapshot
from providers_svc.domain.stripe_payments import page_token
from providers_svc.domain.transactions import Transaction, TransactionStatus
from providers_svc.keys import account_copies_key, stripe_webhooks_key, templates_key, uow_factory_key
from providers_svc.sandbox.pages import format_amount

log = logging.getLogger(__name__)

STRIPE_API = "https://api.stripe.com"
_BASE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
_PLAIN_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# Stripe.js: its script and frames from js.stripe.com (3-D Secure through hooks.stripe.com), its calls
# to the API; our one inline script by nonce.
_ELEMENTS_CSP = (
    "default-src 'none'; script-src https://js.stripe.com 'nonce-{nonce}'; "
    "frame-src https://js.stripe.com https://hooks.stripe.com; connect-src https://api.stripe.com; "
    "img-src https://*.stripe.com; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
_ERROR_CODE = re.compile(r"stripe_[a-z_]{1,60}")
# The fake Stripe's test cards (PROTOCOLS.md §5a): what the payer picks → the card's number (None:
# localstripe's ready-made ``pm_card_visa``).
TEST_CARDS: dict[str, str | None] = {
    "visa": None,
    "decline": "4000000000000341",
    "3ds": "4000002500003155",
    "3ds_pending": "4000002500003155",
}


def is_fake_stripe(adapter: StripeAdapter) -> bool:
    """A test account pointed at another Stripe than Stripe's own (localstripe): test cards apply."""
    return adapter.account.test and adapter.account.settings.get("api_base", STRIPE_API).rstrip("/") != STRIPE_API


def render(
    request: web.Request, template: str, context: Mapping[str, object], *, status: int = 200, csp: str = _PLAIN_CSP
) -> web.Response:
    html = request.app[templates_key].get_template(template).render(**context)
    headers = {**_BASE_HEADERS, "Content-Security-Policy": csp}
    return web.Response(text=html, status=status, content_type="text/html", headers=headers)


def _message(
    request: web.Request, status: int, heading: str, message: str, txn: Transaction | None = None
) -> web.Response:
    return_url = txn.return_url if txn is not None else None
    context = {"heading": heading, "message": message, "return_url": return_url, "checkout_url": None}
    return render(request, "stripe_message.html", context, status=status)


_PATH_PART = re.compile(r"[A-Za-z0-9_-]{1,128}")


async def find_payment(request: web.Request) -> tuple[Transaction, StripeAdapter] | web.Response:
    """The Stripe transaction the link names (``{transaction_id}/{token}``) and its account's adapter,
    whatever its status; else the 404 page (unknown id, another provider's, or a wrong token)."""
    app = request.app
    txn_id, token = request.match_info["transaction_id"], request.match_info["token"]
    if not (_PATH_PART.fullmatch(txn_id) and _PATH_PART.fullmatch(token)):
        # Our ids and tokens are short url-safe ASCII; anything else (a NUL PostgreSQL refuses, a
        # megabyte) names no payment and is never sent to the database.
        return _message(request, 404, "Payment not found", "This payment link is not valid.")
    async with app[uow_factory_key]() as unit:
        txn = await transaction_snapshot(unit, txn_id)
    account = None
    if txn is not None and txn.provider == NAME and txn.account_id is not None:
        account = await app[account_copies_key].by_id(NAME, txn.account_id)
    if (
        txn is None
        or account is None
        or account.provider != NAME
        or not hmac.compare_digest(page_token(account.credentials["secret_key"], txn.id).encode(), token.encode())
    ):
        return _message(request, 404, "Payment not found", "This payment link is not valid.")
    return txn, app[stripe_webhooks_key].provider.bound(account)


async def _resolve(request: web.Request) -> tuple[Transaction, StripeAdapter] | web.Response:
    """``find_payment``, and only a payment still payable here: else a page saying it no longer is."""
    found = await find_payment(request)
    if isinstance(found, web.Response):
        return found
    txn, adapter = found
    if txn.status is not TransactionStatus.PENDING or txn.provider_reference is None:
        heading = "Payment completed" if txn.status is TransactionStatus.SUCCEEDED else "Payment closed"
        return _message(request, 200, heading, "This payment can no longer be paid here.", txn)
    if txn.provider_reference.startswith("cs_"):
        # A Checkout Session's payment is paid on Stripe's own page, not this one: its return page says
        # where it stands and links back to Stripe's page while the session is open.
        raise web.HTTPSeeOther(location=f"{request.path.rstrip('/')}/return", headers={"Cache-Control": "no-store"})
    return txn, adapter


async def pay_page(request: web.Request) -> web.Response:
    resolved = await _resolve(request)
    if isinstance(resolved, web.Response):
        return resolved
    txn, adapter = resolved
    assert txn.provider_reference is not None
    try:
        intent = await adapter.api.payment_intent(txn.provider_reference)
    except ProviderError as exc:
        log.warning("stripe payer page of %s: %s", txn.id, type(exc).__name__)
        return _message(request, 503, "Stripe is unavailable", "Try again in a moment.", txn)
    common: dict[str, object] = {
        "amount": format_amount(txn.amount, txn.currency),
        "currency": txn.currency,
        "description": txn.description,
    }
    if is_fake_stripe(adapter):
        # Only an error code of ours is shown back (the query string is the payer's to edit).
        error = request.query.get("error", "")
        shown = error if _ERROR_CODE.fullmatch(error) else None
        context = {**common, "intent_id": intent.get("id"), "intent_status": intent.get("status"), "error": shown}
        return render(request, "stripe_test_cards.html", context)
    publishable = adapter.account.settings.get("publishable_key")
    if not publishable:
        return _message(request, 503, "Payment page unavailable", "This shop cannot take card payments here yet.", txn)
    nonce = secrets.token_urlsafe(16)
    context = {
        **common,
        "nonce": nonce,
        "publishable_key": publishable,
        "client_secret": intent.get("client_secret") or "",
        "connected_account": adapter.account.settings.get("connected_account", ""),
        "return_url": txn.return_url or str(request.url),
    }
    return render(request, "stripe_elements.html", context, csp=_ELEMENTS_CSP.format(nonce=nonce))


async def pay_submit(request: web.Request) -> web.StreamResponse:
    resolved = await _resolve(request)
    if isinstance(resolved, web.Response):
        return resolved
    txn, adapter = resolved
    if not is_fake_stripe(adapter):
        return _message(request, 403, "Not a test payment", "Test cards work only against a fake Stripe.", txn)
    choice = str((await payer_form(request)).get("card", ""))
    if choice not in TEST_CARDS:
        return _message(request, 400, "Invalid choice", "Choose one of the buttons.", txn)
    assert txn.provider_reference is not None
    error = await _pay_with_test_card(adapter, txn.provider_reference, choice)
    if error is not None or txn.return_url is None:
        location = request.path + (f"?error={error}" if error else "")
        raise web.HTTPSeeOther(location=location, headers={"Cache-Control": "no-store"})
    raise web.HTTPSeeOther(location=txn.return_url, headers={"Cache-Control": "no-store"})


async def _pay_with_test_card(adapter: StripeAdapter, intent_id: str, choice: str) -> str | None:
    """Attach the card to the intent, then confirm it (two calls: localstripe cannot take the card at
    confirm time, §5a), then play the payer's 3-D Secure step. The error to show, if any."""
    api = adapter.api
    try:
        number = TEST_CARDS[choice]
        method = "pm_card_visa" if number is None else str((await api.create_card(number))["id"])
        await api.attach_payment_method(intent_id, method)
        intent = await api.confirm_payment_intent(intent_id)
        if choice == "3ds" and intent.get("status") == "requires_action":
            await api.authenticate(intent_id, str(intent.get("client_secret")), success=True)
    except ProviderRejectedError as exc:
        return exc.code  # the decline the payer sees; Stripe's webhook records it
    except ProviderError:
        return "stripe_unavailable"
    return None
