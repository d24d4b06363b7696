"""Octo's return page: ``GET /pay/octo/{ptx}``, where Octo sends the payer back after its pay page when
the payment came with no return URL of its own.

Octo requires a ``return_url`` on every payment (PROTOCOLS.md §3.2), and the notify URL (our callback
endpoint) is no page for a payer. Payme and Click, given none, keep the payer on their own result page;
Octo cannot, so the payer lands here and reads where the payment stands, as on our other payer pages
when a transaction has no return URL (the sandbox's, the simulators', Stripe's). Only the status is
shown; the unguessable transaction id is the link, as on the sandbox pages. It never decides anything:
Octo's callback and status call do."""

from __future__ import annotations

import re

from aiohttp import web

from providers_svc.adapters.octo import NAME
from providers_svc.db.repositories import transaction_snapshot
from providers_svc.domain.transactions import TransactionStatus
from providers_svc.keys import templates_key, uow_factory_key
from providers_svc.page_headers import PAYER_PAGE_HEADERS

_TRANSACTION_ID = re.compile(r"ptx_[a-z0-9]{1,64}")
_MESSAGES = {
    TransactionStatus.SUCCEEDED: ("Payment received", "Octo took the payment. You can close this page."),
    TransactionStatus.PENDING: (
        "Payment being confirmed",
        "Octo has not confirmed the payment to the shop yet. You can close this page: the shop is told when it does.",
    ),
    TransactionStatus.FAILED: ("Payment not completed", "Octo did not take the payment. Nothing was charged."),
    TransactionStatus.CANCELLED: ("Payment closed", "This payment was closed and can no longer be paid."),
}


async def return_page(request: web.Request) -> web.Response:
    txn_id = request.match_info["transaction_id"]
    txn = None
    if _TRANSACTION_ID.fullmatch(txn_id):  # anything else names nothing and never reaches the database
        async with request.app[uow_factory_key]() as unit:
            txn = await transaction_snapshot(unit, txn_id)
    if txn is None or txn.provider != NAME:
        return _render(request, 404, "Payment not found", "This payment link is not valid.")
    heading, message = _MESSAGES[txn.status]
    return _render(request, 200, heading, message)


def _render(request: web.Request, status: int, heading: str, message: str) -> web.Response:
    html = request.app[templates_key].get_template("octo_return.html").render(heading=heading, message=message)
    return web.Response(text=html, status=status, content_type="text/html", headers=PAYER_PAGE_HEADERS)
