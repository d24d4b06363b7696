"""The Octo simulator as mounted in providers-svc under ``/simulators/octo`` (the gateway relays it,
public): the fake Octo server's API (``simulators/octo``, state in ``octo_simulator_payments``) and
the payer page ``/pay/{uuid}`` its ``octo_pay_url`` points to.

The payer pays, pays but the notify is lost (``pay_lost``: nothing is posted to the shop), declines
(the card is declined), cancels (abandons Octo's page) or lets it time out (``timeout``: the pay page's
``ttl`` lapses; on a two-stage hold that the shop left undecided, the page offers only this, and the
hold lapses). The simulator compresses time: a timeout happens at once, not after the ttl or the hold's
days (PROTOCOLS.md §3.2, §3.3). Decline, cancel and timeout all end the payment ``canceled`` at Octo.
The fake then posts Octo's notify callback to ``POST /billing/octo``
through the gateway, signed with the simulator shop's secret. For a two-stage payment the answer's
``accept_status`` is applied, and the final status is notified as Octo would. Only test payments of
the simulator account are played: any other gets a 403 page and nothing happens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import jinja2
from aiohttp import web
from billing_contracts.envelope import utcnow

from providers_svc.adapters.octo import formula_of, signature_key_of
from providers_svc.api.forms import payer_form
from providers_svc.db.repositories import transaction_snapshot
from providers_svc.page_headers import PAYER_PAGE_HEADERS
from providers_svc.sandbox.pages import format_amount, new_templates
from providers_svc.services.account_copies import AccountCopies
from providers_svc.services.accounts import simulator_account
from providers_svc.services.uow import UowFactory
from providers_svc.simulators.octo import (
    NotPayable,
    OctoPayment,
    add_octo_routes,
    cancel,
    decide,
    decline,
    pay,
    store_key,
    time_out,
)
from providers_svc.simulators.octo_notify import Notifier, notify_body
from providers_svc.simulators.octo_store import DatabaseOctoStore

_CHOICES: dict[str, Callable[[OctoPayment], OctoPayment]] = {
    "pay": pay,
    "decline": decline,
    "cancel": cancel,
    "timeout": time_out,
    "pay_lost": pay,
}
# Pay, but Octo's notify never reaches the shop: the payment is paid at Octo (its status call says so)
# and pending with us until reconciliation's sync asks (docs/INTERNAL.md "Reconciliation").
_LOST = "pay_lost"


@dataclass(frozen=True)
class OctoSimulator:
    uow: UowFactory
    copies: AccountCopies
    notifier: Notifier
    templates: jinja2.Environment


simulator_key = web.AppKey("octo_simulator", OctoSimulator)


def _render(request: web.Request, template: str, status: int = 200, **context: object) -> web.Response:
    html = request.app[simulator_key].templates.get_template(template).render(**context)
    return web.Response(text=html, status=status, content_type="text/html", headers=PAYER_PAGE_HEADERS)


def _message(
    request: web.Request, status: int, heading: str, message: str, return_url: str | None = None
) -> web.Response:
    return _render(request, "octo_message.html", status, heading=heading, message=message, return_url=return_url)


async def _playable(request: web.Request) -> OctoPayment | web.Response:
    """The payment of the link, if the simulator may play it: a test transaction of ours that was
    started with the simulator account. Anything else: a page that says why, and nothing done."""
    sim = request.app[simulator_key]
    payment = await request.app[store_key].by_uuid(request.match_info["payment_uuid"])
    if payment is None:
        return _message(request, 404, "Payment not found", "This payment link is not valid.")
    async with sim.uow() as unit:
        txn = await transaction_snapshot(unit, payment.shop_transaction_id)
    account = await simulator_account(sim.copies, "octo")
    if txn is None or txn.livemode or txn.account_id != account.id or not payment.test:
        return _message(request, 403, "Not a simulator payment", "The Octo simulator plays test payments only.")
    return payment


async def pay_page(request: web.Request) -> web.Response:
    payment = await _playable(request)
    if isinstance(payment, web.Response):
        return payment
    # A hold the shop has not decided yet (a manual capture): all that can still happen here is its lapse.
    held = payment.status == "waiting_for_capture"
    if payment.status not in ("created", "wait_user_action") and not held:
        return _message(request, 200, "Payment closed", f"This payment is {payment.status}.", payment.return_url)
    return _render(
        request,
        "octo_pay.html",
        amount=format_amount(int(payment.total_sum * 100), payment.currency),
        currency=payment.currency,
        payment_uuid=payment.uuid,
        two_stage=not payment.auto_capture,
        held=held,
    )


async def pay_submit(request: web.Request) -> web.StreamResponse:
    form = await payer_form(request)
    choice = _CHOICES.get(str(form.get("outcome", "")))
    if choice is None:
        return _message(request, 400, "Invalid choice", "Choose one of the buttons.")
    payment = await _playable(request)
    if isinstance(payment, web.Response):
        return payment
    store = request.app[store_key]
    try:
        chosen = await store.change(payment.uuid, choice)
    except NotPayable:
        return _message(request, 409, "Payment closed", "This payment was already paid, declined or cancelled.")
    assert chosen is not None
    if form.get("outcome") != _LOST:
        await _notify(request, chosen)
    if payment.return_url is None:
        return _message(request, 200, "Done", "Octo recorded your choice. You can close this page.")
    raise web.HTTPSeeOther(location=payment.return_url, headers={"Cache-Control": "no-store"})


async def _notify(request: web.Request, payment: OctoPayment) -> None:
    """Octo's callback for the payer's choice; for a hold, the shop's decision, then its callback."""
    sim = request.app[simulator_key]
    account = await simulator_account(sim.copies, "octo")
    secret, formula = signature_key_of(account), formula_of(account)
    answer = await sim.notifier.send(notify_body(payment, secret=secret, formula=formula, now=utcnow()))
    if payment.status != "waiting_for_capture" or answer not in ("capture", "cancel"):
        return
    store = request.app[store_key]
    await store.change(payment.uuid, decide(str(answer)))
    decided = await store.by_uuid(payment.uuid)
    assert decided is not None
    await sim.notifier.send(notify_body(decided, secret=secret, formula=formula, now=utcnow()))


def octo_simulator_app(
    uow: UowFactory,
    copies: AccountCopies,
    http: Callable[[], aiohttp.ClientSession],
    *,
    base_url: str,
    notify_url: str,
) -> web.Application:
    """The sub-application mounted at ``/simulators/octo``; ``base_url`` is its public address."""
    app = web.Application()
    app[store_key] = DatabaseOctoStore(uow, copies, base_url)
    app[simulator_key] = OctoSimulator(
        uow,
        copies,
        Notifier(http, notify_url),
        new_templates(),
    )
    add_octo_routes(app)
    app.router.add_get("/pay/{payment_uuid}", pay_page)
    app.router.add_post("/pay/{payment_uuid}", pay_submit)
    return app
