"""``GET /openapi.json`` and ``GET /docs``: public, cacheable by ETag, the page self-contained."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import pytest
from aiohttp import web

from gateway import api_docs

from .support import Gateway

pytestmark = pytest.mark.postgres


class TestOpenApiDocument:
    async def test_served_without_credentials_with_an_etag(self, gateway: Gateway) -> None:
        resp = await gateway.client.get("/openapi.json")
        assert resp.status == 200
        assert resp.content_type == "application/json"
        doc = await resp.json()
        assert doc["openapi"].startswith("3.1")
        assert "/v1/payments" in doc["paths"]
        assert resp.headers["ETag"].startswith('"')
        assert "no-cache" in resp.headers["Cache-Control"]

    async def test_if_none_match_gives_304(self, gateway: Gateway) -> None:
        etag = (await gateway.client.get("/openapi.json")).headers["ETag"]
        resp = await gateway.client.get("/openapi.json", headers={"If-None-Match": etag})
        assert resp.status == 304
        assert await resp.read() == b""
        other = await gateway.client.get("/openapi.json", headers={"If-None-Match": '"other"'})
        assert other.status == 200


class TestDocsPage:
    async def test_rendered_from_the_document(self, gateway: Gateway) -> None:
        resp = await gateway.client.get("/docs")
        assert resp.status == 200
        assert resp.content_type == "text/html"
        html = await resp.text()
        # Grouped by tag, each operation with its method and path, the schemas linked.
        assert '<h2 id="tag-payments">Payments</h2>' in html
        assert "<code>/v1/payments/{payment_id}/refunds</code>" in html
        assert 'href="#schema-PaymentSnapshot"' in html
        assert "Example response" in html
        # Accessible and readable on a phone: landmarks, a language, a viewport.
        for landmark in ("<header>", "<main ", "<nav ", 'lang="en"', 'name="viewport"'):
            assert landmark in html

    async def test_no_third_party_asset_and_a_strict_policy(self, gateway: Gateway) -> None:
        resp = await gateway.client.get("/docs")
        html = await resp.text()
        assert "<script" not in html
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
        csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp
        style = re.search(r"<style>(.*?)</style>", html, re.S)
        assert style is not None
        digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
        assert f"style-src 'sha256-{digest}'" in csp  # the one inline stylesheet, and only it
        assert "frame-ancestors 'none'" in csp
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        etag = resp.headers["ETag"]
        assert (await gateway.client.get("/docs", headers={"If-None-Match": etag})).status == 304


class TestRenderedOnce:
    async def test_the_page_is_rendered_by_its_first_request_and_only_then(
        self, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Parsing the whole document at start kept 2.7 MiB of every replica's memory for a page
        # people open now and then (issue 16): the gateway reads its bytes, and renders on demand.
        renders: list[dict[str, Any]] = []

        def render(document: dict[str, Any]) -> str:
            renders.append(document)
            return "<html>reference</html>"

        monkeypatch.setattr(api_docs, "render_page", render)
        app = web.Application()
        api_docs.add_docs_routes(app)
        client = await aiohttp_client(app)
        assert (await client.get("/openapi.json")).status == 200
        assert renders == []
        first, second = await client.get("/docs"), await client.get("/docs")
        assert await first.text() == await second.text() == "<html>reference</html>"
        assert first.headers["ETag"] == second.headers["ETag"]
        assert len(renders) == 1
        assert "/v1/payments" in renders[0]["paths"]
