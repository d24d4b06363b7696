from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from billing_runtime.internal_auth import INTERNAL_HEADER
from gateway.db.models import Tenant
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from .support import FakeUpstream, Gateway, Reply, admin_headers, bearer, closed_port, problem, raw_request

pytestmark = pytest.mark.postgres

PROBLEM = b'{"type":"about:blank","title":"Conflict","status":409,"code":"idempotency_key_in_use","detail":"x"}'


class TestTenantRoutes:
    @pytest.mark.parametrize(
        "path",
        [
            "/v1/payments",
            "/v1/payments?limit=5&status=CREATED&order_id=a%20b",
            "/v1/payments/pay_123",
            "/v1/payments/pay_123/refunds",
            "/v1/refunds/rfnd_1",
            "/v1/events?after=evt_1&limit=10",
        ],
    )
    async def test_get_is_forwarded_with_tenant_in_internal_token(
        self, gateway: Gateway, payments: FakeUpstream, providers: FakeUpstream, path: str
    ) -> None:
        tenant, token = await gateway.tenant_with_token()
        resp = await gateway.client.get(path, headers=bearer(token))
        assert resp.status == 200
        assert await resp.json() == {"ok": True}

        received = payments.last
        assert received.method == "GET"
        assert received.path_qs == path
        caller = received.caller("payments")
        assert caller.service == "gateway"
        assert caller.tenant_id == tenant["id"]
        assert caller.tenant_name == "Shop One"
        # The tenant's own bearer token never travels further than the gateway.
        assert "Authorization" not in received.headers
        assert providers.received == []

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/v1/webhook-endpoints"),
            ("POST", "/v1/webhook-endpoints/we_1/rotate-secret"),
            ("DELETE", "/v1/webhook-endpoints/we_1"),
            ("GET", "/v1/webhook-deliveries?endpoint_id=we_1&status=failed"),
            ("POST", "/v1/webhook-deliveries/wd_1/retry"),
        ],
    )
    async def test_webhook_routes_go_to_the_dispatcher_with_its_audience(
        self, gateway: Gateway, payments: FakeUpstream, webhooks: FakeUpstream, method: str, path: str
    ) -> None:
        tenant, token = await gateway.tenant_with_token()
        resp = await gateway.client.request(method, path, headers=bearer(token))
        assert resp.status == 200
        received = webhooks.last
        assert (received.method, received.path_qs) == (method, path)
        assert received.caller("webhooks").tenant_id == tenant["id"]
        assert payments.received == []

    async def test_webhook_routes_require_a_tenant_token(self, gateway: Gateway, webhooks: FakeUpstream) -> None:
        resp = await gateway.client.get("/v1/webhook-endpoints")
        assert resp.status == 401
        assert webhooks.received == []

    async def test_post_forwards_raw_body_and_listed_headers_only(
        self, gateway: Gateway, payments: FakeUpstream
    ) -> None:
        _, token = await gateway.tenant_with_token()
        raw = b'{"amount": 5000,   "currency": "USD", "order_id": "o-1", "note": "\\u00e9"}'
        resp = await gateway.client.post(
            "/v1/payments",
            data=raw,
            headers={
                **bearer(token),
                "Content-Type": "application/json",
                "Idempotency-Key": "key-1",
                "Accept": "application/json",
                "Accept-Language": "uz",
                "X-Request-Id": "req-from-client",
                "X-Internal-Auth": "forged",
                "Cookie": "session=1",
                "X-Forwarded-For": "10.0.0.1",
            },
        )
        assert resp.status == 200
        assert resp.headers["X-Request-Id"] == "req-from-client"
        received = payments.last
        assert received.body == raw
        assert received.headers["Content-Type"] == "application/json"
        assert received.headers["Idempotency-Key"] == "key-1"
        assert received.headers["Accept"] == "application/json"
        assert received.headers["Accept-Language"] == "uz"
        assert received.headers["X-Request-Id"] == "req-from-client"
        assert received.headers[INTERNAL_HEADER] != "forged"
        assert received.caller("payments").tenant_id is not None
        for dropped in ("Cookie", "X-Forwarded-For", "Authorization"):
            assert dropped not in received.headers

    async def test_generated_request_id_is_forwarded_and_returned(
        self, gateway: Gateway, payments: FakeUpstream
    ) -> None:
        _, token = await gateway.tenant_with_token()
        resp = await gateway.client.get("/v1/payments", headers=bearer(token))
        assert resp.headers["X-Request-Id"].startswith("req_")
        assert payments.last.headers["X-Request-Id"] == resp.headers["X-Request-Id"]

    async def test_upstream_problem_is_passed_through_unchanged(self, gateway: Gateway, payments: FakeUpstream) -> None:
        _, token = await gateway.tenant_with_token()
        payments.reply(
            "POST",
            "/v1/payments",
            Reply(
                409,
                PROBLEM,
                {
                    "Content-Type": "application/problem+json",
                    "Retry-After": "3",
                    "X-Upstream-Secret": "do-not-leak",
                    "Set-Cookie": "a=b",
                },
            ),
        )
        resp = await gateway.client.post("/v1/payments", json={}, headers=bearer(token))
        assert resp.status == 409
        assert await resp.read() == PROBLEM
        assert resp.headers["Content-Type"] == "application/problem+json"
        assert resp.headers["Retry-After"] == "3"
        assert "X-Upstream-Secret" not in resp.headers
        assert "Set-Cookie" not in resp.headers

    async def test_replayed_response_keeps_idempotent_replayed(self, gateway: Gateway, payments: FakeUpstream) -> None:
        _, token = await gateway.tenant_with_token()
        body = b'{"id": "pay_1", "object": "payment"}'
        payments.reply(
            "POST",
            "/v1/payments",
            Reply(201, body, {"Content-Type": "application/json", "Idempotent-Replayed": "true", "Location": "/x"}),
        )
        resp = await gateway.client.post("/v1/payments", json={}, headers={**bearer(token), "Idempotency-Key": "k"})
        assert resp.status == 201
        assert await resp.read() == body
        assert resp.headers["Idempotent-Replayed"] == "true"
        assert resp.headers["Location"] == "/x"

    async def test_tenant_row_is_read_on_every_request_without_a_cache(
        self, make_gateway: Callable[..., Awaitable[Gateway]], payments: FakeUpstream, engine: AsyncEngine
    ) -> None:
        # tenant_cache_seconds=0: a change made behind the gateway's back (a rename here) shows at once.
        gateway = await make_gateway(tenant_cache_seconds=0)
        tenant, token = await gateway.tenant_with_token()
        await gateway.client.get("/v1/payments", headers=bearer(token))
        async with engine.begin() as conn:
            await conn.execute(update(Tenant).where(Tenant.id == tenant["id"]).values(display_name="Renamed"))
        await gateway.client.get("/v1/payments", headers=bearer(token))
        assert payments.last.caller("payments").tenant_name == "Renamed"

    async def test_unknown_v1_path_returns_404(self, gateway: Gateway, payments: FakeUpstream) -> None:
        _, token = await gateway.tenant_with_token()
        for path in ["/v1/nothing", "/v1/paymentsx", "/v1", "/v1/", "/v2/payments", "/internal/payments/start"]:
            resp = await gateway.client.get(path, headers=bearer(token))
            await problem(resp, 404, "not_found")
        assert payments.received == []

    @pytest.mark.parametrize(
        "path",
        [
            "/v1/checkout/../internal/payments/start",
            "/v1/checkout/%2e%2e/internal/payments/start",
            "/v1/checkout/..%2Finternal%2Fpayments%2Fstart",
            "/v1/checkout/tok%2F..%2F..%2Finternal",
            "/v1/payments/./x",
            "/billing/..%5cinternal",
            "/sandbox/%2E%2E/internal",
        ],
    )
    async def test_path_traversal_is_refused(
        self, gateway: Gateway, payments: FakeUpstream, providers: FakeUpstream, path: str
    ) -> None:
        _, token = await gateway.tenant_with_token()
        resp = await raw_request(gateway.client, "GET", path, bearer(token))
        assert resp.status == 404
        assert resp.headers["Content-Type"] == "application/problem+json"
        assert resp.json()["code"] == "not_found"
        assert payments.received == providers.received == []


class TestPublicRoutes:
    async def test_checkout_is_forwarded_without_tenant(self, gateway: Gateway, payments: FakeUpstream) -> None:
        resp = await gateway.client.get("/v1/checkout/tok_abc")
        assert resp.status == 200
        resp = await gateway.client.post(
            "/v1/checkout/tok_abc/pay",
            json={"provider": "sandbox"},
            headers={"Authorization": "Bearer whatever"},
        )
        assert resp.status == 200
        received = payments.last
        assert received.path_qs == "/v1/checkout/tok_abc/pay"
        assert json.loads(received.body) == {"provider": "sandbox"}
        caller = received.caller("payments")
        assert caller.tenant_id is None
        assert caller.tenant_name is None
        assert "Authorization" not in received.headers

    async def test_billing_callback_keeps_authorization(
        self, gateway: Gateway, payments: FakeUpstream, providers: FakeUpstream
    ) -> None:
        answer = b'{"jsonrpc":"2.0","error":{"code":-32504}}'
        providers.reply("POST", "/billing/payme", Reply(200, answer, {"Content-Type": "application/json"}))
        raw = b'{"jsonrpc": "2.0", "id": 1, "method": "CheckPerformTransaction", "params": {}}'
        resp = await gateway.client.post(
            "/billing/payme",
            data=raw,
            headers={
                "Authorization": "Basic UGF5Y29tOnNlY3JldA==",
                "Content-Type": "application/json; charset=utf-8",
            },
        )
        assert resp.status == 200
        assert await resp.read() == answer
        received = providers.last
        assert received.path_qs == "/billing/payme"
        assert received.body == raw
        assert received.headers["Authorization"] == "Basic UGF5Y29tOnNlY3JldA=="
        assert received.headers["Content-Type"] == "application/json; charset=utf-8"
        assert INTERNAL_HEADER not in received.headers
        assert payments.received == []

    async def test_signature_headers_are_forwarded(self, gateway: Gateway, providers: FakeUpstream) -> None:
        await gateway.client.post(
            "/billing/stripe",
            data=b"{}",
            headers={"Stripe-Signature": "t=1,v1=abc", "Content-Type": "application/json"},
        )
        assert providers.last.headers["Stripe-Signature"] == "t=1,v1=abc"
        await gateway.client.post(
            "/billing/sandbox",
            data=b"{}",
            headers={"Sandbox-Signature": "t=1,v1=def", "Content-Type": "application/json"},
        )
        assert providers.last.headers["Sandbox-Signature"] == "t=1,v1=def"

    async def test_sandbox_form_redirect_is_returned_not_followed(
        self, gateway: Gateway, providers: FakeUpstream
    ) -> None:
        providers.reply("POST", "/sandbox/pay/ptx_1", Reply(303, b"", {"Location": "http://127.0.0.1:9/return"}))
        resp = await gateway.client.post("/sandbox/pay/ptx_1", data={"outcome": "succeed"}, allow_redirects=False)
        assert resp.status == 303
        assert resp.headers["Location"] == "http://127.0.0.1:9/return"
        assert providers.last.body == b"outcome=succeed"
        assert providers.last.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert "Authorization" not in providers.last.headers

    async def test_sandbox_page_html_is_passed_through(self, gateway: Gateway, providers: FakeUpstream) -> None:
        page = b"<html><body>Sandbox bank</body></html>"
        providers.reply("GET", "/sandbox/pay/ptx_1", Reply(200, page, {"Content-Type": "text/html; charset=utf-8"}))
        resp = await gateway.client.get("/sandbox/pay/ptx_1", headers={"Authorization": "Bearer x"})
        assert resp.status == 200
        assert await resp.read() == page
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "Authorization" not in providers.last.headers

    async def test_a_stripe_event_reaches_providers_byte_for_byte(
        self, gateway: Gateway, providers: FakeUpstream
    ) -> None:
        # Stripe signs the exact bytes: spacing, key order and escapes must survive the relay.
        raw = b'{\n  "id": "evt_1",  "type": "payment_intent.succeeded", "x": "\\u00e9\xc3\xa9"\n}'
        resp = await gateway.client.post(
            "/billing/stripe",
            data=raw,
            headers={"Stripe-Signature": "t=1,v1=abc,v1=def", "Content-Type": "application/json; charset=utf-8"},
        )
        assert resp.status == 200
        assert providers.last.body == raw
        assert providers.last.headers["Stripe-Signature"] == "t=1,v1=abc,v1=def"

    async def test_stripe_payer_pages_keep_their_security_headers(
        self, gateway: Gateway, providers: FakeUpstream
    ) -> None:
        headers = {
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; script-src https://js.stripe.com",
            "Referrer-Policy": "no-referrer",
        }
        providers.reply("GET", "/pay/stripe/ptx_1/tok", Reply(200, b"<html></html>", headers))
        resp = await gateway.client.get("/pay/stripe/ptx_1/tok", headers={"Authorization": "Bearer x"})
        assert resp.status == 200
        for name, value in headers.items():
            assert resp.headers[name] == value
        assert "Authorization" not in providers.last.headers
        assert "X-Internal-Auth" not in providers.last.headers

    async def test_simulator_pages_go_to_providers_without_credentials(
        self, gateway: Gateway, providers: FakeUpstream
    ) -> None:
        providers.reply("POST", "/simulators/payme/pay/ptx_1", Reply(303, b"", {"Location": "http://127.0.0.1:9/r"}))
        resp = await gateway.client.post(
            "/simulators/payme/pay/ptx_1",
            data={"outcome": "pay"},
            headers={"Authorization": "Bearer x"},
            allow_redirects=False,
        )
        assert resp.status == 303
        assert resp.headers["Location"] == "http://127.0.0.1:9/r"
        assert providers.last.body == b"outcome=pay"
        assert "Authorization" not in providers.last.headers
        assert "X-Internal-Auth" not in providers.last.headers

    async def test_simulator_apis_get_their_auth_and_outcome_headers(
        self, gateway: Gateway, providers: FakeUpstream
    ) -> None:
        # Our Click adapter reaches the Click simulator's Merchant API through the gateway: Click's
        # ``Auth`` header is its credential and ``X-Simulator-Outcome`` a refund's test outcome.
        path = "/simulators/click/merchant/payment/reversal/1/42"
        providers.reply("DELETE", path, Reply(200, b'{"error_code": 0}', {"Content-Type": "application/json"}))
        sent = {"Auth": "7:abc:1700000000", "X-Simulator-Outcome": "fail"}
        resp = await gateway.client.delete(path, headers=sent)
        assert resp.status == 200
        for name, value in sent.items():
            assert providers.last.headers[name] == value
        # Anywhere else they are dropped like any other header.
        await gateway.client.post("/billing/click/complete", data=b"", headers=sent)
        assert providers.last.path_qs == "/billing/click/complete"
        assert not set(sent) & set(providers.last.headers)


class TestUpstreamFailures:
    async def test_upstream_down_returns_503_quickly(self, make_gateway: Callable[..., Awaitable[Gateway]]) -> None:
        dead = f"http://127.0.0.1:{closed_port()}"
        gateway = await make_gateway(payments_url=dead, providers_url=dead)
        _, token = await gateway.tenant_with_token()
        for method, path, headers in [
            ("GET", "/v1/payments", bearer(token)),
            ("POST", "/v1/checkout/tok/pay", {}),
        ]:
            started = time.monotonic()
            resp = await gateway.client.request(method, path, headers=headers, json={})
            body = await problem(resp, 503, "upstream_unavailable")
            assert time.monotonic() - started < 2
            assert resp.headers["Retry-After"].isdigit()
            assert "127.0.0.1" not in body["detail"]

    async def test_slow_upstream_times_out_with_503(
        self, make_gateway: Callable[..., Awaitable[Gateway]], payments: FakeUpstream
    ) -> None:
        gateway = await make_gateway(upstream_timeout=0.3)
        payments.reply("GET", "/v1/checkout/slow", Reply(delay=5))
        started = time.monotonic()
        resp = await gateway.client.get("/v1/checkout/slow")
        await problem(resp, 503, "upstream_unavailable")
        assert time.monotonic() - started < 2
        metrics = await (await gateway.client.get("/metrics", headers=admin_headers())).text()
        assert 'gateway_upstream_failures_total{reason="timeout",upstream="payments"} 1.0' in metrics


class TestBodyLimit:
    async def test_body_over_64_kib_returns_413(self, gateway: Gateway, payments: FakeUpstream) -> None:
        _, token = await gateway.tenant_with_token()
        big = b'{"x": "' + b"a" * (64 * 1024) + b'"}'
        for path, headers in [
            ("/v1/payments", bearer(token)),
            ("/v1/checkout/t/pay", {}),
        ]:
            resp = await gateway.client.post(path, data=big, headers={**headers, "Content-Type": "application/json"})
            await problem(resp, 413, "payload_too_large")
        resp = await gateway.client.post("/v1/auth/token", data=big, headers={"Content-Type": "application/json"})
        await problem(resp, 413, "payload_too_large")
        assert payments.received == []

    async def test_chunked_body_over_the_limit_returns_413(self, gateway: Gateway, payments: FakeUpstream) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(20):
                yield b"a" * 8192
                await asyncio.sleep(0)

        resp = await gateway.client.post(
            "/v1/checkout/t/pay", data=chunks(), headers={"Content-Type": "application/json"}
        )
        await problem(resp, 413, "payload_too_large")
        assert payments.received == []

    async def test_body_at_the_limit_is_forwarded(self, gateway: Gateway, payments: FakeUpstream) -> None:
        body = b"a" * (64 * 1024 - 1)
        resp = await gateway.client.post("/v1/checkout/t/pay", data=body, headers={"Content-Type": "application/json"})
        assert resp.status == 200
        assert payments.last.body == body


class TestRateLimit:
    async def test_burst_then_429_with_retry_after(
        self, make_gateway: Callable[..., Awaitable[Gateway]], payments: FakeUpstream
    ) -> None:
        gateway = await make_gateway(rate_limit_per_second=0.5, rate_limit_burst=3)
        _, token = await gateway.tenant_with_token("shop-1")
        _, other = await gateway.tenant_with_token("shop-2")
        for _ in range(3):
            assert (await gateway.client.get("/v1/payments", headers=bearer(token))).status == 200
        resp = await gateway.client.get("/v1/payments", headers=bearer(token))
        await problem(resp, 429, "rate_limited")
        assert resp.headers["Retry-After"] == "2"
        assert len(payments.received) == 3
        # Buckets are per tenant.
        assert (await gateway.client.get("/v1/payments", headers=bearer(other))).status == 200
