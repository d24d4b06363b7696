"""Credentials that can be cut off: test/live mode in the internal token, disabling a tenant, and
access tokens of a rotated-out secret that die with its grace period."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from .support import JWT_AUDIENCE, JWT_ISSUER, JWT_KEYS, FakeUpstream, Gateway, admin_headers, bearer, problem

pytestmark = pytest.mark.postgres


async def _create(gateway: Gateway, body: dict[str, Any]) -> Any:
    return await gateway.client.post("/admin/tenants", json=body, headers=admin_headers())


async def _patch(gateway: Gateway, tenant_id: str, body: object) -> Any:
    return await gateway.client.patch(f"/admin/tenants/{tenant_id}", json=body, headers=admin_headers())


class TestLivemode:
    async def test_default_is_test_mode(self, gateway: Gateway) -> None:
        tenant = await gateway.create_tenant()
        assert tenant["livemode"] is False
        fetched = await (await gateway.client.get(f"/admin/tenants/{tenant['id']}", headers=admin_headers())).json()
        assert fetched["livemode"] is False

    async def test_live_tenant_is_live_in_every_tenant_object(self, gateway: Gateway) -> None:
        resp = await _create(gateway, {"app_name": "live-shop", "display_name": "Live", "livemode": True})
        assert resp.status == 201
        tenant = await resp.json()
        assert tenant["livemode"] is True
        listed = await (await gateway.client.get("/admin/tenants", headers=admin_headers())).json()
        assert [t["livemode"] for t in listed["data"]] == [True]

    @pytest.mark.parametrize("value", ["true", 1, None, "yes"])
    async def test_livemode_must_be_a_boolean(self, gateway: Gateway, value: object) -> None:
        resp = await _create(gateway, {"app_name": "shop-1", "display_name": "S", "livemode": value})
        body = await problem(resp, 422, "validation_error")
        assert body["errors"][0]["field"] == "livemode"

    async def test_livemode_cannot_be_patched(self, gateway: Gateway) -> None:
        tenant = await gateway.create_tenant()
        resp = await _patch(gateway, tenant["id"], {"livemode": True, "disabled": False})
        body = await problem(resp, 422, "validation_error")
        assert body["errors"] == [{"field": "livemode", "message": "is fixed when the tenant is created"}]
        fetched = await (await gateway.client.get(f"/admin/tenants/{tenant['id']}", headers=admin_headers())).json()
        assert fetched["livemode"] is False

    @pytest.mark.parametrize("livemode", [True, False])
    async def test_proxied_calls_carry_the_tenants_mode(
        self, gateway: Gateway, payments: FakeUpstream, webhooks: FakeUpstream, livemode: bool
    ) -> None:
        resp = await _create(gateway, {"app_name": "shop-1", "display_name": "S", "livemode": livemode})
        tenant = await resp.json()
        token = await gateway.token("shop-1", tenant["secret"])
        await gateway.client.post("/v1/payments", json={}, headers={**bearer(token), "Idempotency-Key": "k"})
        assert payments.last.caller("payments").livemode is livemode
        await gateway.client.get("/v1/webhook-endpoints", headers=bearer(token))
        assert webhooks.last.caller("webhooks").livemode is livemode

    async def test_checkout_calls_name_no_tenant(self, gateway: Gateway, payments: FakeUpstream) -> None:
        await gateway.client.get("/v1/checkout/tok_1")
        caller = payments.last.caller("payments")
        assert caller.tenant_id is None
        assert caller.livemode is False


class TestDisableTenant:
    async def test_disabling_refuses_its_tokens_and_secret_at_once(
        self, gateway: Gateway, payments: FakeUpstream
    ) -> None:
        tenant, token = await gateway.tenant_with_token()
        assert (await gateway.client.get("/v1/payments", headers=bearer(token))).status == 200
        seen = len(payments.received)

        resp = await _patch(gateway, tenant["id"], {"disabled": True})
        assert resp.status == 200
        assert (await resp.json())["disabled"] is True

        for method, path in [("GET", "/v1/payments"), ("POST", "/v1/refunds"), ("GET", "/v1/webhook-endpoints")]:
            resp = await gateway.client.request(method, path, headers=bearer(token))
            await problem(resp, 401, "tenant_disabled")
        resp = await gateway.client.post("/v1/auth/token", json={"app_name": "shop-1", "secret": tenant["secret"]})
        await problem(resp, 401, "tenant_disabled")
        assert len(payments.received) == seen, "a disabled tenant's call reached the upstream"

    async def test_a_wrong_secret_of_a_disabled_tenant_learns_nothing(self, gateway: Gateway) -> None:
        tenant = await gateway.create_tenant()
        await _patch(gateway, tenant["id"], {"disabled": True})
        resp = await gateway.client.post("/v1/auth/token", json={"app_name": "shop-1", "secret": "sk_wrong"})
        await problem(resp, 401, "invalid_credentials")

    async def test_disabled_on_another_replica_is_refused_there_once_announced(
        self, make_gateway: Callable[..., Awaitable[Gateway]]
    ) -> None:
        # Two gateway apps on one database, as two replicas. The second keeps its copy of the tenant's
        # row for a minute: only the announcement (NOTIFY) can make it refuse, and it does promptly.
        first = await make_gateway(tenant_cache_seconds=60)
        second = await make_gateway(tenant_cache_seconds=60)
        tenant, token = await first.tenant_with_token()
        assert (await second.client.get("/v1/payments", headers=bearer(token))).status == 200
        await _patch(first, tenant["id"], {"disabled": True})
        deadline = time.monotonic() + 10  # NOTIFY and LISTEN on a loaded machine; the copy is kept 60 s
        while (resp := await second.client.get("/v1/payments", headers=bearer(token))).status == 200:
            assert time.monotonic() < deadline, "the other replica still serves a disabled tenant after 10 s"
            await asyncio.sleep(0.005)
        await problem(resp, 401, "tenant_disabled")

    async def test_enabling_again_restores_access(self, gateway: Gateway) -> None:
        tenant, token = await gateway.tenant_with_token()
        await _patch(gateway, tenant["id"], {"disabled": True})
        resp = await _patch(gateway, tenant["id"], {"disabled": False})
        assert (await resp.json())["disabled"] is False
        assert (await gateway.client.get("/v1/payments", headers=bearer(token))).status == 200
        assert await gateway.token("shop-1", tenant["secret"])

    async def test_checkout_and_provider_callbacks_keep_flowing(
        self, gateway: Gateway, payments: FakeUpstream, providers: FakeUpstream
    ) -> None:
        # Its payments keep settling: neither path is tenant-authenticated.
        tenant = await gateway.create_tenant()
        await _patch(gateway, tenant["id"], {"disabled": True})
        assert (await gateway.client.get("/v1/checkout/tok_1")).status == 200
        assert (await gateway.client.post("/billing/sandbox", data=b"{}")).status == 200
        assert providers.last.path_qs == "/billing/sandbox"

    @pytest.mark.parametrize(
        "body",
        [{}, {"disabled": "true"}, {"disabled": 1}, {"disabled": None}, {"display_name": "x"}, [], "x"],
    )
    async def test_bad_patch_bodies_get_422_or_400_and_change_nothing(self, gateway: Gateway, body: object) -> None:
        tenant = await gateway.create_tenant()
        resp = await _patch(gateway, tenant["id"], body)
        await problem(resp, 400 if not isinstance(body, dict) else 422, {"validation_error", "invalid_json"})
        fetched = await (await gateway.client.get(f"/admin/tenants/{tenant['id']}", headers=admin_headers())).json()
        assert fetched["disabled"] is False
        assert fetched["updated_at"] == tenant["updated_at"]

    async def test_unknown_tenant_returns_404(self, gateway: Gateway) -> None:
        for tenant_id in ["ten_zzzzzzzzzzzzzzzzzzzzzzzzzz", "nope"]:
            await problem(await _patch(gateway, tenant_id, {"disabled": True}), 404, "not_found")


def _past_the_grace_period(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateway's clock 25 hours on (the tokens' own expiry is pyjwt's, on the real clock)."""
    later = datetime.now(UTC) + timedelta(hours=25)
    monkeypatch.setattr("gateway.proxy.utcnow", lambda: later)


class TestRotatedSecretTokens:
    async def _rotate(self, gateway: Gateway, tenant_id: str) -> dict[str, Any]:
        resp = await gateway.client.post(f"/admin/tenants/{tenant_id}/rotate-secret", headers=admin_headers())
        assert resp.status == 200
        return dict(await resp.json())

    async def test_old_secrets_tokens_work_in_grace_and_stop_when_it_ends(
        self, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        tenant, old_token = await gateway.tenant_with_token()
        rotated = await self._rotate(gateway, tenant["id"])
        new_token = await gateway.token("shop-1", rotated["secret"])
        # Minted with the old secret during the grace period: as short-lived as the old secret.
        late_old_token = await gateway.token("shop-1", tenant["secret"])
        for token in (old_token, late_old_token, new_token):
            assert (await gateway.client.get("/v1/payments", headers=bearer(token))).status == 200

        # The grace period (24 h) ends: only the clock moves, no change is announced, and the copy of
        # the tenant's row this replica keeps is checked against the clock on every request.
        _past_the_grace_period(monkeypatch)
        for token in (old_token, late_old_token):
            await problem(await gateway.client.get("/v1/payments", headers=bearer(token)), 401, "token_revoked")
        assert (await gateway.client.get("/v1/payments", headers=bearer(new_token))).status == 200

    async def test_a_token_minted_before_generations_is_a_generation_1_token(
        self, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Tokens issued by the gateway before this release carry no ``gen``: they keep working (the
        deploy logs nobody out) until a rotation's grace period ends, like any token of the first secret."""
        tenant, _ = await gateway.tenant_with_token()
        now = int(time.time())
        claims = {
            "sub": tenant["id"],
            "tenant_id": tenant["id"],
            "iss": JWT_ISSUER,
            "aud": JWT_AUDIENCE,
            "iat": now,
            "exp": now + 600,
            "purpose": "tenant_access",
        }
        legacy = jwt.encode(claims, JWT_KEYS["k2"], algorithm="HS256", headers={"kid": "k2"})
        assert (await gateway.client.get("/v1/payments", headers=bearer(legacy))).status == 200
        await self._rotate(gateway, tenant["id"])
        assert (await gateway.client.get("/v1/payments", headers=bearer(legacy))).status == 200
        _past_the_grace_period(monkeypatch)
        await problem(await gateway.client.get("/v1/payments", headers=bearer(legacy)), 401, "token_revoked")

    async def test_rotating_twice_retires_the_oldest_generation_at_once(self, gateway: Gateway) -> None:
        tenant, first_token = await gateway.tenant_with_token()
        second = await self._rotate(gateway, tenant["id"])
        second_token = await gateway.token("shop-1", second["secret"])
        await self._rotate(gateway, tenant["id"])
        await problem(await gateway.client.get("/v1/payments", headers=bearer(first_token)), 401, "token_revoked")
        # The second secret is now the previous one, in its grace period.
        assert (await gateway.client.get("/v1/payments", headers=bearer(second_token))).status == 200

    async def test_zero_grace_retires_old_tokens_immediately(
        self, make_gateway: Callable[..., Awaitable[Gateway]]
    ) -> None:
        gateway = await make_gateway(secret_grace_period=0)
        tenant, token = await gateway.tenant_with_token()
        await self._rotate(gateway, tenant["id"])
        await problem(await gateway.client.get("/v1/payments", headers=bearer(token)), 401, "token_revoked")
