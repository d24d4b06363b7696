"""Internal tokens: signed once per (audience, tenant) for half their life, remembered by the receiver
once verified, and refused once expired all the same."""

import asyncio

import pytest
from aiohttp import web
from billing_runtime.app import service_app
from billing_runtime.internal_auth import INTERNAL_HEADER, InternalSigner, caller_key, sign_internal, verify_internal
from billing_runtime.metrics import Metrics
from billing_runtime.problems import ProblemError

SECRET = "internal-test-secret-0123456789abcdef"
OTHER = "another-services-key-0123456789abcdef"


def _app() -> web.Application:
    app = service_app(
        Metrics("t"), checks={}, internal_secret=SECRET, internal_audience="payments", internal_issuers={"gateway"}
    )

    async def who(request: web.Request) -> web.Response:
        return web.json_response({"tenant": request[caller_key].tenant_id})

    app.router.add_get("/v1/who", who)
    return app


class TestInternalSigner:
    def test_reuses_a_token_per_audience_and_tenant(self) -> None:
        signer = InternalSigner(SECRET, issuer="gateway")
        first = signer.token(audience="payments", tenant_id="ten_a", tenant_name="A")
        assert signer.token(audience="payments", tenant_id="ten_a", tenant_name="A") == first
        assert signer.token(audience="payments", tenant_id="ten_b", tenant_name="A") != first
        assert signer.token(audience="providers", tenant_id="ten_a", tenant_name="A") != first

    def test_signs_each_audience_with_its_own_key(self) -> None:
        signer = InternalSigner({"payments": SECRET, "webhooks": OTHER}, issuer="gateway")
        to_payments = signer.token(audience="payments", tenant_id="ten_a")
        assert verify_internal(SECRET, to_payments, audience="payments").service == "gateway"
        to_webhooks = signer.token(audience="webhooks", tenant_id="ten_a")
        assert verify_internal(OTHER, to_webhooks, audience="webhooks").tenant_id == "ten_a"
        with pytest.raises(ProblemError):
            verify_internal(SECRET, to_webhooks, audience="webhooks")
        with pytest.raises(LookupError, match="no internal key for providers"):
            signer.token(audience="providers", tenant_id="ten_a")


class TestInternalAuthMiddleware:
    async def test_remembered_token_is_refused_once_expired(self, aiohttp_client) -> None:
        client = await aiohttp_client(_app())
        token = sign_internal(SECRET, issuer="gateway", audience="payments", tenant_id="ten_a", ttl=1)
        ok = await client.get("/v1/who", headers={INTERNAL_HEADER: token})
        assert ok.status == 200
        assert await ok.json() == {"tenant": "ten_a"}
        await asyncio.sleep(1.1)
        late = await client.get("/v1/who", headers={INTERNAL_HEADER: token})
        assert late.status == 401

    async def test_an_issuer_not_allowed_is_refused_even_with_the_right_key(self, aiohttp_client) -> None:
        client = await aiohttp_client(_app())
        for issuer in ("providers", "webhooks", "payments", "Gateway"):
            token = sign_internal(SECRET, issuer=issuer, audience="payments", tenant_id="ten_a")
            resp = await client.get("/v1/who", headers={INTERNAL_HEADER: token})
            assert resp.status == 401
            assert (await resp.json())["code"] == "unauthorized"
        gateway_token = sign_internal(SECRET, issuer="gateway", audience="payments", tenant_id="ten_a")
        assert (await client.get("/v1/who", headers={INTERNAL_HEADER: gateway_token})).status == 200

    async def test_another_services_key_is_refused(self, aiohttp_client) -> None:
        client = await aiohttp_client(_app())
        token = sign_internal(OTHER, issuer="gateway", audience="payments", tenant_id="ten_a")
        assert (await client.get("/v1/who", headers={INTERNAL_HEADER: token})).status == 401

    def test_an_internal_api_must_name_its_callers(self) -> None:
        with pytest.raises(ValueError, match="allowed to call"):
            service_app(Metrics("t"), checks={}, internal_secret=SECRET, internal_audience="payments")

    async def test_wrong_audience_is_refused(self, aiohttp_client) -> None:
        client = await aiohttp_client(_app())
        token = sign_internal(SECRET, issuer="gateway", audience="providers", tenant_id="ten_a")
        assert (await client.get("/v1/who", headers={INTERNAL_HEADER: token})).status == 401


def test_the_tenant_mode_travels_in_the_token() -> None:
    live = verify_internal(
        SECRET,
        sign_internal(SECRET, issuer="gateway", audience="payments", tenant_id="t", livemode=True),
        audience="payments",
    )
    test = verify_internal(
        SECRET, sign_internal(SECRET, issuer="gateway", audience="payments", tenant_id="t"), audience="payments"
    )
    assert (live.livemode, test.livemode) == (True, False)
    signer = InternalSigner(SECRET, issuer="gateway")
    assert signer.token(audience="payments", tenant_id="t", livemode=True) != signer.token(
        audience="payments", tenant_id="t"
    )


def _confined_app() -> web.Application:
    app = service_app(
        Metrics("t"),
        checks={},
        internal_secret=SECRET,
        internal_audience="providers",
        internal_issuers={"payments", "reconciliation"},
        confined_issuers={"reconciliation": {"/internal/payments/{payment_id}/sync"}},
    )

    async def who(request: web.Request) -> web.Response:
        return web.json_response({"service": request[caller_key].service})

    app.router.add_post("/internal/payments/{payment_id}/sync", who)
    app.router.add_post("/internal/payments/start", who)
    return app


class TestConfinedIssuers:
    async def test_a_confined_issuer_reaches_only_its_routes(self, aiohttp_client) -> None:
        client = await aiohttp_client(_confined_app())
        token = sign_internal(SECRET, issuer="reconciliation", audience="providers", tenant_id=None)
        ok = await client.post("/internal/payments/pay_1/sync", headers={INTERNAL_HEADER: token})
        assert ok.status == 200
        assert await ok.json() == {"service": "reconciliation"}
        for path in ("/internal/payments/start", "/internal/nowhere"):
            refused = await client.post(path, headers={INTERNAL_HEADER: token})
            assert refused.status == 403
            assert (await refused.json())["code"] == "forbidden"

    async def test_a_confined_issuer_naming_a_tenant_is_refused(self, aiohttp_client) -> None:
        client = await aiohttp_client(_confined_app())
        token = sign_internal(SECRET, issuer="reconciliation", audience="providers", tenant_id="ten_a")
        resp = await client.post("/internal/payments/pay_1/sync", headers={INTERNAL_HEADER: token})
        assert resp.status == 401

    async def test_other_issuers_are_not_confined(self, aiohttp_client) -> None:
        client = await aiohttp_client(_confined_app())
        token = sign_internal(SECRET, issuer="payments", audience="providers", tenant_id="ten_a")
        assert (await client.post("/internal/payments/start", headers={INTERNAL_HEADER: token})).status == 200
