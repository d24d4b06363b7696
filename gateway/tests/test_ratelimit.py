from __future__ import annotations

from gateway.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestRateLimiter:
    def test_burst_then_refill_at_rate(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(rate=2, burst=3, clock=clock)
        assert [limiter.acquire("t") for _ in range(3)] == [None, None, None]
        assert limiter.acquire("t") == 1
        clock.now += 0.5
        assert limiter.acquire("t") is None
        assert limiter.acquire("t") == 1

    def test_retry_after_is_whole_seconds_rounded_up(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(rate=0.25, burst=1, clock=clock)
        assert limiter.acquire("t") is None
        assert limiter.acquire("t") == 4
        clock.now += 3.5
        assert limiter.acquire("t") == 1

    def test_refill_never_exceeds_burst(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(rate=10, burst=2, clock=clock)
        clock.now += 3600
        assert [limiter.acquire("t") is None for _ in range(3)] == [True, True, False]

    def test_keys_are_independent(self) -> None:
        limiter = RateLimiter(rate=1, burst=1, clock=FakeClock())
        assert limiter.acquire("a") is None
        assert limiter.acquire("a") is not None
        assert limiter.acquire("b") is None

    def test_zero_rate_disables(self) -> None:
        limiter = RateLimiter(rate=0, burst=1)
        assert not limiter.enabled
        assert all(limiter.acquire("t") is None for _ in range(1000))

    def test_idle_buckets_are_forgotten_when_full(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(rate=1, burst=1, clock=clock, max_buckets=2)
        limiter.acquire("a")
        limiter.acquire("b")
        clock.now += 5
        limiter.acquire("c")
        assert limiter.acquire("c") is not None  # c kept its state
        assert limiter.acquire("a") is None  # a was forgotten, so it starts full again
