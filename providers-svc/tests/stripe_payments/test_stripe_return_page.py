"""A Checkout Session of a payment without a return URL sends the payer back (``success_url`` and
``cancel_url``) to our return page, which says where the payment stands and decides nothing: only the
webhook does. Against a small fake of Stripe's Checkout Session API on loopback (localstripe has none)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from .conftest import TENANT, ShopFactory, StripeShop, stripe_event
from .helpers import transaction

pytestmark = pytest.mark.postgres

GATEWAY = "http://127.0.0.1:9"  # the tests' public_gateway_url


class FakeCheckout:
    """Stripe's ``POST /v1/checkout/sessions`` and its read; the sessions as created, by id."""

    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}
        self.down = False

    def app(self) -> web.Application:
        async def create(request: web.Request) -> web.Response:
            form = await request.post()
            session_id = f"cs_test_{secrets.token_hex(12)}"
            session = {
                "id": session_id,
                "object": "checkout.session",
                "status": "open",
                "payment_status": "unpaid",
                "url": f"https://checkout.stripe.com/c/pay/{session_id}",
                "client_reference_id": form["client_reference_id"],
                "success_url": form["success_url"],
                "cancel_url": form["cancel_url"],
                "amount_total": int(str(form["line_items[0][price_data][unit_amount]"])),
                "currency": form["line_items[0][price_data][currency]"],
                "payment_intent": None,
            }
            self.sessions[session_id] = session
            return web.json_response(session)

        async def read(request: web.Request) -> web.Response:
            if self.down:
                return web.json_response({"error": {"type": "api_error"}}, status=500)
            return web.json_response(self.sessions[request.match_info["id"]])

        app = web.Application()
        app.router.add_post("/v1/checkout/sessions", create)
        app.router.add_get("/v1/checkout/sessions/{id}", read)
        return app


Checkout = tuple[StripeShop, FakeCheckout]


@pytest.fixture
async def checkout(aiohttp_server: Callable[..., Awaitable[TestServer]], stripe_shop_factory: ShopFactory) -> Checkout:
    """A shop whose Stripe account (the one its tenant pays with) is at the fake."""
    fake = FakeCheckout()
    server = await aiohttp_server(fake.app(), host="127.0.0.1")
    base = str(server.make_url("")).rstrip("/")
    shop = await stripe_shop_factory(api_base=base, flow="checkout_session")
    return shop, fake


async def _page(shop: StripeShop, url: str) -> tuple[int, str, Any]:
    assert url.startswith(GATEWAY + "/pay/stripe/"), url
    resp = await shop.client.get(url.removeprefix(GATEWAY), allow_redirects=False)
    return resp.status, await resp.text(), resp.headers


class TestWithoutAReturnUrl:
    async def test_stripe_sends_the_payer_back_to_our_page_paid_or_not(self, checkout: Checkout) -> None:
        shop, fake = checkout
        started = await shop.start(return_url=None)
        [session] = fake.sessions.values()
        assert started["redirect_url"] == session["url"]
        ptx = started["provider_transaction_id"]
        assert session["success_url"] == session["cancel_url"]
        assert session["success_url"].startswith(f"{GATEWAY}/pay/stripe/{ptx}/")
        status, html, headers = await _page(shop, session["success_url"])
        assert status == 200, html
        assert headers["Cache-Control"] == "no-store"
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["Referrer-Policy"] == "no-referrer"

    async def test_the_page_says_where_the_payment_stands(self, checkout: Checkout, db_read: Any) -> None:
        shop, fake = checkout
        started = await shop.start(return_url=None)
        [session] = fake.sessions.values()
        url = session["success_url"]
        # The payer left Stripe's page (cancel_url): not paid, and Stripe's page is still there.
        status, html, _ = await _page(shop, url)
        assert (status, "Payment not completed" in html, session["url"] in html) == (200, True, True)
        # Paid at Stripe, the webhook not here yet: being confirmed, and the page moved nothing.
        session.update(status="complete", payment_status="paid", payment_intent="pi_3ReturnPage01")
        status, html, _ = await _page(shop, url)
        assert (status, "Payment being confirmed" in html, session["url"] in html) == (200, True, False)
        assert (await transaction(db_read, started["provider_transaction_id"]))["status"] == "pending"
        # Stripe unavailable: the page still answers, with what we know.
        fake.down = True
        status, html, _ = await _page(shop, url)
        assert (status, "Payment being confirmed" in html) == (200, True)
        fake.down = False
        # The webhook decides; then the page says so.
        resp = await shop.send(stripe_event("checkout.session.completed", dict(session)))
        assert resp.status == 200, await resp.text()
        assert (await transaction(db_read, started["provider_transaction_id"]))["status"] == "succeeded"
        status, html, _ = await _page(shop, url)
        assert (status, "Payment received" in html) == (200, True)

    async def test_an_expired_session_is_not_completed(self, checkout: Checkout) -> None:
        shop, fake = checkout
        await shop.start(return_url=None)
        [session] = fake.sessions.values()
        session["status"] = "expired"
        status, html, _ = await _page(shop, session["success_url"])
        assert (status, "expired before the payment was made" in html, session["url"] in html) == (200, True, False)

    async def test_the_payer_page_of_a_session_sends_the_payer_to_its_return_page(self, checkout: Checkout) -> None:
        # The payer page (flow=payment_intent's) of a Checkout Session's payment: nothing to pay there,
        # and no read of the session's id as a PaymentIntent; its return page says where it stands.
        shop, fake = checkout
        await shop.start(return_url=None)
        [session] = fake.sessions.values()
        page = session["success_url"].removesuffix("/return")
        for method in ("GET", "POST"):
            resp = await shop.client.request(method, page.removeprefix(GATEWAY), allow_redirects=False)
            assert (resp.status, resp.headers["Location"]) == (303, session["success_url"].removeprefix(GATEWAY))
        status, html, _ = await _page(shop, session["success_url"])
        assert (status, "Payment not completed" in html, session["url"] in html) == (200, True, True)

    async def test_only_a_link_of_ours_is_a_page(self, checkout: Checkout) -> None:
        shop, fake = checkout
        started = await shop.start(return_url=None)
        [session] = fake.sessions.values()
        ptx = started["provider_transaction_id"]
        sandbox = await shop.client.post(
            "/internal/payments/start",
            json=shop.payment_request(provider="sandbox", currency="USD", amount=5000),
            headers=shop.internal_headers(TENANT),
        )
        other = (await sandbox.json())["provider_transaction_id"]
        token = session["success_url"].split("/")[-2]
        for path in (
            f"/pay/stripe/{ptx}/{'A' * len(token)}/return",  # a wrong token
            f"/pay/stripe/ptx_nothing/{token}/return",
            f"/pay/stripe/{other}/{token}/return",  # another provider's transaction
            f"/pay/stripe/{ptx}/%00/return",
            f"/pay/stripe/{'a' * 5000}/{token}/return",
        ):
            resp = await shop.client.get(path)
            assert resp.status == 404, path
            assert "Payment not found" in await resp.text()
            assert resp.headers["Cache-Control"] == "no-store"


class TestWithAReturnUrl:
    async def test_stripe_sends_the_payer_back_to_the_shop(self, checkout: Checkout) -> None:
        shop, fake = checkout
        given = "https://shop.example.com/orders/1"
        await shop.start(return_url=given)
        [session] = fake.sessions.values()
        assert (session["success_url"], session["cancel_url"]) == (given, given)
