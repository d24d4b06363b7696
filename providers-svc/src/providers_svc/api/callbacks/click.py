"""``POST /billing/click/prepare`` and ``/billing/click/complete``: Click's SHOP API (PROTOCOLS.md §1).

Always HTTP 200 with Click's JSON answer, bad input included (Click reads ``error``, not the status):
a body that is not a form is answered -8 like a form missing its fields. Both paths take both actions.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from aiohttp import web

from providers_svc.keys import account_copies_key, metrics_key, uow_factory_key
from providers_svc.protocols.click.answers import ClickError, ErrorAnswer, error_answer
from providers_svc.services.click import ClickCallbacks, ClickReply
from providers_svc.services.click_accounts import ClickAccounts

log = logging.getLogger(__name__)

NAME = "click"
callbacks_key = web.AppKey("click_callbacks", ClickCallbacks)
# Click's form has ten fields; anything much bigger is not Click.
_MAX_BODY = 16 * 1024
_MAX_FIELDS = 64
_FORM = "application/x-www-form-urlencoded"


def _form(raw: bytes) -> dict[str, str] | None:
    """The posted fields, or None when the body is not one url-encoded form of unique UTF-8 fields."""
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, errors="strict", max_num_fields=_MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return None
    form = dict(pairs)
    # A repeated field is ambiguous (which value did Click sign?): not a form of Click's.
    return form if len(form) == len(pairs) else None


async def _reply(request: web.Request) -> ClickReply:
    if request.content_length is not None and request.content_length > _MAX_BODY:
        return ClickReply(_bad_form(), rejected="bad_form")
    try:
        # Whole (a chunked body arrives in pieces), bounded by the app's client_max_size.
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return ClickReply(_bad_form(), rejected="bad_form")
    # NUL never appears in a url-encoded form, and PostgreSQL would refuse it in the stored body.
    ok = len(raw) <= _MAX_BODY and request.content_type == _FORM and b"\x00" not in raw
    form = _form(raw) if ok else None
    if form is None:
        return ClickReply(_bad_form(), rejected="bad_form")
    return await request.app[callbacks_key].handle(form, raw.decode("ascii"))


def _bad_form() -> ErrorAnswer:
    return error_answer(ClickError.BAD_REQUEST, click_trans_id=None, merchant_trans_id=None)


async def click_callback(request: web.Request) -> web.Response:
    reply = await _reply(request)
    metrics = request.app[metrics_key]
    if reply.rejected is not None:
        metrics.callbacks_rejected.labels(NAME, reply.rejected).inc()
    elif reply.result is not None:
        metrics.callbacks_received.labels(NAME, reply.result).inc()
    if reply.anomaly is not None:
        metrics.anomalies.labels(NAME, reply.anomaly).inc()
    return web.json_response(reply.answer)


def add_click_callback_routes(app: web.Application) -> None:
    app[callbacks_key] = ClickCallbacks(app[uow_factory_key], ClickAccounts(app[account_copies_key]))
    app.router.add_post("/billing/click/prepare", click_callback)
    app.router.add_post("/billing/click/complete", click_callback)
