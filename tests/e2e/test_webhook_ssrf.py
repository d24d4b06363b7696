"""The webhook SSRF guard in both modes: receivers on loopback are let through (the embedded mode
allows loopback for a newcomer's receiver, the distributed one here allow-lists 127.0.0.1; the first
test of test_webhooks.py proves it), and every port of the platform itself is refused whatever is
allowed: a tenant cannot make the dispatcher call the gateway or a service and read the answer in its
delivery log."""

import asyncio
import time
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_the_platforms_own_ports_are_refused(platform, new_tenant, http) -> None:  # type: ignore[no-untyped-def]
    tenant = await new_tenant()
    for base in (platform.gateway_url, platform.checkout_url):
        async with http.post(
            f"{platform.gateway_url}/v1/webhook-endpoints", json={"url": f"{base}/v1/payments"}, headers=tenant.auth
        ) as r:
            assert r.status == 422, await r.text()
            assert (await r.json())["detail"].endswith("points to a port of the platform itself")

    # By name the URL passes creation; the connect-time check refuses it.
    port = urlsplit(platform.gateway_url).port
    async with http.post(
        f"{platform.gateway_url}/v1/webhook-endpoints",
        json={"url": f"http://localhost:{port}/admin/tenants"},
        headers=tenant.auth,
    ) as r:
        assert r.status == 201, await r.text()
        endpoint = await r.json()
    async with http.post(
        f"{platform.gateway_url}/v1/webhook-endpoints/{endpoint['id']}/test", headers=tenant.auth
    ) as r:
        assert r.status in (200, 201, 202), await r.text()
        delivery = await r.json()
    deadline = time.monotonic() + 20
    while True:
        async with http.get(f"{platform.gateway_url}/v1/webhook-deliveries/{delivery['id']}", headers=tenant.auth) as r:
            detail = await r.json()
        if detail["attempts"] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    attempt = detail["attempts"][0]
    assert attempt["status_code"] is None
    assert "a port of the platform itself" in attempt["error"]
