"""The dashboard without a platform behind it: headers, redirects, the sign-in form, its assets,
readiness on the database, and who the client is behind proxies. (Pages and actions against a real
platform: tests/e2e/test_dashboard*.py.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient, make_mocked_request
from checkout_web.dashboard.clients import came_over_https, client_address, parse_networks
from checkout_web.settings import Settings

TRUSTED = parse_networks(["10.0.0.0/8"])


class TestHeaders:
    async def test_signed_out_visitor_is_sent_to_sign_in(self, client: TestClient) -> None:
        response = await client.get("/dashboard/payments", allow_redirects=False)
        assert response.status == 303
        assert response.headers["Location"] == "/dashboard/sign-in?reason=signed_out"
        assert response.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]

    async def test_sign_in_page(self, client: TestClient) -> None:
        response = await client.get("/dashboard/sign-in")
        page = await response.text()
        assert response.status == 200
        csp = response.headers["Content-Security-Policy"]
        for directive in ("frame-ancestors 'none'", "form-action 'self'", "script-src 'self'", "base-uri 'none'"):
            assert directive in csp
        assert "unsafe-inline" not in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Cache-Control"] == "no-store"
        assert '<label for="app_name">' in page and '<label for="secret">' in page
        assert 'name="csrf_token"' in page
        cookie = response.headers["Set-Cookie"]
        assert cookie.startswith("dashboard_sign_in=")
        assert "HttpOnly" in cookie and "Path=/dashboard" in cookie and "SameSite=Lax" in cookie

    async def test_an_unknown_session_is_expired_and_cleared(self, client: TestClient) -> None:
        response = await client.get(
            "/dashboard/payments", headers={"Cookie": "dashboard_session=forged"}, allow_redirects=False
        )
        assert response.status == 303
        assert response.headers["Location"] == "/dashboard/sign-in?reason=expired"
        assert 'dashboard_session=""' in response.headers["Set-Cookie"]

    async def test_unknown_dashboard_path_is_an_html_404(self, client: TestClient) -> None:
        response = await client.get("/dashboard/nothing/here")
        assert response.status == 404
        assert response.content_type == "text/html"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]

    async def test_payer_pages_keep_their_own_policy(self, client: TestClient, token: str) -> None:
        # Framed per tenant (allowed_origins: test_embedding.py), never with the dashboard's policy.
        response = await client.get(f"/c/{token}")
        policy = response.headers["Content-Security-Policy"]
        assert "frame-ancestors" in policy and "form-action" not in policy
        assert "X-Frame-Options" not in response.headers


class TestAssets:
    @pytest.mark.parametrize(
        ("path", "kind"), [("dashboard.css", "text/css"), ("dashboard.js", "application/javascript")]
    )
    async def test_served_with_an_etag(self, client: TestClient, path: str, kind: str) -> None:
        response = await client.get(f"/dashboard/static/{path}")
        assert response.status == 200
        assert response.content_type == kind
        etag = response.headers["ETag"]
        again = await client.get(f"/dashboard/static/{path}", headers={"If-None-Match": etag})
        assert again.status == 304


class TestReadiness:
    async def test_ready_with_its_database(self, client: TestClient) -> None:
        assert (await client.get("/readyz")).status == 200

    async def test_not_ready_without_it(
        self, make_client: Callable[[Settings], Awaitable[TestClient]], settings: Settings, closed_port: int
    ) -> None:
        down = settings.model_copy(
            update={"database_url": f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port}/checkout"}
        )
        client = await make_client(down)
        response = await client.get("/readyz")
        assert response.status == 503


class TestClientAddress:
    def _request(self, peer: str, **headers: str):  # type: ignore[no-untyped-def]
        request = make_mocked_request("GET", "/dashboard", headers=headers)
        request._transport_peername = (peer, 1234)
        return request

    def test_the_peer_without_a_trusted_proxy(self) -> None:
        request = self._request("203.0.113.9", **{"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https"})
        assert client_address(request, TRUSTED) == "203.0.113.9"
        assert came_over_https(request, TRUSTED) is False

    def test_the_nearest_untrusted_hop_behind_trusted_proxies(self) -> None:
        request = self._request("10.0.0.5", **{"X-Forwarded-For": "6.6.6.6, 198.51.100.4, 10.1.1.1"})
        assert client_address(request, TRUSTED) == "198.51.100.4"

    def test_https_said_by_a_trusted_proxy(self) -> None:
        request = self._request("10.0.0.5", **{"X-Forwarded-Proto": "https"})
        assert came_over_https(request, TRUSTED) is True


class TestDatabaseDown:
    async def test_pages_needing_a_session_are_a_503_page(
        self, make_client: Callable[[Settings], Awaitable[TestClient]], settings: Settings, closed_port: int
    ) -> None:
        down = settings.model_copy(
            update={"database_url": f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port}/checkout"}
        )
        client = await make_client(down)
        response = await client.get("/dashboard/payments", headers={"Cookie": "dashboard_session=x"})
        assert response.status == 503
        assert response.content_type == "text/html"
        assert "Nothing was changed" in await response.text()
        assert response.headers["Retry-After"] == "5"
