from __future__ import annotations

from aiohttp.test_utils import TestClient


class TestCheckoutJs:
    async def test_served_as_javascript_with_caching_headers(self, client: TestClient) -> None:
        response = await client.get("/checkout.js")
        body = await response.text()
        assert response.status == 200
        assert response.content_type == "application/javascript"
        assert response.headers["Cache-Control"] == "public, max-age=3600"
        assert response.headers["ETag"].startswith('"')
        assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
        assert "BillingCheckout" in body
        assert "open: open" in body
        assert "close: close" in body
        assert 'createElement("iframe")' in body

    async def test_revalidation_with_the_etag_is_a_304(self, client: TestClient) -> None:
        etag = (await client.get("/checkout.js")).headers["ETag"]
        response = await client.get("/checkout.js", headers={"If-None-Match": f'"other", {etag}'})
        assert response.status == 304
        assert await response.read() == b""
        changed = await client.get("/checkout.js", headers={"If-None-Match": '"other"'})
        assert changed.status == 200

    async def test_max_age_is_a_setting(self, make_client, settings) -> None:  # type: ignore[no-untyped-def]
        client = await make_client(settings.model_copy(update={"asset_max_age": 60}))
        assert (await client.get("/checkout.js")).headers["Cache-Control"] == "public, max-age=60"


class TestStylesheet:
    async def test_pages_link_the_versioned_stylesheet(self, client: TestClient, token: str) -> None:
        html = await (await client.get(f"/c/{token}")).text()
        response = await client.get("/static/checkout.css")
        assert response.content_type == "text/css"
        version = response.headers["ETag"].strip('"')[:12]
        assert f'href="/static/checkout.css?v={version}"' in html


class TestOperations:
    async def test_health_and_metrics(self, client: TestClient, token: str) -> None:
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 200
        await client.get(f"/c/{token}")
        metrics = await (await client.get("/metrics")).text()
        assert 'route="/c/{token}"' in metrics
        assert token not in metrics
