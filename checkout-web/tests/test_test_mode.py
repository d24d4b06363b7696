"""A test payment is marked clearly on every page the payer sees; a live one, or one whose mode the
gateway does not state, never is (telling a payer "no real money moves" about a live payment is the
mistake that costs)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

BANNER = "Test mode — no real money moves."


class TestTestModeBanner:
    @pytest.mark.parametrize("status", ["CREATED", "PROVIDER_PENDING", "SUCCEEDED", "FAILED"])
    async def test_a_test_payment_shows_the_banner_on_the_checkout_page(
        self, client: TestClient, fake_gateway: Any, status: str
    ) -> None:
        token = fake_gateway.add(livemode=False, status=status)
        html = await (await client.get(f"/c/{token}")).text()
        assert html.count(BANNER) == 1
        assert 'class="test-mode" role="note"' in html

    async def test_a_test_payment_shows_the_banner_on_the_return_page(
        self, client: TestClient, fake_gateway: Any
    ) -> None:
        token = fake_gateway.add(livemode=False, status="PROVIDER_PENDING")
        html = await (await client.get(f"/c/{token}/return")).text()
        assert BANNER in html

    @pytest.mark.parametrize("mode", [{"livemode": True}, {"livemode": None}])
    async def test_a_live_payment_or_an_unstated_mode_shows_no_banner(
        self, client: TestClient, fake_gateway: Any, mode: dict[str, Any]
    ) -> None:
        token = fake_gateway.add(**mode)
        for path in (f"/c/{token}", f"/c/{token}/return"):
            html = await (await client.get(path)).text()
            assert "Test mode" not in html and "test-mode" not in html

    async def test_the_banner_is_styled(self, client: TestClient) -> None:
        css = await (await client.get("/static/checkout.css")).text()
        assert ".test-mode" in css
