"""When to try a request again and how long to wait: the policy both clients share.

Retried: transport failures (connection refused, reset, timeouts, a broken answer), 429 and 5xx, with
exponential backoff and full jitter, or exactly the ``Retry-After`` the server sent. Never another 4xx,
save one: 409 ``idempotency_key_in_use`` on a request with an Idempotency-Key, which API.md defines as
"the first request with this key is still running" (a retry after a timeout meets it).

A request that is not safe to repeat (a POST without an Idempotency-Key, such as creating a webhook
endpoint) is retried only when the server surely did nothing: the connection was never made, or the
answer was 429 or 503 (API.md: "nothing was half-done").
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

# Answers that say "not now" and promise that nothing was done.
_NOTHING_DONE = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` tries after the first; waits of ``uniform(0, min(max_delay, base_delay * 2**n))``."""

    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    # A Retry-After longer than this is not waited for: the error is raised with its ``retry_after``.
    max_retry_after: float = 60.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter (AWS architecture blog, "Exponential Backoff and Jitter"): spreads clients apart."""
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _never_sent(error: httpx.TransportError) -> bool:
    # The request never left: no connection, or none free in the pool.
    return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def is_transient(error: httpx.TransportError) -> bool:
    """Transport failures worth another try (not a malformed URL or a protocol misuse of ours)."""
    return isinstance(error, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)


def delay_after_error(
    policy: RetryPolicy, attempt: int, error: httpx.TransportError, *, repeatable: bool, rng: random.Random
) -> float | None:
    """Seconds before try ``attempt + 1`` after a transport failure, or None: give up."""
    if attempt >= policy.max_retries or not is_transient(error):
        return None
    if not repeatable and not _never_sent(error):
        return None
    return policy.backoff(attempt, rng)


def delay_after_response(
    policy: RetryPolicy,
    attempt: int,
    status: int,
    retry_after: float | None,
    code: str | None,
    *,
    repeatable: bool,
    keyed: bool,
    rng: random.Random,
) -> float | None:
    """Seconds before try ``attempt + 1`` after an HTTP answer, or None: that answer is final."""
    if attempt >= policy.max_retries:
        return None
    in_flight = status == 409 and keyed and code == "idempotency_key_in_use"
    if not (status >= 500 or status == 429 or in_flight):
        return None
    if not repeatable and status not in _NOTHING_DONE:
        return None
    if retry_after is not None:
        return retry_after if retry_after <= policy.max_retry_after else None
    return policy.backoff(attempt, rng)
