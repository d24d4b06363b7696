"""The SDK in a browser, on the embedded mode's demo shop (its own origin, so the modal is really
cross-origin): Pay opens the hosted checkout in a modal, the provider's page (Click's simulator) opens
in a new window, and onSuccess fires on the shop's page only once the platform reports the payment
SUCCEEDED, never before the simulator's confirmation (nor on a forged message); a declined attempt
brings the options back and tells the shop nothing, a cancelled payment calls onFailure; the close
button and Escape call onClose and give focus back; a page on an origin the tenant did not list cannot
frame the checkout; the modal on a phone is accessible."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from billing_runtime.testing import free_port
from playwright.async_api import Browser, FrameLocator, Page, expect

from .conftest import NewPage
from .support import assert_accessible, axe_violations, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MODAL = '[data-test-id="payment-modal"]'
IFRAME = '[data-test-id="payment-iframe"]'
CLOSE = '[data-test-id="close-modal-button"]'
EVENTS = '[data-test-id="sdk-events"]'


@dataclass
class DemoShop:
    platform: Any  # tests/e2e/conftest.py Platform
    url: str
    origin: str
    data_dir: Path


@pytest.fixture
def demo_shop(embedded_demo_platform: Any) -> DemoShop:
    origin = f"http://127.0.0.1:{embedded_demo_platform.ports['demo']}"
    # The platform logs into its data directory, beside secrets.json.
    return DemoShop(embedded_demo_platform, f"{origin}/demo", origin, embedded_demo_platform.logs[-1].parent)


@dataclass
class DemoBackend:
    """The demo tenant as its backend sees it (to read its payments)."""

    http: aiohttp.ClientSession
    gateway_url: str
    token: str

    async def cancel(self, payment_id: str) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.http.post(f"{self.gateway_url}/v1/payments/{payment_id}/cancel", headers=headers) as r:
            assert r.status == 200, await r.text()

    async def payment(self, payment_id: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.http.get(f"{self.gateway_url}/v1/payments/{payment_id}", headers=headers) as r:
            assert r.status == 200, await r.text()
            return dict(await r.json())


@pytest.fixture
async def demo_tenant(demo_shop: DemoShop, http: aiohttp.ClientSession) -> DemoBackend:
    stored = json.loads((demo_shop.data_dir / "secrets.json").read_text())
    credentials = {"app_name": stored["demo_app_name"], "secret": stored["demo_secret"]}
    gateway = demo_shop.platform.gateway_url
    async with http.post(f"{gateway}/v1/auth/token", json=credentials) as r:
        assert r.status == 200, await r.text()
        return DemoBackend(http, gateway, (await r.json())["access_token"])


async def _events(page: Page) -> list[dict[str, Any]]:
    return list(await page.evaluate("window.demoEvents"))


async def _open_modal(page: Page, demo_shop: DemoShop) -> FrameLocator:
    await page.goto(demo_shop.url)
    await page.get_by_role("button", name="Pay", exact=True).click()
    await expect(page.locator(MODAL)).to_be_visible()
    await expect(page.locator(MODAL)).to_have_attribute("role", "dialog")
    frame = page.frame_locator(IFRAME)
    await expect(frame.get_by_role("button", name=re.compile("Click"))).to_be_visible()
    return frame


def _payment_id(text: str) -> str:
    match = re.search(r"pay_[0-9a-z]+", text)
    assert match is not None, text
    return match.group(0)


async def test_paid_in_the_modal_through_the_click_simulator_on_success_only_after_the_confirmation(
    demo_shop: DemoShop, demo_tenant: DemoBackend, new_page: NewPage
) -> None:
    page = await new_page()
    frame = await _open_modal(page, demo_shop)
    payment_id = _payment_id(await page.locator('[data-test-id="payment-result"]').inner_text())
    src = await page.locator(IFRAME).get_attribute("src")
    assert src is not None
    assert src.endswith(f"?embedded=true&origin={quote(demo_shop.origin, safe='')}")

    # Choosing the provider opens its page in a new window; the modal stays, and waits.
    async with page.context.expect_page() as opened:
        await frame.get_by_role("button", name=re.compile("Click")).click()
    provider = await opened.value
    await provider.wait_for_url(re.compile(r"/simulators/click/pay/"))
    await expect(frame.get_by_text("Complete the payment in the opened window")).to_be_visible()
    await screenshot(page, "sdk-modal-waiting")

    # Before the simulator's confirmation: the payment is pending and the shop heard nothing.
    assert (await demo_tenant.payment(payment_id))["status"] == "PROVIDER_PENDING"
    # Forged successes: from the shop's own window (not the checkout's origin), and from another frame
    # of the checkout's origin (not the SDK's iframe). The SDK takes neither.
    forged = "({type: 'billing-checkout:v1:status', status: 'SUCCEEDED'})"
    await page.evaluate(f"window.postMessage({forged}, '*')")
    await page.evaluate(
        "src => new Promise(done => { const f = document.createElement('iframe');"
        " f.title = 'other'; f.onload = done; f.src = src; document.body.appendChild(f); })",
        src.replace("?", "/return?", 1),  # a page of the same payment, frameable by the shop
    )
    other = next(f for f in page.frames if "/return" in f.url)
    await other.evaluate(f"parent.postMessage({forged}, '*')")
    await page.wait_for_timeout(2_000)  # more than one poll of the embedded page
    assert await _events(page) == []

    await provider.get_by_role("button", name="Pay with Click").click()
    await provider.wait_for_url(re.compile(r"/c/[^/]+/return"))
    await expect(page.locator(EVENTS)).to_contain_text("onSuccess", timeout=20_000)
    assert await _events(page) == [{"callback": "onSuccess", "detail": {"status": "SUCCEEDED"}}]
    assert (await demo_tenant.payment(payment_id))["status"] == "SUCCEEDED"
    await expect(frame.get_by_role("heading", name="Payment confirmed")).to_be_visible()

    await page.locator(CLOSE).click()
    await expect(page.locator(MODAL)).to_have_count(0)
    assert [e["callback"] for e in await _events(page)] == ["onSuccess", "onClose"]
    # Focus is back where the payer left it.
    assert await page.evaluate("document.activeElement.id") == "pay"


async def test_a_declined_attempt_brings_the_options_back_and_a_cancel_calls_on_failure(
    demo_shop: DemoShop, demo_tenant: DemoBackend, new_page: NewPage
) -> None:
    page = await new_page()
    frame = await _open_modal(page, demo_shop)
    payment_id = _payment_id(await page.locator('[data-test-id="payment-result"]').inner_text())
    # A declined attempt leaves the payment payable (payments-svc's attempts): the modal says why and
    # offers the other ways to pay; the shop hears nothing, since nothing is final.
    async with page.context.expect_page() as opened:
        await frame.get_by_role("button", name=re.compile("Sandbox")).click()
    provider = await opened.value
    await provider.get_by_role("button", name="Decline the card").click()
    await expect(frame.get_by_text(re.compile("did not go through"))).to_be_visible(timeout=20_000)
    await expect(frame.get_by_role("button", name=re.compile("Click"))).to_be_visible()
    await expect(frame.get_by_role("button", name=re.compile("Sandbox"))).to_have_count(0)
    assert (await demo_tenant.payment(payment_id))["status"] == "CREATED"
    assert await _events(page) == []

    # The shop's backend cancels the payment while the payer is at another provider: final, onFailure.
    async with page.context.expect_page() as opened:
        await frame.get_by_role("button", name=re.compile("Click")).click()
    await (await opened.value).wait_for_url(re.compile(r"/simulators/click/pay/"))
    await demo_tenant.cancel(payment_id)
    await expect(page.locator(EVENTS)).to_contain_text("onFailure", timeout=20_000)
    payment = await demo_tenant.payment(payment_id)
    assert payment["status"] == "CANCELLED"
    assert await _events(page) == [
        {"callback": "onFailure", "detail": {"status": "CANCELLED", "failure_message": payment["failure_message"]}}
    ]


async def test_close_button_and_escape_call_on_close_and_focus_stays_in_the_modal(
    demo_shop: DemoShop, new_page: NewPage
) -> None:
    page = await new_page()
    await _open_modal(page, demo_shop)
    assert await page.evaluate("document.activeElement.dataset.testId") == "close-modal-button"
    # Tabbing through the modal (the frame's own content included) never reaches the shop's page.
    inside = "document.querySelector('[data-test-id=\"payment-modal\"]').contains(document.activeElement)"
    for _ in range(12):
        await page.keyboard.press("Tab")
        assert await page.evaluate(inside)
    await page.keyboard.press("Escape")
    await expect(page.locator(MODAL)).to_have_count(0)
    assert await _events(page) == [{"callback": "onClose", "detail": None}]
    assert await page.evaluate("document.activeElement.id") == "pay"

    await page.get_by_role("button", name="Pay", exact=True).click()
    await expect(page.locator(MODAL)).to_be_visible()
    await page.locator(CLOSE).click()
    await expect(page.locator(MODAL)).to_have_count(0)
    assert [e["callback"] for e in await _events(page)] == ["onClose", "onClose"]


@pytest.fixture
async def other_site() -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A site on another loopback origin, not among the demo tenant's: ``/frame?src=`` frames ``src``."""
    pages: dict[str, str] = {}

    async def frame(request: web.Request) -> web.Response:
        src = request.query["src"]
        html = f'<!doctype html><title>Other site</title><iframe id="f" title="checkout" src="{src}"></iframe>'
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/frame", frame)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", pages
    finally:
        await runner.cleanup()


async def test_a_page_on_another_origin_cannot_frame_the_checkout(
    demo_shop: DemoShop, browser: Browser, other_site: tuple[str, dict[str, str]], http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{demo_shop.origin}/demo/payments", json={}, headers={"Origin": demo_shop.origin}) as r:
        assert r.status == 201
        token = (await r.json())["token"]
    checkout = demo_shop.platform.checkout_url
    other, _ = other_site
    # Its own context, outside new_page's guard: the browser's CSP refusal is what this test wants.
    context = await browser.new_context()
    refusals: list[str] = []
    try:
        page = await context.new_page()
        page.on("console", lambda message: refusals.append(message.text))
        src = f"{checkout}/c/{token}?embedded=true&origin={other}"
        await page.goto(f"{other}/frame?src={quote(src, safe='')}")
        await page.wait_for_timeout(1_000)
        framed = page.frames[1]
        assert "Demo Shop" not in await framed.content()
        assert any("frame-ancestors" in text for text in refusals), refusals
        # The same page opened on its own (not framed) is fine: only framing is refused.
        await page.goto(f"{checkout}/c/{token}")
        await expect(page.get_by_role("heading", level=1)).to_contain_text("Demo Shop")
    finally:
        await context.close()


async def test_the_modal_on_a_phone_is_accessible(demo_shop: DemoShop, new_page: NewPage) -> None:
    page = await new_page(phone=True)
    frame = await _open_modal(page, demo_shop)
    box = await page.locator(IFRAME).bounding_box()
    assert box is not None and box["width"] == 375  # the modal fills the phone's screen
    await expect(frame.locator(".amount")).to_contain_text("25 000.00")
    await assert_accessible(page, "sdk-modal-phone")
    # axe runs in the cross-origin frame too (through the DevTools protocol, as on any page).
    checkout = next(f for f in page.frames if "/c/" in f.url)
    blocking = [v for v in await axe_violations(checkout) if v.get("impact") in ("serious", "critical")]  # type: ignore[arg-type]
    assert not blocking, blocking
    assert await checkout.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
