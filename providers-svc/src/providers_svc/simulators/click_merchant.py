"""The Click simulator's Merchant API (PROTOCOLS.md §1.10) for the simulator account: payment status by
our id and by Click's payment number, and reversal, under ``/simulators/click/merchant``. Click's word
here is what our own endpoints recorded for the simulator account's attempts (``click_reservations``):
the simulator is Click, and Click knows what it confirmed; what it debited while the shop never heard
the Complete (``click_simulator_debits``); and what it reversed (``click_simulator_reversals``: a
reversed payment is reported so by the status call, and a second reversal of it is refused, as Click
does). The ``Auth`` header is checked as Click checks it."""

from __future__ import annotations

import hmac

from aiohttp import web

from providers_svc.db.click import lock_click_order, reservation_by_paydoc, reservations_of
from providers_svc.db.click_simulator import debited, reversal_of, reverse_once
from providers_svc.domain.refunds import SIMULATOR_OUTCOME_HEADER
from providers_svc.keys import account_copies_key, uow_factory_key
from providers_svc.protocols.click.merchant_api import auth_header
from providers_svc.protocols.click.records import PrepareState
from providers_svc.services.accounts import simulator_account
from providers_svc.services.click_accounts import click_credentials

PROVIDER = "click"
BASE = "/simulators/click/merchant"
# Merchant API payment_status values the simulator reports (2: paid, 1: processing, -9: cancelled).
PAID = 2
_STATUS = {PrepareState.CONFIRMED: PAID, PrepareState.PREPARED: 1, PrepareState.CANCELLED: -9}
# The simulator's refusal of a reversal (the test-mode rule's ``sandbox:fail``), as Click refuses a
# card it cannot reverse; the code is the simulator's own (Click documents none for it).
REVERSAL_REFUSED = -5019
# A reversed payment, as the payment status call reports it: a negative status, like every payment
# Click no longer counts as paid (the value is the simulator's own; our adapter reads any negative
# status of a payment Click had confirmed as reversed).
REVERSED = -99


def _error(status: int, code: int, note: str) -> web.Response:
    return web.json_response({"error_code": code, "error_note": note}, status=status)


async def _authorized(request: web.Request) -> str | web.Response:
    """The simulator account's id when the Auth header and service_id are its own, else Click's refusal."""
    account = await simulator_account(request.app[account_copies_key], PROVIDER)
    credentials = click_credentials(account)
    given = request.headers.get("Auth", "")
    parts = given.split(":")
    if credentials is None or len(parts) != 3 or not parts[2].isdigit() or len(parts[2]) != 10:
        return _error(401, -1, "Authorization failed")
    expected = auth_header(credentials, int(parts[2]))
    if not hmac.compare_digest(expected.encode(), given.encode()):
        return _error(401, -1, "Authorization failed")
    if request.match_info["service_id"] != str(credentials.service_id):
        return _error(403, -2, "Service not allowed")
    return account.id


async def status_by_mti(request: web.Request) -> web.Response:
    account_id = await _authorized(request)
    if isinstance(account_id, web.Response):
        return account_id
    async with request.app[uow_factory_key]() as uow:
        txn = await lock_click_order(uow.session, request.match_info["merchant_trans_id"][:64], lock=False)
        attempts = await reservations_of(uow.session, txn.id) if txn is not None else []
        lost = await debited(uow.session, [view.click_trans_id for view, _ in attempts])
        # The paid attempt if any (confirmed with us, or debited with its Complete lost), else the latest.
        paid = next((a for a in attempts if a[0].state is PrepareState.CONFIRMED or a[0].click_trans_id in lost), None)
        reversed_ = paid is not None and await reversal_of(uow.session, paid[1]) == "reversed"
    if txn is None or txn.account_id != account_id or not attempts:
        return _error(404, -16, "Payment not found")
    if paid is not None:
        status = REVERSED if reversed_ else PAID
        return web.json_response({"error_code": 0, "payment_id": paid[1], "payment_status": status})
    shown, paydoc = attempts[-1]
    return web.json_response({"error_code": 0, "payment_id": paydoc, "payment_status": _STATUS[shown.state]})


async def reversal(request: web.Request) -> web.Response:
    account_id = await _authorized(request)
    if isinstance(account_id, web.Response):
        return account_id
    raw = request.match_info["payment_id"]
    if not raw.isdigit() or len(raw) > 18:
        return _error(400, -8, "Bad payment_id")
    async with request.app[uow_factory_key]() as uow:
        found = await reservation_by_paydoc(uow.session, int(raw))
    if found is None or found[1] != account_id:
        return _error(404, -16, "Payment not found")
    if found[0].state is not PrepareState.CONFIRMED:
        return _error(406, -17, "Payment is not successful, cannot be reversed")
    # Our adapter asks the simulator (never the real Click) for a refused reversal with this header.
    wanted = "refused" if request.headers.get(SIMULATOR_OUTCOME_HEADER) == "fail" else "reversed"
    async with request.app[uow_factory_key]() as uow:
        outcome, made = await reverse_once(uow.session, int(raw), wanted)
        await uow.commit()
    if outcome == "refused":
        return _error(406, REVERSAL_REFUSED, "Reversal refused: the card's bank does not accept it")
    if not made:
        # Click reverses a payment once: a repeat (say, after an answer that was lost) is refused, and
        # only the payment's status tells that the first one was made.
        return _error(406, -17, "Payment is not successful, cannot be reversed")
    return web.json_response({"error_code": 0, "payment_id": int(raw)})


async def payment_status(request: web.Request) -> web.Response:
    """Click's word on its payment number: paid (2), or reversed (``REVERSED``) once a reversal was made."""
    account_id = await _authorized(request)
    if isinstance(account_id, web.Response):
        return account_id
    raw = request.match_info["payment_id"]
    if not raw.isdigit() or len(raw) > 18:
        return _error(400, -8, "Bad payment_id")
    async with request.app[uow_factory_key]() as uow:
        found = await reservation_by_paydoc(uow.session, int(raw))
        reversed_ = await reversal_of(uow.session, int(raw)) == "reversed"
    if found is None or found[1] != account_id:
        return _error(404, -16, "Payment not found")
    status = REVERSED if reversed_ else _STATUS[found[0].state]
    return web.json_response({"error_code": 0, "payment_id": int(raw), "payment_status": status})


def add_routes(app: web.Application) -> None:
    app.router.add_get(BASE + "/payment/status_by_mti/{service_id}/{merchant_trans_id}/{day}", status_by_mti)
    app.router.add_get(BASE + "/payment/status/{service_id}/{payment_id}", payment_status)
    app.router.add_delete(BASE + "/payment/reversal/{service_id}/{payment_id}", reversal)
