"""The sandbox payer page: ``GET /sandbox/pay/{ptx}`` shows the payment, ``POST`` records the payer's choice
and sends the browser back to the shop. Every value reaches the HTML through Jinja2 autoescaping."""

from __future__ import annotations

import jinja2
from aiohttp import web

from providers_svc.api.forms import payer_form
from providers_svc.keys import bank_key, templates_key
from providers_svc.page_headers import PAYER_PAGE_HEADERS
from providers_svc.sandbox.bank import PageState, PageView, PayerChoice

# Minor-unit exponents that differ from the usual 2 (ISO 4217); only used to display the amount.
_EXPONENTS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX"), 0),
    **dict.fromkeys(("VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}

_MESSAGES = {
    PageState.UNKNOWN: ("Payment not found", "This payment link is not valid."),
    PageState.EXPIRED: ("Payment expired", "This payment has expired. Start again from the shop."),
    PageState.CANCELLED: ("Payment cancelled", "This payment was cancelled. Nothing was charged."),
    PageState.PAID: ("Payment completed", "This payment has already been completed."),
    PageState.PROCESSING: ("Payment processing", "This payment is being processed by the bank."),
    PageState.DECLINED: ("Payment declined", "The bank declined this payment."),
    PageState.LIVE: ("Not a test payment", "The sandbox takes test payments only. Nothing was charged."),
}

# Answers other than 200 for a page that cannot be paid.
_STATUS = {PageState.UNKNOWN: 404, PageState.LIVE: 403}


def new_templates() -> jinja2.Environment:
    """The payer pages of the sandbox and of the simulators: one ``base.html``, themed per page family."""
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                jinja2.PackageLoader("providers_svc", "sandbox/templates"),
                jinja2.PackageLoader("providers_svc", "simulators/templates"),
                jinja2.PackageLoader("providers_svc", "api/templates"),
            ]
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def format_amount(amount: int, currency: str) -> str:
    exponent = _EXPONENTS.get(currency, 2)
    if exponent == 0:
        return f"{amount:,}"
    units, minor = divmod(amount, 10**exponent)
    return f"{units:,}.{minor:0{exponent}d}"


def _render(request: web.Request, template: str, status: int = 200, **context: object) -> web.Response:
    html = request.app[templates_key].get_template(template).render(**context)
    return web.Response(text=html, status=status, content_type="text/html", headers=PAYER_PAGE_HEADERS)


def _message(request: web.Request, view: PageView, status: int = 200) -> web.Response:
    heading, message = _MESSAGES[view.state]
    return_url = view.transaction.return_url if view.transaction is not None else None
    return _render(request, "message.html", status, heading=heading, message=message, return_url=return_url)


async def pay_page(request: web.Request) -> web.Response:
    view = await request.app[bank_key].view(request.match_info["transaction_id"])
    if view.state is not PageState.PAYABLE:
        return _message(request, view, _STATUS.get(view.state, 200))
    txn = view.transaction
    assert txn is not None
    return _render(
        request,
        "pay.html",
        amount=format_amount(txn.amount, txn.currency),
        currency=txn.currency,
        description=txn.description,
        order_id=txn.order_id,
        transaction_id=txn.id,
    )


async def pay_submit(request: web.Request) -> web.StreamResponse:
    form = await payer_form(request)
    try:
        choice = PayerChoice(str(form.get("outcome", "")))
    except ValueError:
        return _render(
            request,
            "message.html",
            400,
            heading="Invalid choice",
            message="Choose one of the buttons.",
            return_url=None,
        )
    recorded, view = await request.app[bank_key].decide(request.match_info["transaction_id"], choice)
    if not recorded:
        return _message(request, view, _STATUS.get(view.state, 200))
    assert view.transaction is not None
    if view.transaction.return_url is None:
        return _render(
            request,
            "message.html",
            heading="Choice recorded",
            message="The bank recorded your choice. You can close this page.",
            return_url=None,
        )
    raise web.HTTPSeeOther(location=view.transaction.return_url, headers={"Cache-Control": "no-store"})
