"""The retry policy against a scripted loopback server: 429 honours Retry-After (seconds or an HTTP
date), 5xx and transport failures are retried with backoff up to ``max_retries``, other 4xx never, and
a request that is not safe to repeat is retried only when the server surely did nothing."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from billing_client import (
    APIError,
    AsyncBillingClient,
    BillingClient,
    NetworkError,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ServiceUnavailableError,
    ValidationError,
)
from billing_client.retries import parse_retry_after

from .scripted import PAYMENT, Step, problem, scripted

FAST = RetryPolicy(max_retries=2, base_delay=0.05, max_delay=0.2)


def _client(url: str, policy: RetryPolicy = FAST, timeout: float = 5.0) -> AsyncBillingClient:
    return AsyncBillingClient(url, "shop", "secret", retry_policy=policy, timeout=timeout)


class TestRateLimit:
    async def test_429_waits_the_retry_after_seconds_then_succeeds(self) -> None:
        async with scripted(Step(429, problem(429, "rate_limited"), {"Retry-After": "1"})) as s, _client(s.url) as c:
            payment = await c.payments.retrieve("pay_1")
        assert payment.id == "pay_1"
        (first, *_), (second, *_) = s.requests
        assert second - first >= 0.95

    async def test_429_with_an_http_date(self) -> None:
        when = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
        async with scripted(Step(429, problem(429, "rate_limited"), {"Retry-After": when})) as s, _client(s.url) as c:
            await c.payments.retrieve("pay_1")
        (first, *_), (second, *_) = s.requests
        # The date has a resolution of one second: between 1 and 2 seconds later.
        assert second - first >= 0.9

    async def test_429_beyond_the_retries_raises_with_retry_after(self) -> None:
        steps = [Step(429, problem(429, "rate_limited"), {"Retry-After": "0"}) for _ in range(3)]
        async with scripted(*steps) as s, _client(s.url) as c:
            with pytest.raises(RateLimitError) as raised:
                await c.payments.retrieve("pay_1")
        assert len(s.requests) == 3
        assert (raised.value.status, raised.value.code, raised.value.retry_after) == (429, "rate_limited", 0)

    async def test_a_retry_after_longer_than_the_policy_allows_is_not_waited_for(self) -> None:
        step = Step(503, problem(503, "unavailable"), {"Retry-After": "3600"})
        async with scripted(step) as s, _client(s.url) as c:
            with pytest.raises(ServiceUnavailableError) as raised:
                await c.payments.retrieve("pay_1")
        assert len(s.requests) == 1
        assert raised.value.retry_after == 3600


class TestServerErrors:
    async def test_5xx_is_retried_until_it_succeeds(self) -> None:
        steps = [Step(502, problem(502, "bad_gateway")), Step(503, problem(503, "unavailable"))]
        async with scripted(*steps) as s, _client(s.url) as c:
            assert (await c.payments.retrieve("pay_1")).status == "CREATED"
        assert len(s.requests) == 3

    async def test_5xx_beyond_max_retries_raises(self) -> None:
        steps = [Step(500, problem(500, "internal_error")) for _ in range(5)]
        async with scripted(*steps) as s, _client(s.url, RetryPolicy(max_retries=3, base_delay=0.01)) as c:
            with pytest.raises(APIError) as raised:
                await c.payments.retrieve("pay_1")
        assert len(s.requests) == 4
        assert (raised.value.status, raised.value.code, raised.value.request_id) == (500, "internal_error", "req_fake")

    async def test_max_retries_zero_tries_once(self) -> None:
        async with (
            scripted(Step(503, problem(503, "unavailable"))) as s,
            AsyncBillingClient(s.url, "shop", "secret", max_retries=0) as c,
        ):
            with pytest.raises(ServiceUnavailableError):
                await c.payments.retrieve("pay_1")
        assert len(s.requests) == 1


class TestClientErrors:
    @pytest.mark.parametrize(
        ("status", "code", "error"),
        [(400, "bad_request", APIError), (404, "not_found", NotFoundError), (422, "validation_error", ValidationError)],
    )
    async def test_4xx_is_never_retried(self, status: int, code: str, error: type[Exception]) -> None:
        async with scripted(Step(status, problem(status, code))) as s, _client(s.url) as c:
            with pytest.raises(error):
                await c.payments.retrieve("pay_1")
        assert len(s.requests) == 1

    async def test_a_key_still_in_flight_is_retried_with_the_same_key(self) -> None:
        async with scripted(Step(409, problem(409, "idempotency_key_in_use"))) as s, _client(s.url) as c:
            await c.payments.create(amount=5000, currency="USD", order_id="o-1")
        keys = [headers["Idempotency-Key"] for *_, headers in s.requests]
        assert len(keys) == 2 and keys[0] == keys[1]


class TestNetworkErrors:
    async def test_a_reset_is_retried_with_the_same_idempotency_key(self) -> None:
        async with scripted(Step(reset=True), Step(reset=True), Step(201, PAYMENT)) as s, _client(s.url) as c:
            await c.payments.create(amount=5000, currency="USD", order_id="o-1")
        keys = {headers["Idempotency-Key"] for *_, headers in s.requests}
        assert len(s.requests) == 3 and len(keys) == 1

    async def test_a_timeout_is_retried(self) -> None:
        async with scripted(Step(hang=3.0)) as s, _client(s.url, timeout=1.0) as c:
            assert (await c.payments.retrieve("pay_1")).id == "pay_1"
        assert len(s.requests) == 2

    async def test_connection_refused_raises_network_error_after_the_retries(self) -> None:
        async with scripted() as s:
            url = s.url  # closed once the block ends: nothing listens there any more
        started = time.monotonic()
        async with _client(url) as c:
            with pytest.raises(NetworkError, match="3 tries"):
                await c.payments.retrieve("pay_1")
        assert time.monotonic() - started < 5

    async def test_two_calls_get_two_keys(self) -> None:
        async with scripted() as s, _client(s.url) as c:
            await c.payments.create(amount=5000, currency="USD", order_id="o-1")
            await c.payments.create(amount=5000, currency="USD", order_id="o-1")
            await c.payments.create(amount=5000, currency="USD", order_id="o-1", idempotency_key="mine")
        keys = [headers["Idempotency-Key"] for *_, headers in s.requests]
        assert keys[0] != keys[1] and keys[2] == "mine"


class TestRequestsNotSafeToRepeat:
    async def test_a_502_is_not_retried(self) -> None:
        async with scripted(Step(502, problem(502, "bad_gateway"))) as s, _client(s.url) as c:
            with pytest.raises(APIError):
                await c.webhook_endpoints.create(url="https://example.com/hook")
        assert len(s.requests) == 1

    async def test_a_reset_after_sending_is_not_retried(self) -> None:
        async with scripted(Step(reset=True)) as s, _client(s.url) as c:
            with pytest.raises(NetworkError):
                await c.webhook_endpoints.rotate_secret("we_1")
        assert len(s.requests) == 1

    async def test_a_503_is_retried(self) -> None:
        endpoint = {"id": "we_1", "object": "webhook_endpoint", "url": "https://example.com/hook", "secret": "whsec_x"}
        steps = [Step(503, problem(503, "unavailable"), {"Retry-After": "0"}), Step(201, endpoint)]
        async with scripted(*steps) as s, _client(s.url) as c:
            created = await c.webhook_endpoints.create(url="https://example.com/hook")
        assert created.secret == "whsec_x"
        assert len(s.requests) == 2


class TestSyncClient:
    async def test_the_sync_client_follows_the_same_policy(self) -> None:
        steps = [Step(429, problem(429, "rate_limited"), {"Retry-After": "1"}), Step(500, problem(500, "x"))]
        async with scripted(*steps, Step(404, problem(404, "not_found"))) as s:
            with BillingClient(s.url, "shop", "secret", retry_policy=FAST) as c, pytest.raises(NotFoundError) as raised:
                await asyncio.to_thread(c.payments.retrieve, "pay_1")
        assert raised.value.code == "not_found"
        times = [t for t, *_ in s.requests]
        assert len(times) == 3 and times[1] - times[0] >= 0.95


class TestRetryAfterHeader:
    @pytest.mark.parametrize(
        ("value", "seconds"),
        [("3", 3.0), (" 1.5 ", 1.5), ("-4", 0.0), ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0), ("soon", None), (None, None)],
    )
    def test_parsed(self, value: str | None, seconds: float | None) -> None:
        assert parse_retry_after(value) == seconds

    def test_an_http_date_counts_from_now(self) -> None:
        now = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
        assert parse_retry_after("Sun, 06 Dec 2026 12:00:30 GMT", now) == 30.0

    def test_backoff_is_full_jitter_under_the_cap(self) -> None:
        policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
        rng = random.Random(7)
        waits = [policy.backoff(n, rng) for n in range(8) for _ in range(50)]
        assert all(0 <= w <= 4.0 for w in waits)
        assert max(policy.backoff(0, rng) for _ in range(50)) <= 0.5
