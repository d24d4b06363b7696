"""Per-tenant framing (CSP frame-ancestors from the checkout view's allowed_origins) and the embedded
page's posting rules (it posts only to the origin the SDK named, and only if it is the tenant's)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from .test_security import csp

SHOP = "https://shop.example"
OTHER = "https://evil.example"


def _config(html: str) -> dict[str, Any] | None:
    match = re.search(r'<script type="application/json" id="embedded-config">(.*?)</script>', html, re.S)
    return json.loads(match.group(1)) if match else None


class TestFrameAncestors:
    @pytest.mark.parametrize("suffix", ["", "/return", "?embedded=true&origin=https%3A%2F%2Fshop.example"])
    async def test_the_tenants_origins_may_frame_its_pages(
        self, client: TestClient, fake_gateway: Any, suffix: str
    ) -> None:
        token = fake_gateway.add(allowed_origins=[SHOP, "http://127.0.0.1:8070"])
        response = await client.get(f"/c/{token}{suffix}")
        assert response.status == 200
        assert csp(response)["frame-ancestors"] == f"{SHOP} http://127.0.0.1:8070"

    @pytest.mark.parametrize("status", ["SUCCEEDED", "FAILED", "EXPIRED"])
    async def test_finished_pages_too(self, client: TestClient, fake_gateway: Any, status: str) -> None:
        token = fake_gateway.add(status=status, allowed_origins=[SHOP])
        assert csp(await client.get(f"/c/{token}?embedded=true&origin={SHOP}"))["frame-ancestors"] == SHOP

    async def test_a_tenant_without_origins_is_framed_by_nobody(self, client: TestClient, fake_gateway: Any) -> None:
        token = fake_gateway.add(allowed_origins=[])
        assert csp(await client.get(f"/c/{token}"))["frame-ancestors"] == "'none'"

    async def test_another_tenants_origins_do_not_leak(self, client: TestClient, fake_gateway: Any) -> None:
        fake_gateway.add(allowed_origins=[OTHER])
        token = fake_gateway.add(allowed_origins=[SHOP])
        assert csp(await client.get(f"/c/{token}"))["frame-ancestors"] == SHOP

    async def test_pages_of_no_payment_are_framed_by_nobody(self, client: TestClient) -> None:
        response = await client.get("/c/" + "A" * 32)
        assert response.status == 404
        assert csp(response)["frame-ancestors"] == "'none'"

    async def test_a_malformed_origin_from_the_gateway_never_reaches_the_header(
        self, client: TestClient, fake_gateway: Any
    ) -> None:
        token = fake_gateway.add(allowed_origins=[SHOP, "https://x.example; script-src *", "*"])
        response = await client.get(f"/c/{token}")
        assert csp(response)["frame-ancestors"] == SHOP
        assert "script-src *" not in response.headers["Content-Security-Policy"]


class TestEmbeddedPage:
    async def test_posts_to_the_named_origin_when_it_is_the_tenants(
        self, client: TestClient, fake_gateway: Any
    ) -> None:
        token = fake_gateway.add(allowed_origins=[SHOP])
        html = await (await client.get(f"/c/{token}", params={"embedded": "true", "origin": SHOP})).text()
        assert _config(html) == {
            "parent_origin": SHOP,
            "status": "CREATED",
            "failure_message": None,
            "status_url": f"/c/{token}/status.json",
        }
        # The provider's page opens in a new window, never in the modal or over the tenant's page.
        assert 'target="_blank" rel="noopener noreferrer"' in html
        assert 'target="_top"' not in html
        assert "Complete the payment in the opened window" in html

    @pytest.mark.parametrize("origin", [OTHER, "https://shop.example.evil.example", f"{SHOP}/", "null", "*", ""])
    async def test_posts_nothing_to_another_origin(self, client: TestClient, fake_gateway: Any, origin: str) -> None:
        token = fake_gateway.add(allowed_origins=[SHOP])
        html = await (await client.get(f"/c/{token}", params={"embedded": "true", "origin": origin})).text()
        config = _config(html)
        assert config is not None
        assert config["parent_origin"] is None
        assert OTHER not in html

    async def test_posts_nothing_without_an_origin(self, client: TestClient, fake_gateway: Any) -> None:
        token = fake_gateway.add(allowed_origins=[SHOP])
        config = _config(await (await client.get(f"/c/{token}?embedded=true")).text())
        assert config is not None
        assert config["parent_origin"] is None

    async def test_a_finished_payment_reports_its_status(self, client: TestClient, fake_gateway: Any) -> None:
        token = fake_gateway.add(status="FAILED", failure_message="Card declined", allowed_origins=[SHOP])
        response = await client.get(f"/c/{token}", params={"embedded": "true", "origin": SHOP})
        config = _config(await response.text())
        assert config is not None
        assert (config["status"], config["failure_message"], config["parent_origin"]) == (
            "FAILED",
            "Card declined",
            SHOP,
        )

    async def test_the_script_runs_by_the_pages_nonce(self, client: TestClient, fake_gateway: Any) -> None:
        token = fake_gateway.add(allowed_origins=[SHOP])
        response = await client.get(f"/c/{token}", params={"embedded": "true", "origin": SHOP})
        nonce = re.fullmatch(r"'nonce-([A-Za-z0-9_-]+)'", csp(response)["script-src"])
        assert nonce is not None
        assert re.search(rf'<script nonce="{nonce.group(1)}" src="/static/embedded\.js\?v=\w+">', await response.text())
        script = await client.get("/static/embedded.js")
        assert script.status == 200
        assert script.content_type == "application/javascript"

    async def test_without_embedded_the_page_is_as_before(self, client: TestClient, fake_gateway: Any) -> None:
        token = fake_gateway.add(allowed_origins=[SHOP])
        response = await client.get(f"/c/{token}", params={"origin": SHOP})
        html = await response.text()
        assert _config(html) is None
        assert 'target="_top"' in html
        assert csp(response)["script-src"] == "'none'"


class TestAuthorized:
    async def test_an_authorized_payment_is_a_success_page(self, client: TestClient, fake_gateway: Any) -> None:
        token = fake_gateway.add(status="AUTHORIZED")
        html = await (await client.get(f"/c/{token}")).text()
        assert "Payment authorized" in html


class TestReturnLink:
    async def test_in_the_modal_the_way_back_leaves_the_modal(self, client: TestClient, fake_gateway: Any) -> None:
        token = fake_gateway.add(status="SUCCEEDED", allowed_origins=[SHOP])
        embedded = await (await client.get(f"/c/{token}", params={"embedded": "true", "origin": SHOP})).text()
        assert 'href="https://shop.example/thanks" target="_top"' in embedded
        plain = await (await client.get(f"/c/{token}")).text()
        assert 'href="https://shop.example/thanks">' in plain
