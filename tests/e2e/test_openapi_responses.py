"""Real answers of a platform flow validate against the OpenAPI document's schemas, whose response
objects are closed: a field a handler returns that the document lacks fails, and so does a required
field the document lists that the answer lacks."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from .openapi_conformance import Conformance, load_document

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


class Caller:
    def __init__(self, http: aiohttp.ClientSession, base: str, conformance: Conformance) -> None:
        self.http, self.base, self.conformance = http, base, conformance

    async def call(self, method: str, template: str, expected: int, *, path: str | None = None, **kwargs: Any) -> Any:
        async with self.http.request(method, self.base + (path or template), **kwargs) as r:
            body = await r.json(content_type=None)
            assert r.status == expected, (method, path or template, r.status, body)
            self.conformance.check(method, template, r.status, r.content_type, body)
            return body


async def _receiver(aiohttp_server: Any, received: list[dict[str, Any]]) -> str:
    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app, host="127.0.0.1")
    return f"http://127.0.0.1:{server.port}/hook"


class TestResponsesMatchTheDocument:
    async def test_a_platform_flow(self, embedded_platform: Any, aiohttp_server: Any) -> None:
        platform = embedded_platform
        conformance = Conformance(load_document())
        received: list[dict[str, Any]] = []
        admin = {"Authorization": f"Bearer {platform.admin_token}"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            c = Caller(http, platform.gateway_url, conformance)
            app_name = f"shop-{secrets.token_hex(4)}"
            tenant = await c.call(
                "POST", "/admin/tenants", 201, json={"app_name": app_name, "display_name": "Shop"}, headers=admin
            )
            tid = tenant["id"]
            await c.call("GET", "/admin/tenants/{tenant_id}", 200, path=f"/admin/tenants/{tid}", headers=admin)
            await c.call("GET", "/admin/tenants", 200, headers=admin)
            token = await c.call("POST", "/v1/auth/token", 200, json={"app_name": app_name, "secret": tenant["secret"]})
            auth = {"Authorization": f"Bearer {token['access_token']}"}

            endpoint = await c.call(
                "POST",
                "/v1/webhook-endpoints",
                201,
                json={"url": await _receiver(aiohttp_server, received), "events": ["*"]},
                headers=auth,
            )
            eid = endpoint["id"]
            await c.call("GET", "/v1/webhook-endpoints", 200, headers=auth)
            await c.call(
                "GET", "/v1/webhook-endpoints/{endpoint_id}", 200, path=f"/v1/webhook-endpoints/{eid}", headers=auth
            )

            payment = await c.call(
                "POST",
                "/v1/payments",
                201,
                json={"amount": 5000, "currency": "USD", "order_id": "o-1", "customer": {"email": "a@b.example"}},
                headers={**auth, "Idempotency-Key": "k-1"},
            )
            pid, checkout = payment["id"], payment["checkout_token"]
            await c.call("GET", "/v1/payments", 200, headers=auth)
            await c.call("GET", "/v1/checkout/{token}", 200, path=f"/v1/checkout/{checkout}")
            pay = await c.call(
                "POST",
                "/v1/checkout/{token}/pay",
                200,
                path=f"/v1/checkout/{checkout}/pay",
                json={"provider": "sandbox"},
            )
            async with http.post(pay["redirect_url"], data={"outcome": "succeed"}, allow_redirects=False) as r:
                assert r.status == 303
            for _ in range(300):
                paid = await c.call("GET", "/v1/payments/{payment_id}", 200, path=f"/v1/payments/{pid}", headers=auth)
                if paid["status"] == "SUCCEEDED":
                    break
                await asyncio.sleep(0.1)
            assert paid["status"] == "SUCCEEDED"
            await c.call(
                "GET", "/v1/payments/{payment_id}/history", 200, path=f"/v1/payments/{pid}/history", headers=auth
            )

            refund = await c.call(
                "POST",
                "/v1/payments/{payment_id}/refunds",
                201,
                path=f"/v1/payments/{pid}/refunds",
                json={"amount": 2000, "reason": "requested_by_customer"},
                headers={**auth, "Idempotency-Key": "r-1"},
            )
            await c.call("GET", "/v1/refunds/{refund_id}", 200, path=f"/v1/refunds/{refund['id']}", headers=auth)
            await c.call(
                "GET", "/v1/payments/{payment_id}/refunds", 200, path=f"/v1/payments/{pid}/refunds", headers=auth
            )
            events = await c.call("GET", "/v1/events", 200, headers=auth)
            assert events["data"]
            mine = await c.call("GET", "/v1/events", 200, path=f"/v1/events?payment_id={pid}", headers=auth)
            assert {e["data"]["payment"]["id"] for e in mine["data"]} == {pid}
            offered = await c.call("GET", "/v1/providers", 200, headers=auth)
            assert "sandbox" in {p["name"] for p in offered["data"]}

            await c.call(
                "POST",
                "/v1/webhook-endpoints/{endpoint_id}/test",
                202,
                path=f"/v1/webhook-endpoints/{eid}/test",
                headers=auth,
            )
            for _ in range(300):
                deliveries = await c.call("GET", "/v1/webhook-deliveries", 200, headers=auth)
                if any(d["attempt_count"] for d in deliveries["data"]):
                    break
                await asyncio.sleep(0.1)
            delivery = next(d for d in deliveries["data"] if d["attempt_count"])
            await c.call(
                "GET",
                "/v1/webhook-deliveries/{delivery_id}",
                200,
                path=f"/v1/webhook-deliveries/{delivery['id']}",
                headers=auth,
            )

            # Errors are problem+json with the declared schema too.
            await c.call("GET", "/v1/payments/{payment_id}", 404, path="/v1/payments/pay_0nothing", headers=auth)
            await c.call("POST", "/v1/payments", 400, json={"amount": 1}, headers=auth)
            await c.call("GET", "/v1/payments", 401)
            await c.call("GET", "/admin/tenants", 403, headers=auth)
            await c.call(
                "POST", "/v1/payments", 422, json={"amount": "x"}, headers={**auth, "Idempotency-Key": "bad-1"}
            )
            await c.call(
                "POST",
                "/admin/tenants/{tenant_id}/rotate-secret",
                200,
                path=f"/admin/tenants/{tid}/rotate-secret",
                headers=admin,
            )
            await c.call(
                "PATCH",
                "/admin/tenants/{tenant_id}",
                200,
                path=f"/admin/tenants/{tid}",
                json={"disabled": True},
                headers=admin,
            )
            # The webhooks sent meanwhile match the document's ``webhooks`` too.
            wanted = {"payment.created", "payment.pending", "payment.succeeded", "refund.created", "webhook.test"}
            for _ in range(300):
                if wanted <= {body["type"] for body in received}:
                    break
                await asyncio.sleep(0.1)
            assert wanted <= {body["type"] for body in received}, [body["type"] for body in received]
            for body in received:
                conformance.check_webhook(body)
        assert len(conformance.checked) >= 30
