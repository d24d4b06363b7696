"""The Payme simulator's payer page: ``GET /simulators/payme/pay/{ptx}`` shows the payment and the outcomes a
payer can choose; ``POST`` plays Payme's calls for that outcome against our real endpoint
(``simulators.payme.PaymeScript``), then sends the browser back to the shop (303).

Only a test transaction started with the Payme simulator account is played (403 otherwise): the simulator
never speaks for a live payment nor for a real Payme account. Every value reaches the HTML through Jinja2
autoescaping; the simulator's key never reaches a page or a log line."""

from __future__ import annotations

import json
import logging

from aiohttp import web
from billing_contracts.envelope import utcnow

from providers_svc.api.forms import payer_form
from providers_svc.domain.accounts import BoundAccount
from providers_svc.domain.transactions import Transaction, TransactionStatus
from providers_svc.keys import account_copies_key, http_client_key, settings_key, templates_key, uow_factory_key
from providers_svc.page_headers import PAYER_PAGE_HEADERS
from providers_svc.protocols.payme.amounts import to_tiyin
from providers_svc.sandbox.pages import format_amount
from providers_svc.services.accounts import simulator_account
from providers_svc.simulators.payme import PayerChoice, PaymeScript, PaymeScriptError

log = logging.getLogger(__name__)

PROVIDER = "payme"


_CLOSED = {
    TransactionStatus.SUCCEEDED: ("Payment completed", "This payment has already been completed."),
    TransactionStatus.FAILED: ("Payment failed", "This payment has failed."),
    TransactionStatus.CANCELLED: ("Payment cancelled", "This payment was cancelled. Nothing was charged."),
}


def _render(request: web.Request, template: str, status: int = 200, **context: object) -> web.Response:
    html = request.app[templates_key].get_template(f"payme/{template}").render(**context)
    return web.Response(text=html, status=status, content_type="text/html", headers=PAYER_PAGE_HEADERS)


def _message(
    request: web.Request,
    heading: str,
    message: str,
    status: int = 200,
    *,
    return_url: str | None = None,
    detail: str = "",
) -> web.Response:
    return _render(
        request, "message.html", status, heading=heading, message=message, return_url=return_url, detail=detail
    )


async def _payable(request: web.Request) -> tuple[Transaction, BoundAccount] | web.Response:
    """The transaction of the page and the simulator account, or the page that says why it cannot be paid."""
    app = request.app
    async with app[uow_factory_key]() as unit:
        txn = await unit.transactions.get(request.match_info["transaction_id"])
    if txn is None or txn.provider != PROVIDER:
        return _message(request, "Payment not found", "This payment link is not valid.", 404)
    account = await simulator_account(app[account_copies_key], PROVIDER)
    if txn.livemode or txn.account_id != account.id:
        log.warning("payme simulator refused %s: not a test payment of the simulator account", txn.id)
        return _message(request, "Not a simulator payment", "The Payme simulator plays test payments only.", 403)
    closed = _CLOSED.get(txn.status)
    if closed is not None:
        return _message(request, *closed, return_url=txn.return_url)
    if txn.is_expired(utcnow()):
        return _message(request, "Payment expired", "This payment has expired. Start again from the shop.")
    return txn, account


async def pay_page(request: web.Request) -> web.Response:
    found = await _payable(request)
    if isinstance(found, web.Response):
        return found
    txn, _account = found
    return _render(
        request,
        "pay.html",
        amount=format_amount(txn.amount, txn.currency),
        description=txn.description,
        order_id=txn.order_id,
        transaction_id=txn.id,
    )


async def pay_submit(request: web.Request) -> web.StreamResponse:
    form = await payer_form(request)
    try:
        choice = PayerChoice(str(form.get("outcome", "")))
    except ValueError:
        return _message(request, "Invalid choice", "Choose one of the buttons.", 400)
    found = await _payable(request)
    if isinstance(found, web.Response):
        return found
    txn, account = found
    script = PaymeScript(
        http=request.app[http_client_key],
        url=request.app[settings_key].public_gateway_url.rstrip("/") + "/billing/payme",
        key=account.credentials["key"],
        account_field=account.settings["account_field"],
        payment_id=txn.payment_id,
        amount=to_tiyin(txn.amount, txn.currency),
    )
    try:
        await script.run(choice)
    except PaymeScriptError as exc:
        # Our endpoint broke Payme's protocol (or could not be reached): a real Payme would not go on.
        log.error("payme simulator, %s of %s: %s", choice.value, txn.id, exc)
        detail = "\n".join(
            (
                f"call: {exc.step.method} {json.dumps(exc.step.params, sort_keys=True)}",
                f"expected: {exc.expected}",
                f"answer: {exc.step.raw[:2000].decode('utf-8', 'replace')}",
            )
        )
        return _message(
            request, "Unexpected answer", "Payme would not accept the merchant's answer.", 502, detail=detail
        )
    log.info("payme simulator played %s for %s", choice.value, txn.id)
    if txn.return_url is None:
        return _message(request, "Done", "Payme made its calls. You can close this page.")
    raise web.HTTPSeeOther(location=txn.return_url, headers={"Cache-Control": "no-store"})
