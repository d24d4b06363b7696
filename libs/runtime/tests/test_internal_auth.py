"""Internal tokens: signed once per (audience, tenant) for half their life, remembered by the receiver
once verified, and refused once expired all the same."""

import asyncio

from aiohttp import web
from billing_runtime.app import service_app
from billing_runtime.internal_auth import INTERNAL_HEADER, InternalSigner, caller_key, sign_internal, verify_internal
from billing_runtime.metrics import Metrics

SECRET = "internal-test-secret-0123456789abcdef"


def _app() -> web.Application:
    app = service_app(Metrics("t"), checks={}, internal_secret=SECRET, internal_audience="payments")

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
