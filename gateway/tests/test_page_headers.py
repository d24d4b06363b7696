"""The payer pages reach the browser only through the gateway: their protective headers (no framing, no
caching, no referrer, the CSP) must survive the relay; and a path with a control character is refused
before any upstream sees it."""

from __future__ import annotations

import pytest

from .support import FakeUpstream, Gateway, Reply

pytestmark = pytest.mark.postgres

HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


@pytest.mark.parametrize("path", ["/simulators/octo/pay/u1", "/sandbox/pay/ptx_1"])
async def test_payer_page_security_headers_survive_the_relay(
    gateway: Gateway, providers: FakeUpstream, path: str
) -> None:
    providers.reply("GET", path, Reply(200, b"<html>pay</html>", HEADERS))
    resp = await gateway.client.get(path)
    assert resp.status == 200
    missing = [h for h in HEADERS if h not in resp.headers]
    assert missing == [], missing


@pytest.mark.parametrize("path", ["/sandbox/pay/ptx_%00", "/simulators/payme/pay/ptx_%01x", "/billing/octo%00"])
async def test_a_control_character_in_the_path_is_refused_here(
    gateway: Gateway, providers: FakeUpstream, path: str
) -> None:
    resp = await gateway.client.get(path)
    assert resp.status == 404
    assert providers.received == []


async def test_api_routes_do_not_pass_page_headers(gateway: Gateway, providers: FakeUpstream) -> None:
    providers.reply("POST", "/billing/sandbox", Reply(200, b"{}", {**HEADERS, "Content-Type": "application/json"}))
    resp = await gateway.client.post("/billing/sandbox", data=b"{}")
    assert "Content-Security-Policy" not in resp.headers
