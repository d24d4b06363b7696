"""A fake Octo server, written from PROTOCOLS.md §3 (no real Octo runs offline): prepare_payment (and
its status call), set_accept and refund, with Octo's answers and refusals. Its state lives on its
application (``OctoBook``), so each instance is a shop's private Octo.

The payer's side is ``OctoBook.pay``: a payment the payer paid becomes ``succeeded`` (one-stage) or
``waiting_for_capture`` (two-stage). Next (issue 11): a payer page that calls it, and the notify_url
callback it sends."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

WRONG_SECRET = (2, "Wrong secret")
BAD_DATA = (1, "Data format error")
BAD_REFUND_AMOUNT = (3, "Wrong refund amount")


@dataclass
class OctoPayment:
    shop_id: int
    shop_transaction_id: str
    uuid: str
    total_sum: Decimal
    currency: str
    auto_capture: bool
    test: bool
    status: str = "created"
    refunds: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class OctoBook:
    """Every shop this fake knows (id → secret) and every payment made at it."""

    shops: dict[int, str]
    base_url: str = "http://127.0.0.1"
    payments: dict[tuple[int, str], OctoPayment] = field(default_factory=dict)

    def by_uuid(self, payment_uuid: str) -> OctoPayment | None:
        return next((p for p in self.payments.values() if p.uuid == payment_uuid), None)

    def pay(self, payment_uuid: str) -> OctoPayment:
        """The payer paid: one-stage → succeeded, two-stage → waiting for the shop's decision."""
        payment = self.by_uuid(payment_uuid)
        if payment is None or payment.status not in ("created", "wait_user_action"):
            raise ValueError("no payment waiting for its payer")
        payment.status = "succeeded" if payment.auto_capture else "waiting_for_capture"
        return payment


book_key = web.AppKey("octo_book", OctoBook)


def _error(code_message: tuple[int, str]) -> web.Response:
    code, message = code_message
    return web.json_response({"error": code, "errMessage": message, "data": None})


def _state(payment: OctoPayment, book: OctoBook) -> web.Response:
    return web.json_response(
        {
            "error": 0,
            "data": {
                "shop_transaction_id": payment.shop_transaction_id,
                "octo_payment_UUID": payment.uuid,
                "status": payment.status,
                "octo_pay_url": f"{book.base_url}/pay/{payment.uuid}",
                "total_sum": float(payment.total_sum),
            },
        }
    )


async def _body(request: web.Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _shop(book: OctoBook, body: dict[str, Any]) -> int | None:
    shop_id, secret = body.get("octo_shop_id"), body.get("octo_secret")
    if isinstance(shop_id, int) and not isinstance(shop_id, bool) and book.shops.get(shop_id) == secret:
        return shop_id
    return None


async def _authenticated(request: web.Request, book: OctoBook) -> tuple[dict[str, Any], int] | web.Response:
    """The body and the shop it names with the right secret, or Octo's refusal (bad data, wrong secret)."""
    body = await _body(request)
    if body is None:
        return _error(BAD_DATA)
    shop_id = _shop(book, body)
    if shop_id is None:
        return _error(WRONG_SECRET)
    return body, shop_id


def _sum(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() and number > 0 else None


async def prepare_payment(request: web.Request) -> web.Response:
    book = request.app[book_key]
    checked = await _authenticated(request, book)
    if isinstance(checked, web.Response):
        return checked
    body, shop_id = checked
    txn = body.get("shop_transaction_id")
    if not isinstance(txn, str) or not txn:
        return _error(BAD_DATA)
    existing = book.payments.get((shop_id, txn))
    if set(body) == {"octo_shop_id", "octo_secret", "shop_transaction_id"}:  # the status call
        return _state(existing, book) if existing is not None else _error(BAD_DATA)
    if existing is not None:  # Octo drops a repeat of a shop_transaction_id: the same payment
        return _state(existing, book)
    total = _sum(body.get("total_sum"))
    auto_capture = body.get("auto_capture")
    if total is None or not isinstance(auto_capture, bool) or body.get("currency") not in ("UZS", "USD"):
        return _error(BAD_DATA)
    payment = OctoPayment(
        shop_id, txn, str(uuid.uuid4()), total, str(body["currency"]), auto_capture, body.get("test") is True
    )
    book.payments[(shop_id, txn)] = payment
    return _state(payment, book)


async def set_accept(request: web.Request) -> web.Response:
    book = request.app[book_key]
    checked = await _authenticated(request, book)
    if isinstance(checked, web.Response):
        return checked
    body, shop_id = checked
    payment = book.by_uuid(str(body.get("octo_payment_UUID")))
    accept = body.get("accept_status")
    if payment is None or payment.shop_id != shop_id or accept not in ("capture", "cancel"):
        return _error(BAD_DATA)
    if payment.status == "waiting_for_capture":
        payment.status = "succeeded" if accept == "capture" else "canceled"
    elif payment.status in ("created", "wait_user_action") and accept == "cancel":
        payment.status = "canceled"
    elif (payment.status, accept) not in (("succeeded", "capture"), ("canceled", "cancel")):
        return _error(BAD_DATA)  # a decision on a payment that is past deciding (a repeat of it is fine)
    return _state(payment, book)


async def refund(request: web.Request) -> web.Response:
    book = request.app[book_key]
    checked = await _authenticated(request, book)
    if isinstance(checked, web.Response):
        return checked
    body, shop_id = checked
    payment = book.by_uuid(str(body.get("octo_payment_UUID")))
    refund_id, amount = body.get("shop_refund_id"), _sum(body.get("amount"))
    if payment is None or payment.shop_id != shop_id or not isinstance(refund_id, str) or not refund_id:
        return _error(BAD_DATA)
    if refund_id not in payment.refunds:  # a repeat of a shop_refund_id is the same refund
        if amount is None or payment.status != "succeeded":
            return _error(BAD_REFUND_AMOUNT)
        if sum(payment.refunds.values(), Decimal(0)) + amount > payment.total_sum:
            return _error(BAD_REFUND_AMOUNT)
        payment.refunds[refund_id] = amount
    return web.json_response({"error": 0, "data": {"shop_refund_id": refund_id, "status": "succeeded"}})


def create_octo_app(book: OctoBook) -> web.Application:
    app = web.Application()
    app[book_key] = book
    app.router.add_post("/prepare_payment", prepare_payment)
    app.router.add_post("/set_accept", set_accept)
    app.router.add_post("/refund", refund)
    return app
