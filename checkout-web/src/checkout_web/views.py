"""Handlers of the payer's pages. Thin: check the token, call the gateway, render."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from billing_runtime.keys import request_id_key
from billing_runtime.problems import ProblemError

from checkout_web.gateway_client import (
    Checkout,
    CheckoutNotFound,
    CheckoutNotPayable,
    GatewayUnavailable,
    ProviderNotAllowed,
    UnexpectedGatewayResponse,
)
from checkout_web.keys import gateway_key
from checkout_web.money import format_amount
from checkout_web.pages import Link, message_page, render, safe_http_url
from checkout_web.statuses import copy_table, describe
from checkout_web.tokens import is_valid_provider_name, is_valid_token

PAYABLE = ("CREATED", "PROVIDER_PENDING")


def _token(request: web.Request) -> str:
    token = request.match_info["token"]
    if not is_valid_token(token):
        # Checked before any gateway call: only well-formed tokens are ever put into a gateway URL.
        raise web.HTTPNotFound
    return token


def _url(request: web.Request, route: str, token: str) -> str:
    return str(request.app.router[route].url_for(token=token))


async def _load(request: web.Request, token: str) -> Checkout:
    return await request.app[gateway_key].get_checkout(token, request_id=request.get(request_id_key))


def _summary(checkout: Checkout) -> dict[str, Any]:
    return {
        "merchant": checkout.merchant.display_name,
        "amount": format_amount(checkout.amount, checkout.currency, checkout.currency_exponent),
        "description": checkout.description,
        "order_id": checkout.order_id,
    }


def _return_link(checkout: Checkout) -> Link | None:
    href = safe_http_url(checkout.return_url)
    return Link(href, f"Return to {checkout.merchant.display_name}") if href else None


def _expires(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def _finished_page(request: web.Request, checkout: Checkout, *, status: int = 200) -> web.Response:
    copy = describe(checkout.status, checkout.merchant.display_name)
    return message_page(
        request,
        status=status,
        title=copy.title,
        message=copy.message,
        tone=copy.tone,
        link=_return_link(checkout),
        summary=_summary(checkout),
        detail=checkout.failure_message if checkout.status == "FAILED" else None,
        test_mode=checkout.test_mode,
    )


async def checkout_page(request: web.Request) -> web.Response:
    token = _token(request)
    checkout = await _load(request, token)
    if checkout.status not in PAYABLE:
        return _finished_page(request, checkout)
    context = {
        "summary": _summary(checkout),
        "providers": checkout.providers,
        "pending": checkout.status == "PROVIDER_PENDING",
        "pay_url": _url(request, "pay", token),
        "return_url": _url(request, "return_page", token),
        "expires": _expires(checkout.expires_at),
        "test_mode": checkout.test_mode,
        "failed": _failed_attempt(checkout),
    }
    return render(request, "pay.html", context)


def _failed_attempt(checkout: Checkout) -> dict[str, str | None] | None:
    """After a failed attempt the payment is payable again: which provider it was, and why."""
    if checkout.status != "CREATED" or checkout.failure_message is None:
        return None
    name = checkout.failed_provider
    return {"provider": name.capitalize() if name else None, "reason": checkout.failure_message}


async def pay(request: web.Request) -> web.Response:
    token = _token(request)
    form = await request.post()
    provider = form.get("provider")
    back = Link(_url(request, "checkout", token), "Back to payment options")
    if not isinstance(provider, str) or not is_valid_provider_name(provider):
        return message_page(
            request, status=400, title="Choose a payment method", message="Pick one of the options.", link=back
        )
    client = request.app[gateway_key]
    try:
        result = await client.pay(token, provider, request_id=request.get(request_id_key))
    except CheckoutNotPayable:
        checkout = await _load(request, token)
        if checkout.status not in PAYABLE:
            return _finished_page(request, checkout, status=409)
        return message_page(
            request,
            status=409,
            title="This payment can't be started right now",
            message="Please go back and try again.",
            link=back,
        )
    except ProviderNotAllowed:
        return message_page(
            request,
            status=422,
            title="This payment method is not available",
            message="Please choose another way to pay.",
            link=back,
        )
    redirect_url = safe_http_url(result.redirect_url)
    if redirect_url is None:
        raise UnexpectedGatewayResponse("redirect_url is not an absolute http(s) URL")
    raise web.HTTPSeeOther(redirect_url)


async def pay_again(request: web.Request) -> web.Response:
    """A GET of the pay URL (a reload, a copied link) goes back to the payment options."""
    raise web.HTTPSeeOther(_url(request, "checkout", _token(request)))


async def return_page(request: web.Request) -> web.Response:
    token = _token(request)
    checkout = await _load(request, token)
    merchant = checkout.merchant.display_name
    copy = describe(checkout.status, merchant)
    context = {
        "summary": _summary(checkout),
        "status": checkout.status,
        "copy": copy,
        # FAILED, or CREATED again after a failed attempt (the payer may choose another way to pay).
        "failure_message": checkout.failure_message if checkout.status in ("FAILED", "CREATED") else None,
        "return_link": _return_link(checkout),
        "checkout_url": _url(request, "checkout", token),
        "copy_table": copy_table(merchant),
        "test_mode": checkout.test_mode,
    }
    return render(request, "return.html", context)


async def status_json(request: web.Request) -> web.Response:
    """What the return page polls: only the status and the failure message, nothing else."""
    token = request.match_info["token"]
    if not is_valid_token(token):
        raise ProblemError(404, "not_found", "No such checkout")
    try:
        checkout = await _load(request, token)
    except CheckoutNotFound as exc:
        raise ProblemError(404, "not_found", "No such checkout") from exc
    except GatewayUnavailable as exc:
        raise ProblemError(
            503, "upstream_unavailable", "The payment service is unavailable", headers={"Retry-After": "2"}
        ) from exc
    except UnexpectedGatewayResponse as exc:
        raise ProblemError(502, "bad_gateway", "The payment service gave an unexpected answer") from exc
    body = {"status": checkout.status, "failure_message": checkout.failure_message}
    return web.json_response(body, headers={"Cache-Control": "no-store"})
