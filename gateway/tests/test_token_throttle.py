"""``POST /v1/auth/token`` cannot be flooded: token buckets per client address and per app name, and
a bounded hashing pool that fails fast instead of queueing without limit."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from argon2 import PasswordHasher
from gateway.app import create_app
from gateway.tenant_secrets import SecretHasher
from gateway.token_throttle import client_address, parse_networks

from .support import Gateway, admin_headers, closed_port, problem

TRUSTED = parse_networks(["10.0.0.0/8", "127.0.0.1"])


class TestClientAddress:
    @pytest.mark.parametrize(
        ("peer", "forwarded", "expected"),
        [
            ("203.0.113.9", None, "203.0.113.9"),
            # An untrusted peer's X-Forwarded-For is ignored: anyone can write one.
            ("203.0.113.9", "198.51.100.1", "203.0.113.9"),
            # Behind a trusted proxy: the hop it saw.
            ("127.0.0.1", "198.51.100.1", "198.51.100.1"),
            # A client-prepended entry does not move it: the nearest untrusted hop wins.
            ("127.0.0.1", "1.2.3.4, 198.51.100.1, 10.1.2.3", "198.51.100.1"),
            # Only trusted hops: the farthest of them.
            ("127.0.0.1", "10.0.0.5", "10.0.0.5"),
            # Junk stops the walk at the last good hop.
            ("127.0.0.1", "1.2.3.4, not-an-ip", "127.0.0.1"),
            ("127.0.0.1", "", "127.0.0.1"),
            ("::1", "2001:db8::1", "::1"),
            (None, None, "unknown"),
        ],
    )
    def test_only_trusted_proxies_are_believed(self, peer: str | None, forwarded: str | None, expected: str) -> None:
        assert client_address(peer, forwarded, TRUSTED) == expected


async def _token(gateway: Gateway, app_name: str, headers: dict[str, str] | None = None) -> Any:
    return await gateway.client.post("/v1/auth/token", json={"app_name": app_name, "secret": "sk_x"}, headers=headers)


@pytest.mark.postgres
class TestTokenThrottle:
    async def test_per_client_limit_returns_429_with_retry_after(
        self, make_gateway: Callable[..., Awaitable[Gateway]]
    ) -> None:
        gateway = await make_gateway(token_burst_per_client=3, token_rate_per_client=0.1)
        for i in range(3):
            await problem(await _token(gateway, f"app-{i}"), 401, "invalid_credentials")
        resp = await _token(gateway, "app-9")
        await problem(resp, 429, "rate_limited")
        assert int(resp.headers["Retry-After"]) >= 1
        metrics = await (await gateway.client.get("/metrics", headers=admin_headers())).text()
        assert 'gateway_token_requests_refused_total{reason="client"} 1.0' in metrics

    async def test_forged_x_forwarded_for_does_not_escape_the_client_limit(
        self, make_gateway: Callable[..., Awaitable[Gateway]]
    ) -> None:
        gateway = await make_gateway(token_burst_per_client=2, token_rate_per_client=0.1)
        answers = [(await _token(gateway, "shop-1", {"X-Forwarded-For": f"198.51.100.{i}"})).status for i in range(4)]
        assert answers == [401, 401, 429, 429]

    async def test_behind_a_trusted_proxy_clients_are_told_apart(
        self, make_gateway: Callable[..., Awaitable[Gateway]]
    ) -> None:
        gateway = await make_gateway(token_burst_per_client=1, token_rate_per_client=0.1, trusted_proxies="127.0.0.1")
        first = {"X-Forwarded-For": "198.51.100.1"}
        assert (await _token(gateway, "app-a", first)).status == 401
        await problem(await _token(gateway, "app-b", first), 429, "rate_limited")
        assert (await _token(gateway, "app-c", {"X-Forwarded-For": "198.51.100.2"})).status == 401

    async def test_per_app_limit_holds_across_clients(self, make_gateway: Callable[..., Awaitable[Gateway]]) -> None:
        gateway = await make_gateway(token_burst_per_app=2, token_rate_per_app=0.1, trusted_proxies="127.0.0.1")
        tenant = await gateway.create_tenant()
        statuses = []
        for i in range(3):
            resp = await gateway.client.post(
                "/v1/auth/token",
                json={"app_name": "shop-1", "secret": tenant["secret"]},
                headers={"X-Forwarded-For": f"198.51.100.{i}"},
            )
            statuses.append(resp.status)
        assert statuses == [200, 200, 429]
        # Another app is not held back by it.
        assert (await _token(gateway, "other-app", {"X-Forwarded-For": "198.51.100.9"})).status == 401

    async def test_throttled_before_the_database_is_read(
        self, make_settings: Callable[..., Any], aiohttp_client: Callable[..., Awaitable[Any]]
    ) -> None:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/gateway"
        client = await aiohttp_client(
            create_app(make_settings(database_url=url, token_burst_per_client=1, token_rate_per_client=0.01))
        )
        body = {"app_name": "shop-1", "secret": "sk_x"}
        await problem(await client.post("/v1/auth/token", json=body), 503, "database_unavailable")
        await problem(await client.post("/v1/auth/token", json=body), 429, "rate_limited")

    async def test_a_flood_beyond_the_hashing_pool_fails_fast_with_503(
        self, make_gateway: Callable[..., Awaitable[Gateway]]
    ) -> None:
        gateway = await make_gateway(
            hash_concurrency=1,
            hash_queue=1,
            argon2_time_cost=2,
            argon2_memory_kib=16 * 1024,
            token_burst_per_client=1000,
            token_burst_per_app=1000,
        )
        responses = await asyncio.gather(*(_token(gateway, f"app-{i}") for i in range(8)))
        statuses = sorted(r.status for r in responses)
        # One hashing, one waiting; the other six were refused without queueing.
        assert statuses.count(401) == 2, statuses
        assert statuses.count(503) == 6, statuses
        for resp in responses:
            if resp.status == 503:
                await problem(resp, 503, "auth_busy")
                assert resp.headers["Retry-After"] == "1"
        metrics = await (await gateway.client.get("/metrics", headers=admin_headers())).text()
        assert 'gateway_token_requests_refused_total{reason="busy"} 6.0' in metrics
        # Once the pool drains, requests are served again.
        await problem(await _token(gateway, "app-x"), 401, "invalid_credentials")

    async def test_the_hashing_budget_bounds_verifications_per_second_whoever_asks(
        self, make_gateway: Callable[..., Awaitable[Gateway]]
    ) -> None:
        # Many addresses, many app names: no bucket of theirs is empty, the process's budget is.
        gateway = await make_gateway(hash_rate=0.1, hash_burst=2, trusted_proxies="127.0.0.1")
        statuses = [
            (await _token(gateway, f"app-{i}", {"X-Forwarded-For": f"198.51.100.{i}"})).status for i in range(4)
        ]
        assert statuses == [401, 401, 503, 503]
        resp = await _token(gateway, "app-9", {"X-Forwarded-For": "198.51.100.9"})
        await problem(resp, 503, "auth_busy")
        assert resp.headers["Retry-After"] == "1"


class _CountingHasher(PasswordHasher):
    """Records the most argon2 verifications that ran at the same time."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self._lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(0.02)
            return super().verify(hash, password)
        finally:
            with self._lock:
                self.running -= 1


class TestSecretHasherPool:
    async def test_hashes_never_run_beyond_the_pool_size(self) -> None:
        counting = _CountingHasher()
        hasher = SecretHasher(counting, concurrency=2, queue=100)
        hasher.start()
        try:

            async def one() -> None:
                with hasher.admission():
                    await hasher.verify_tenant(None, "sk_x", datetime.now(UTC))

            await asyncio.gather(*(one() for _ in range(12)))
        finally:
            hasher.close()
        assert counting.peak == 2
        assert hasher.admitted == 0
