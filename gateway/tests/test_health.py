from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer
from gateway.ops import create_ops_app

from .support import FakeUpstream, Gateway, admin_headers, bearer, closed_port, problem

pytestmark = pytest.mark.postgres


class TestHealth:
    async def test_healthz_and_metrics(self, gateway: Gateway) -> None:
        resp = await gateway.client.get("/healthz")
        assert resp.status == 200
        assert resp.headers["X-Request-Id"].startswith("req_")
        await gateway.client.get("/v1/payments")
        metrics = await (await gateway.client.get("/metrics", headers=admin_headers())).text()
        # Labelled by route template, never by raw path.
        assert 'route="/v1/payments"' in metrics
        assert "gateway_rate_limited_total" in metrics

    async def test_readyz_checks_database_and_upstreams(self, gateway: Gateway) -> None:
        resp = await gateway.client.get("/readyz", headers=admin_headers())
        assert resp.status == 200
        assert (await resp.json())["checks"] == {
            "database": "ok",
            "payments": "ok",
            "providers": "ok",
            "webhooks": "ok",
        }

    async def test_readyz_reports_an_unhealthy_upstream(self, gateway: Gateway, providers: FakeUpstream) -> None:
        providers.healthy = False
        resp = await gateway.client.get("/readyz", headers=admin_headers())
        assert resp.status == 503
        assert (await resp.json())["checks"]["providers"] == "unavailable"

    async def test_readyz_reports_an_unreachable_upstream(
        self, make_gateway: Callable[..., Awaitable[Gateway]]
    ) -> None:
        gateway = await make_gateway(payments_url=f"http://127.0.0.1:{closed_port()}")
        resp = await gateway.client.get("/readyz", headers=admin_headers())
        assert resp.status == 503
        assert (await resp.json())["checks"] == {
            "database": "ok",
            "payments": "unavailable",
            "providers": "ok",
            "webhooks": "ok",
        }


class TestOpsEndpoints:
    """API.md "Operations": on the public gateway /readyz and /metrics need the admin token or the
    ops listener; /healthz stays public."""

    @pytest.mark.parametrize("path", ["/readyz", "/metrics"])
    async def test_public_listener_refuses_them_without_the_admin_token(self, gateway: Gateway, path: str) -> None:
        _, token = await gateway.tenant_with_token()
        for headers in [{}, {"Authorization": "Bearer wrong"}, bearer(token), {"Authorization": "junk"}]:
            resp = await gateway.client.get(path, headers=headers)
            body = await problem(resp, 401, "unauthorized")
            assert "gateway_" not in body["detail"]
        assert (await gateway.client.get(path, headers=admin_headers())).status == 200

    async def test_healthz_stays_public(self, gateway: Gateway) -> None:
        assert (await gateway.client.get("/healthz")).status == 200

    async def test_ops_listener_serves_them_without_a_token(self, gateway: Gateway) -> None:
        ops = TestClient(TestServer(create_ops_app(gateway.app)))
        await ops.start_server()
        try:
            assert (await ops.get("/healthz")).status == 200
            ready = await ops.get("/readyz")
            assert ready.status == 200
            assert (await ready.json())["checks"]["database"] == "ok"
            await gateway.client.post("/v1/auth/token", json={"app_name": "nobody", "secret": "x"})
            metrics = await (await ops.get("/metrics")).text()
            assert 'route="/v1/auth/token"' in metrics
            # It serves nothing else.
            assert (await ops.get("/admin/tenants", headers=admin_headers())).status == 404
            assert (await ops.get("/v1/payments")).status == 404
        finally:
            await ops.close()


class TestRequestIds:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/healthz"),
            ("GET", "/nowhere"),
            ("GET", "/v1/payments"),
            ("POST", "/v1/auth/token"),
            ("GET", "/admin/tenants"),
            ("DELETE", "/admin/tenants"),
            ("GET", "/v1/checkout/tok"),
        ],
    )
    async def test_echoed_or_generated_on_every_response(self, gateway: Gateway, method: str, path: str) -> None:
        resp = await gateway.client.request(method, path, headers={"X-Request-Id": "client-id-1"})
        assert resp.headers["X-Request-Id"] == "client-id-1"
        resp = await gateway.client.request(method, path)
        assert resp.headers["X-Request-Id"].startswith("req_")
        resp = await gateway.client.request(method, path, headers={"X-Request-Id": "bad id\twith junk"})
        assert resp.headers["X-Request-Id"].startswith("req_")

    async def test_error_bodies_carry_the_request_id(self, gateway: Gateway) -> None:
        resp = await gateway.client.get("/nowhere", headers={"X-Request-Id": "abc"})
        body = await problem(resp, 404, "not_found")
        assert body["request_id"] == "abc"
