"""The hosted checkout in a browser on a phone-sized viewport: the payer picks the sandbox, pays on its
page, comes back, and the return page shows the outcome once the provider's callback confirmed it."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from .conftest import NewPage
from .support import assert_accessible

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_payer_pays_on_a_phone_and_the_return_page_shows_the_confirmed_outcome(
    new_tenant, new_page: NewPage
) -> None:  # type: ignore[no-untyped-def]
    tenant = await new_tenant()
    payment = await tenant.create_payment("phone-1", amount=12_345, description="A4 notebooks")
    page = await new_page(phone=True)

    await page.goto(payment["checkout_url"])
    await expect(page.get_by_role("heading", level=1)).to_contain_text(tenant.app_name)
    await expect(page.locator(".amount")).to_contain_text("123.45")
    # Nothing wider than the phone: no horizontal scrolling.
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await assert_accessible(page, "hosted-checkout-phone-options")

    await page.get_by_role("button", name=re.compile("Sandbox")).click()
    await page.wait_for_url(re.compile(r"/sandbox/pay/"))
    await page.get_by_role("button", name="Pay (succeed)").click()

    # Back on our return page: it polls until the callback-confirmed status is final.
    await page.wait_for_url(re.compile(r"/c/[^/]+/return"))
    await expect(page.locator("main")).to_contain_text(re.compile("confirmed|succeeded", re.IGNORECASE), timeout=20_000)
    await assert_accessible(page, "hosted-checkout-phone-return")
    assert (await tenant.payment(payment["id"]))["status"] == "SUCCEEDED"
