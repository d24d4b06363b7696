"""Payments: the list (filters, cursor paging), one payment with its history, attempts, refunds and
webhooks, and the refund, capture and cancel actions."""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any

from aiohttp import web

from checkout_web.dashboard import rendering
from checkout_web.dashboard.api import ApiProblem
from checkout_web.dashboard.common import (
    CODE,
    PRINTABLE,
    api_call,
    cursor_links,
    cursor_query,
    notices,
    path_id,
    redirect,
)
from checkout_web.dashboard.guard import field, posted_form, require_session
from checkout_web.dashboard.sections import Section, load

STATUSES = (
    "CREATED",
    "PROVIDER_PENDING",
    "AUTHORIZED",
    "SUCCEEDED",
    "FAILED",
    "EXPIRED",
    "CANCELLED",
    "PARTIALLY_REFUNDED",
    "REFUNDED",
)
REFUNDABLE = ("SUCCEEDED", "PARTIALLY_REFUNDED")
# An AUTHORIZED payment's cancel releases its hold (manual capture).
CANCELLABLE = ("CREATED", "PROVIDER_PENDING", "AUTHORIZED")
# Manual capture: what the provider holds waits for the tenant to take it (or release it by cancelling).
CAPTURABLE = ("AUTHORIZED",)
# Webhooks shown for a payment: the deliveries of its most recent events (a gateway call each, within
# the tenant's rate limit even on quick reloads).
EVENTS_WITH_WEBHOOKS = 10
REFUND_REASON = re.compile(r"^[^\x00-\x1f\x7f]{1,500}$")


async def list_payments(request: web.Request) -> web.Response:
    await require_session(request)
    status = request.query.get("status", "")
    order_id = request.query.get("order_id", "").strip()
    filters = {"status": status, "order_id": order_id}
    cursor, error = cursor_query(request)
    if status and status not in STATUSES:
        error = "Choose a status from the list."
    if order_id and not PRINTABLE.fullmatch(order_id):
        error = "An order id is 1 to 128 printable characters."
    context: dict[str, Any] = {"title": "Payments", "statuses": STATUSES, "filters": filters, **notices(request)}
    if error is not None:
        return rendering.render(
            request,
            "dashboard/payments.html",
            {**context, "error": error, "payments": None},
            status=400,
            section="payments",
        )
    answer = await api_call(request, "GET", "v1/payments", query={**filters, **cursor, "limit": "20"})
    data = [d for d in answer.body.get("data", []) if isinstance(d, dict)]
    links = cursor_links(
        "/dashboard/payments",
        filters,
        data,
        has_more=bool(answer.body.get("has_more")),
        came_back="ending_before" in cursor,
        came_forward="starting_after" in cursor,
    )
    return rendering.render(
        request, "dashboard/payments.html", {**context, "payments": data, "links": links}, section="payments"
    )


async def _deliveries_of(request: web.Request, events: Section) -> Section:
    """The webhooks sent about the payment: the deliveries of each of its (latest) events."""
    if not events.ok:
        return Section(events.state)
    recent = events.items[-EVENTS_WITH_WEBHOOKS:]
    sections = await asyncio.gather(
        *(
            load(api_call(request, "GET", "v1/webhook-deliveries", query={"event_id": str(e["id"]), "limit": "100"}))
            for e in recent
        )
    )
    failed = next((s for s in sections if not s.ok), None)
    if failed is not None:
        return Section(failed.state)
    rows = [row for s in sections for row in s.items]
    rows.sort(key=lambda d: str(d.get("created_at", "")), reverse=True)
    return Section("ok", rows)


async def show_payment(request: web.Request) -> web.Response:
    payment_id = path_id(request, "payment_id", "pay")
    await require_session(request)
    payment_call = api_call(request, "GET", f"v1/payments/{payment_id}")
    attempts_call = load(api_call(request, "GET", f"v1/payments/{payment_id}/attempts"), missing_is_unavailable=True)
    refunds_call = load(api_call(request, "GET", f"v1/payments/{payment_id}/refunds"))
    events_call = load(api_call(request, "GET", "v1/events", query={"payment_id": payment_id, "limit": "100"}))
    payment_answer, attempts, refunds, events = await asyncio.gather(
        payment_call, attempts_call, refunds_call, events_call
    )
    payment = payment_answer.body
    webhooks = await _deliveries_of(request, events)
    context = {
        "title": f"Payment {payment_id}",
        "payment": payment,
        "attempts": attempts,
        "refunds": refunds,
        "events": events,
        "webhooks": webhooks,
        "refundable": payment.get("status") in REFUNDABLE,
        "cancellable": payment.get("status") in CANCELLABLE,
        "capturable": payment.get("status") in CAPTURABLE,
        # A fresh key per rendered form: a double submit of this form replays the first refund (or capture).
        "idempotency_key": "dash-refund-" + secrets.token_urlsafe(18),
        "capture_key": "dash-capture-" + secrets.token_urlsafe(18),
        **notices(request),
    }
    return rendering.render(request, "dashboard/payment.html", context, section="payments")


async def refund(request: web.Request) -> web.Response:
    payment_id = path_id(request, "payment_id", "pay")
    _, form = await posted_form(request)
    page = f"/dashboard/payments/{payment_id}"
    key = field(form, "idempotency_key")
    amount_text = field(form, "amount")
    reason = field(form, "reason")
    body: dict[str, Any] = {}
    if amount_text:
        if not amount_text.isdigit() or not 0 < int(amount_text) < 10**15:
            return redirect(f"{page}?error=bad_form")
        body["amount"] = int(amount_text)
    if reason:
        if not REFUND_REASON.fullmatch(reason):
            return redirect(f"{page}?error=bad_form")
        body["reason"] = reason
    if not key.startswith("dash-refund-") or not PRINTABLE.fullmatch(key):
        return redirect(f"{page}?error=bad_form")
    try:
        await api_call(
            request, "POST", f"v1/payments/{payment_id}/refunds", json=body, headers={"Idempotency-Key": key}
        )
    except ApiProblem as exc:
        if exc.status == 404:
            raise
        return redirect(f"{page}?error={exc.code if CODE.fullmatch(exc.code) else 'refused'}")
    return redirect(f"{page}?notice=refund_created")


async def capture(request: web.Request) -> web.Response:
    """Take all or part of what an AUTHORIZED payment holds (the rest is released)."""
    payment_id = path_id(request, "payment_id", "pay")
    _, form = await posted_form(request)
    page = f"/dashboard/payments/{payment_id}"
    key = field(form, "idempotency_key")
    amount_text = field(form, "amount")
    body: dict[str, Any] = {}
    if amount_text:
        if not amount_text.isdigit() or not 0 < int(amount_text) < 10**15:
            return redirect(f"{page}?error=bad_form")
        body["amount"] = int(amount_text)
    if not key.startswith("dash-capture-") or not PRINTABLE.fullmatch(key):
        return redirect(f"{page}?error=bad_form")
    try:
        await api_call(
            request, "POST", f"v1/payments/{payment_id}/capture", json=body, headers={"Idempotency-Key": key}
        )
    except ApiProblem as exc:
        if exc.status == 404:
            raise
        return redirect(f"{page}?error={exc.code if CODE.fullmatch(exc.code) else 'refused'}")
    return redirect(f"{page}?notice=captured")


async def cancel(request: web.Request) -> web.Response:
    payment_id = path_id(request, "payment_id", "pay")
    await posted_form(request)
    page = f"/dashboard/payments/{payment_id}"
    try:
        await api_call(request, "POST", f"v1/payments/{payment_id}/cancel")
    except ApiProblem as exc:
        if exc.status == 404:
            raise
        return redirect(f"{page}?error={exc.code if CODE.fullmatch(exc.code) else 'refused'}")
    return redirect(f"{page}?notice=cancelled")
