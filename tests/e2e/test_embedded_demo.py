"""The embedded mode's demo shop: its test tenant is created on the first start (through the gateway's
admin API; one registered by hand that the secrets file does not know is taken over), kept in the
secrets file and reused on every later start (its allowed origin following the demo's port), printed
at every start unless BILLING_DEMO=false; the shop's backend creates a payment with the tenant's
credentials and hands the browser the checkout token alone."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from billing_runtime.testing import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN = "e2e-demo-admin-token-0123456789abcdef"


def _banner(log: Path, timeout: float = 60) -> str:
    """The start banner, once printed (after the demo tenant is set up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "Ctrl-C stops it cleanly" in text:
            return text
        time.sleep(0.2)
    raise AssertionError(f"no banner in {log}:\n{log.read_text(errors='replace')[-3000:]}")


def _demo_tenant(banner: str) -> tuple[str, str]:
    match = re.search(r"app name (\S+), secret (\S+)", banner)
    assert match is not None, banner
    return match.group(1), match.group(2)


async def _get(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with http.get(url, **kwargs) as r:
        return r.status, await r.json(content_type=None)


async def _create(http: aiohttp.ClientSession, demo: str, origin: str | None) -> tuple[int, Any]:
    headers = {"Origin": origin} if origin else {}
    async with http.post(f"{demo}/demo/payments", json={}, headers=headers) as r:
        return r.status, (r.headers["Content-Type"], await r.json(content_type=None))


async def test_demo_tenant_created_once_reused_and_paying(tmp_path: Path, embedded_starter: Any) -> None:
    start_embedded, embedded_ports = embedded_starter
    ports = embedded_ports()
    gateway = f"http://127.0.0.1:{ports['GATEWAY']}"
    checkout = f"http://127.0.0.1:{ports['CHECKOUT']}"
    admin = {"Authorization": f"Bearer {ADMIN}"}
    demo_port = free_port()
    demo = f"http://127.0.0.1:{demo_port}"

    # BILLING_DEMO=false: no shop, no tenant, nothing said. Meanwhile someone registers "demo-shop"
    # by hand, which the secrets file does not know (as after a lost file).
    off = start_embedded(tmp_path, ports, ADMIN, {"BILLING_DEMO": "false", "BILLING_DEMO_PORT": str(demo_port)})
    try:
        banner = _banner(off.logs[-1])
        assert "Demo shop" not in banner
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientConnectionError):
                await http.get(f"{demo}/demo")
            body = {"app_name": "demo-shop", "display_name": "By hand"}
            async with http.post(f"{gateway}/admin/tenants", json=body, headers=admin) as r:
                assert r.status == 201
                by_hand = await r.json()
    finally:
        assert off.stop() == {"embedded": 0}
    assert "demo_secret" not in json.loads((tmp_path / "secrets.json").read_text())

    # The first start with the shop takes that tenant over: a new secret, kept, and the demo's origin.
    first = start_embedded(tmp_path, ports, ADMIN, {"BILLING_DEMO": "true", "BILLING_DEMO_PORT": str(demo_port)})
    try:
        banner = _banner(first.logs[-1])
        app_name, secret = _demo_tenant(banner)
        assert app_name == "demo-shop"
        assert secret != by_hand["secret"]
        assert f"{demo}/demo" in banner
        stored = json.loads((tmp_path / "secrets.json").read_text())
        assert (stored["demo_app_name"], stored["demo_secret"]) == (app_name, secret)
        tenant_id = stored["demo_tenant_id"]
        assert tenant_id == by_hand["id"]
        async with aiohttp.ClientSession() as http:
            status, tenant = await _get(http, f"{gateway}/admin/tenants/{tenant_id}", headers=admin)
            assert status == 200
            assert (tenant["app_name"], tenant["livemode"], tenant["allowed_origins"]) == (app_name, False, [demo])
            rotated = tenant["previous_secret_expires_at"]
            assert rotated is not None  # the hand-made secret was rotated out

            # The page uses the SDK from the checkout's origin, and its CSP lets it frame that origin only.
            async with http.get(f"{demo}/demo") as r:
                assert r.status == 200
                page = await r.text()
                policy = r.headers["Content-Security-Policy"]
            assert f'src="{checkout}/checkout.js"' in page
            assert f"frame-src {checkout}" in policy
            assert secret not in page

            status, (content_type, created) = await _create(http, demo, demo)
            assert status == 201, created
            assert set(created) == {"token", "payment_id"}
            # The checkout view of the demo's payment says who may frame it, and the page tells the browser.
            status, view = await _get(http, f"{gateway}/v1/checkout/{created['token']}")
            assert status == 200
            assert view["allowed_origins"] == [demo]
            assert view["amount"] == 25_000_00 and view["currency"] == "UZS"
            async with http.get(f"{checkout}/c/{created['token']}") as r:
                assert r.status == 200
                assert f"frame-ancestors {demo}" in r.headers["Content-Security-Policy"]

            # Only the demo page may ask its backend for a payment.
            for origin in (None, "https://evil.example"):
                status, (content_type, problem) = await _create(http, demo, origin)
                assert status == 403
                assert content_type == "application/problem+json"
                assert problem["code"] == "forbidden_origin"
    finally:
        assert first.stop() == {"embedded": 0}

    # A restart reuses the tenant and its secret (no new rotation); a new demo port becomes its origin.
    demo_port = free_port()
    demo = f"http://127.0.0.1:{demo_port}"
    second = start_embedded(tmp_path, ports, ADMIN, {"BILLING_DEMO": "true", "BILLING_DEMO_PORT": str(demo_port)})
    try:
        assert _demo_tenant(_banner(second.logs[-1])) == (app_name, secret)
        async with aiohttp.ClientSession() as http:
            status, tenants = await _get(http, f"{gateway}/admin/tenants", headers=admin)
            assert [(t["id"], t["allowed_origins"]) for t in tenants["data"]] == [(tenant_id, [demo])]
            status, shown = await _get(http, f"{gateway}/admin/tenants/{tenant_id}", headers=admin)
            assert shown["previous_secret_expires_at"] == rotated
            status, (_, created) = await _create(http, demo, demo)
            assert status == 201, created
    finally:
        assert second.stop() == {"embedded": 0}
