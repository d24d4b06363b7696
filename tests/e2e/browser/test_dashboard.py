"""The tenant dashboard in a browser: sign in, find a payment, refund it, create a webhook endpoint and
send it a test event, retry a delivery; every page checked with axe-core (zero serious or critical
violations), on a desktop and a phone-sized viewport (no horizontal scrolling at 375 px)."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, expect

# The e2e helpers one level up (tests/ is no package: pytest's importlib mode names these modules).
from ..conftest import TenantClient  # noqa: TID252
from ..dashboard_support import Tenant, new_tenant_with_secret  # noqa: TID252
from ..test_refunds import pay_at_sandbox  # noqa: TID252
from .conftest import NewPage
from .support import assert_accessible

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def _sign_in(page: Page, platform: Any, tenant: Tenant) -> None:
    await page.goto(f"{platform.checkout_url}/dashboard/payments")
    await page.wait_for_url(re.compile(r"/dashboard/sign-in"))
    await page.get_by_label("App name").fill(tenant.app_name)
    await page.get_by_label("Secret").fill(tenant.secret)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/dashboard/payments$"))


async def _fits(page: Page) -> None:
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), page.url


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
async def test_tenant_finds_refunds_and_manages_webhooks(
    platform: Any, http: aiohttp.ClientSession, new_page: NewPage, receiver: Any, phone: bool
) -> None:
    tenant = await new_tenant_with_secret(http, platform.gateway_url, platform.admin_token)
    client = TenantClient(http, platform, tenant.app_name, tenant.token)
    paid = await pay_at_sandbox(http, platform, client, order_id="browser-order-1", description="Notebooks")
    view = "phone" if phone else "desktop"
    page = await new_page(phone=phone)

    await page.goto(f"{platform.checkout_url}/dashboard/sign-in")
    await assert_accessible(page, f"dashboard-{view}-sign-in")
    await _sign_in(page, platform, tenant)
    await assert_accessible(page, f"dashboard-{view}-payments")
    await _fits(page)

    # Find the payment by its order id, and open it.
    await page.get_by_label("Order id").fill("browser-order-1")
    await page.get_by_role("button", name="Filter").click()
    await page.get_by_role("link", name=paid["id"]).click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text(paid["id"])
    await expect(page.locator("main")).to_contain_text("payment.succeeded")
    await assert_accessible(page, f"dashboard-{view}-payment")
    await _fits(page)

    # Refund part of it; a PENDING refund appears and the API has exactly one.
    await page.get_by_label(re.compile("Amount in minor units")).fill("1000")
    await page.get_by_label(re.compile("Reason")).fill("requested_by_customer")
    await page.get_by_role("button", name="Refund", exact=True).click()
    await expect(page.get_by_role("status").first).to_contain_text("Refund requested")
    async with http.get(f"{platform.gateway_url}/v1/payments/{paid['id']}/refunds", headers=tenant.auth) as r:
        refunds = (await r.json())["data"]
    assert [x["amount"] for x in refunds] == [1000]
    await assert_accessible(page, f"dashboard-{view}-payment-refunded")

    # Create an endpoint: its secret is shown once.
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Webhooks").click()
    await expect(page.locator("main")).to_contain_text("No endpoints yet")
    await assert_accessible(page, f"dashboard-{view}-webhooks")
    await _fits(page)
    await page.get_by_label("URL").fill(receiver.url)
    await page.get_by_label("Description (optional)").fill("browser test")
    await page.get_by_role("button", name="Add endpoint").click()
    secret = await page.get_by_label("Signing secret").input_value()
    assert secret.startswith("whsec_")
    await assert_accessible(page, f"dashboard-{view}-secret")
    await _fits(page)
    await page.get_by_role("link", name="I have copied it").click()

    # Send it a test event; it arrives, signed.
    await page.get_by_role("button", name="Send test event").click()
    await expect(page.get_by_role("status").first).to_contain_text("Test event sent")
    await receiver.wait("webhook.test")
    await assert_accessible(page, f"dashboard-{view}-endpoint")
    await _fits(page)

    # Retry its delivery from the deliveries page.
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Deliveries").click()
    await page.get_by_label("Event type").select_option("webhook.test")
    await page.get_by_role("button", name="Filter").click()
    await assert_accessible(page, f"dashboard-{view}-deliveries")
    await _fits(page)
    await page.locator("tbody th a").first.click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Delivery")
    await page.get_by_role("button", name="Retry now").click()
    await expect(page.get_by_role("status").first).to_contain_text("Retry requested")
    await assert_accessible(page, f"dashboard-{view}-delivery")
    await _fits(page)
    for _ in range(100):
        if receiver.types().count("webhook.test") >= 2:
            break
        await page.wait_for_timeout(100)
    assert receiver.types().count("webhook.test") >= 2

    # The read-only pages, and sign-out.
    for name in ("Events", "Providers", "API docs"):
        await page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()
        await expect(page.get_by_role("heading", level=1)).to_be_visible()
        await assert_accessible(page, f"dashboard-{view}-{name.lower().replace(' ', '-')}")
        await _fits(page)
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("main")).to_contain_text("You have signed out")
    await page.goto(f"{platform.checkout_url}/dashboard/payments")
    await page.wait_for_url(re.compile(r"/dashboard/sign-in"))
