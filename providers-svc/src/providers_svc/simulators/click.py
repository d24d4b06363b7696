"""The Click simulator's payer page (``/simulators/click/pay/{ptx}``): a test payment paid through Click's
simulator account is shown with its amount; the payer's choice is played as Click plays it, against our
real endpoints through the gateway (``simulators/click_caller.py``), then the browser goes back to the
shop. The choices: pay, pay with Complete lost, decline, cancel, timeout (the payer never completes and
Click cancels the attempt once its time is up; compressed: the cancelling Complete follows at once),
and a forged Prepare. Public and unauthenticated like the sandbox page: the unguessable transaction id is the link.

Only a test transaction bound to the simulator account is served: anything else gets a 403 page and no
call at all (the simulator signs with the simulator account's key, which must never pay a live order)."""

from __future__ import annotations

import logging

import jinja2
from aiohttp import web
from billing_contracts.envelope import utcnow

from providers_svc.api.forms import payer_form
from providers_svc.db.click_simulator import record_debit
from providers_svc.domain.transactions import Transaction, TransactionStatus
from providers_svc.keys import account_copies_key, http_client_key, settings_key, uow_factory_key
from providers_svc.page_headers import PAYER_PAGE_HEADERS
from providers_svc.protocols.click.amounts import format_som
from providers_svc.sandbox.pages import new_templates
from providers_svc.services.accounts import simulator_account
from providers_svc.services.click_accounts import click_credentials
from providers_svc.simulators import click_merchant
from providers_svc.simulators.click_caller import ClickCaller, Scenario, UnexpectedAnswer

log = logging.getLogger(__name__)

PROVIDER = "click"
SIMULATOR_ACCOUNT = f"pac_simulator_{PROVIDER}"
templates_key = web.AppKey("click_simulator_templates", jinja2.Environment)


def _render(request: web.Request, template: str, status: int = 200, **context: object) -> web.Response:
    html = request.app[templates_key].get_template(template).render(**context)
    return web.Response(text=html, status=status, content_type="text/html", headers=PAYER_PAGE_HEADERS)


def _message(request: web.Request, status: int, heading: str, message: str, txn: Transaction | None) -> web.Response:
    return_url = txn.return_url if txn is not None else None
    return _render(request, "click_message.html", status, heading=heading, message=message, return_url=return_url)


async def _payable(request: web.Request) -> Transaction | web.Response:
    """The transaction the page is for, or the page that says why it cannot be paid here."""
    async with request.app[uow_factory_key]() as uow:
        txn = await uow.transactions.get(request.match_info["transaction_id"])
    if txn is None or txn.provider != PROVIDER:
        return _message(request, 404, "Payment not found", "This payment link is not valid.", None)
    if txn.livemode or txn.account_id != SIMULATOR_ACCOUNT:
        return _message(
            request,
            403,
            "Not a simulator payment",
            "The Click simulator pays test payments only. Nothing was charged.",
            txn,
        )
    if txn.status is TransactionStatus.SUCCEEDED:
        return _message(request, 200, "Payment completed", "This payment has already been completed.", txn)
    if txn.status is not TransactionStatus.PENDING or txn.is_expired(utcnow()):
        return _message(request, 200, "Payment closed", "This payment was cancelled or has expired.", txn)
    return txn


async def pay_page(request: web.Request) -> web.Response:
    txn = await _payable(request)
    if isinstance(txn, web.Response):
        return txn
    return _render(
        request,
        "click_pay.html",
        amount=format_som(txn.amount),
        description=txn.description,
        transaction_id=txn.id,
    )


async def pay_submit(request: web.Request) -> web.StreamResponse:
    form = await payer_form(request)
    try:
        scenario = Scenario(str(form.get("outcome", "")))
    except ValueError:
        return _message(request, 400, "Invalid choice", "Choose one of the buttons.", None)
    txn = await _payable(request)
    if isinstance(txn, web.Response):
        return txn
    account = await simulator_account(request.app[account_copies_key], PROVIDER)
    credentials = click_credentials(account)
    assert credentials is not None, "the simulator's own credentials are numeric"
    caller = ClickCaller(
        lambda: request.app[http_client_key], request.app[settings_key].public_gateway_url, credentials, utcnow
    )
    try:
        attempt = await caller.play(scenario, merchant_trans_id=txn.payment_id, amount=txn.amount)
    except UnexpectedAnswer as exc:
        log.error("click simulator: %s of %s got an answer Click would not accept: %s", scenario, txn.id, exc)
        return _message(
            request,
            502,
            "Click could not complete the payment",
            f"The shop answered the {exc.step} step unexpectedly ({exc.answer}).",
            txn,
        )
    if scenario is Scenario.PAY_LOST:
        # Click took the money; only its Merchant API knows (simulators/click_merchant.py).
        async with request.app[uow_factory_key]() as uow:
            await record_debit(uow.session, attempt, utcnow())
            await uow.commit()
    if txn.return_url is None:
        return _message(request, 200, "Done", "Click sent the payment to the shop. You can close this page.", None)
    raise web.HTTPSeeOther(location=txn.return_url, headers={"Cache-Control": "no-store"})


def add_click_simulator_routes(app: web.Application) -> None:
    app[templates_key] = new_templates()
    app.router.add_get("/simulators/click/pay/{transaction_id}", pay_page)
    app.router.add_post("/simulators/click/pay/{transaction_id}", pay_submit)
    click_merchant.add_routes(app)
