"""Token caching: one exchange reused until 5 minutes before expiry, one exchange for N concurrent
callers (async tasks and threads), one refresh and one retry on a 401. Against the real embedded
platform, the exchanges counted by a loopback proxy; expiry with a clock the test moves."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from billing_client import AsyncBillingClient, AuthenticationError, BillingClient, NotFoundError
from billing_client.models import AccessTokenGrant
from billing_client.tokens import REFRESH_MARGIN, token_from_grant

from .proxy import proxying
from .scripted import fake_jwt, scripted
from .support import Tenant, first_page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOKEN = ("POST", "/v1/auth/token")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestConcurrentCallers:
    async def test_twenty_tasks_share_one_exchange(self, tenant: Tenant) -> None:
        async with (
            proxying(tenant.gateway_url) as proxy,
            AsyncBillingClient(proxy.url, tenant.app_name, tenant.secret) as client,
        ):
            pages = await asyncio.gather(*(first_page(client.events.list(limit=1)) for _ in range(20)))
            assert all(page.data == [] for page in pages)
            await client.payments.create(amount=5000, currency="USD", order_id="o-1")
        assert proxy.count(*TOKEN) == 1
        assert proxy.count("GET", "/v1/events") == 20

    async def test_eight_threads_share_one_exchange(self, tenant: Tenant) -> None:
        async with proxying(tenant.gateway_url) as proxy:

            def many() -> list[str]:
                with BillingClient(proxy.url, tenant.app_name, tenant.secret) as client, ThreadPoolExecutor(8) as pool:
                    created = pool.map(
                        lambda i: client.payments.create(amount=5000, currency="USD", order_id=f"o-{i}"), range(8)
                    )
                    return [p.id for p in created]

            ids = await asyncio.to_thread(many)
        assert len(set(ids)) == 8
        assert proxy.count(*TOKEN) == 1


class TestExpiry:
    async def test_refreshed_five_minutes_before_expiry(self, tenant: Tenant) -> None:
        clock = FakeClock()
        async with (
            proxying(tenant.gateway_url) as proxy,
            AsyncBillingClient(proxy.url, tenant.app_name, tenant.secret, clock=clock) as client,
        ):
            await first_page(client.payments.list(limit=1))
            # The platform's tokens live 24 h: reused up to 5 minutes before that...
            # (A few seconds short: the token's ``exp`` counts from the gateway's whole-second ``iat``.)
            clock.now += 86400 - REFRESH_MARGIN - 5
            await first_page(client.payments.list(limit=1))
            assert proxy.count(*TOKEN) == 1
            # ... and exchanged again from then on.
            clock.now += 10
            await first_page(client.payments.list(limit=1))
        assert proxy.count(*TOKEN) == 2

    def test_the_sooner_of_expires_in_and_exp_counts(self) -> None:
        grant = AccessTokenGrant(access_token=fake_jwt(1200), expires_in=86400)
        assert token_from_grant(grant, now=0).refresh_at == pytest.approx(1200 - REFRESH_MARGIN, abs=2)

    def test_a_short_token_is_used_for_half_its_life(self) -> None:
        grant = AccessTokenGrant(access_token="not-a-jwt", expires_in=120)
        assert token_from_grant(grant, now=0).refresh_at == 60


class TestUnauthorized:
    async def test_a_401_refreshes_once_and_retries_once(self, tenant: Tenant) -> None:
        async with (
            proxying(tenant.gateway_url) as proxy,
            AsyncBillingClient(proxy.url, tenant.app_name, tenant.secret) as client,
        ):
            created = await client.payments.create(amount=5000, currency="USD", order_id="o-1")
            proxy.forge_token_next.add(f"/v1/payments/{created.id}")
            assert (await client.payments.retrieve(created.id)).id == created.id
        assert [s.status for s in proxy.of("GET", f"/v1/payments/{created.id}")] == [401, 200]
        assert proxy.count(*TOKEN) == 2

    async def test_a_disabled_tenant_gets_authentication_error_after_one_refresh(self, tenant: Tenant) -> None:
        async with (
            proxying(tenant.gateway_url) as proxy,
            AsyncBillingClient(proxy.url, tenant.app_name, tenant.secret) as client,
        ):
            await first_page(client.payments.list(limit=1))
            async with httpx.AsyncClient() as admin:
                r = await admin.patch(
                    f"{tenant.gateway_url}/admin/tenants/{tenant.id}",
                    json={"disabled": True},
                    headers={"Authorization": f"Bearer {tenant.admin_token}"},
                )
                assert r.status_code == 200, r.text
            with pytest.raises(AuthenticationError) as raised:
                await client.payments.retrieve("pay_0000000000000000")
        assert raised.value.status == 401 and raised.value.code
        # The refused token, then one exchange (refused too): no loop.
        assert proxy.count("GET", "/v1/payments/pay_0000000000000000") == 1
        assert proxy.count(*TOKEN) == 2

    async def test_wrong_secret_is_authentication_error(self, tenant: Tenant) -> None:
        async with AsyncBillingClient(tenant.gateway_url, tenant.app_name, "wrong-secret") as client:
            with pytest.raises(AuthenticationError) as raised:
                await client.payments.retrieve("pay_1")
        assert raised.value.status == 401 and raised.value.request_id

    async def test_a_scripted_401_after_refresh_raises_not_loops(self) -> None:
        from .scripted import Step, problem

        steps = [Step(401, problem(401, "invalid_token")), Step(401, problem(401, "invalid_token"))]
        async with (
            scripted(*steps, Step(404, problem(404, "not_found"))) as s,
            AsyncBillingClient(s.url, "shop", "secret") as client,
        ):
            with pytest.raises(AuthenticationError):
                await client.payments.retrieve("pay_1")
            # The next call starts afresh (the one after it would be a 404).
            with pytest.raises(NotFoundError):
                await client.payments.retrieve("pay_1")
        assert s.token_requests == 3
