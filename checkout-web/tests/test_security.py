from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient


def csp(response: Any) -> dict[str, str]:
    directives = (part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    return {name: value for name, value in directives}


class TestSecurityHeaders:
    @pytest.mark.parametrize("suffix", ["", "/return"])
    async def test_pages_carry_the_headers(self, client: TestClient, token: str, suffix: str) -> None:
        response = await client.get(f"/c/{token}{suffix}")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
        policy = csp(response)
        assert policy["default-src"] == "'none'"
        # The fake gateway's checkouts have no allowed_origins: nobody may frame them.
        assert policy["frame-ancestors"] == "'none'"
        assert "X-Frame-Options" not in response.headers

    async def test_inline_script_runs_only_by_its_per_response_nonce(
        self, client: TestClient, fake_gateway: Any
    ) -> None:
        token = fake_gateway.add(status="PROVIDER_PENDING")
        first = await client.get(f"/c/{token}/return")
        second = await client.get(f"/c/{token}/return")
        nonce = re.fullmatch(r"'nonce-([A-Za-z0-9_-]+)'", csp(first)["script-src"])
        assert nonce is not None
        assert f'<script nonce="{nonce.group(1)}">' in await first.text()
        assert csp(first)["script-src"] != csp(second)["script-src"]
        assert "unsafe-inline" not in first.headers["Content-Security-Policy"]

    async def test_pages_without_script_allow_none(self, client: TestClient, token: str) -> None:
        response = await client.get(f"/c/{token}")
        assert csp(response)["script-src"] == "'none'"

    async def test_error_pages_carry_the_headers(self, client: TestClient) -> None:
        response = await client.get("/c/short")
        assert response.status == 404
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "Content-Security-Policy" in response.headers

    async def test_the_pay_redirect_leaks_no_referrer(self, client: TestClient, token: str) -> None:
        response = await client.post(f"/c/{token}/pay", data={"provider": "sandbox"}, allow_redirects=False)
        assert response.status == 303
        assert response.headers["Referrer-Policy"] == "no-referrer"

    async def test_pay_form_leaves_the_sdk_modal(self, client: TestClient, token: str) -> None:
        # Providers' pages refuse to be framed, so the form navigates the top window.
        assert 'target="_top"' in await (await client.get(f"/c/{token}")).text()

    async def test_nothing_secret_is_on_the_page(self, client: TestClient, fake_gateway: Any) -> None:
        token = fake_gateway.add(status="PROVIDER_PENDING")
        for path in (f"/c/{token}", f"/c/{token}/return"):
            html = await (await client.get(path)).text()
            assert "dev-internal-secret" not in html
            assert fake_gateway.url not in html
