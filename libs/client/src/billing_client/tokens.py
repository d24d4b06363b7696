"""Access tokens: how long one is reused, and one exchange for many concurrent callers.

The integration guide's advice: trade app name + secret for a JWT once, reuse it until 5 minutes
before it expires, and refresh it on a 401 (the secret was rotated, the signing key changed). The
exchange is slow on purpose (the secret is checked against a slow hash, and the gateway throttles
it), so N callers that find no valid token wait for one exchange instead of making N.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from billing_client.models import AccessTokenGrant

# Refresh this long before the token expires, so a request never leaves with a token about to lapse.
REFRESH_MARGIN = 300.0

Clock = Callable[[], float]


@dataclass(frozen=True)
class AccessToken:
    value: str
    # On the client's monotonic clock: after this, exchange again.
    refresh_at: float

    def fresh(self, now: float) -> bool:
        return now < self.refresh_at


def _jwt_lifetime(token: str, wall_now: float) -> float | None:
    """Seconds until the JWT's ``exp``, read without verifying (the gateway verifies; we only schedule)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"]) - wall_now
    except (IndexError, KeyError, TypeError, ValueError, binascii.Error):
        return None


def token_from_grant(grant: AccessTokenGrant, now: float, wall_now: float | None = None) -> AccessToken:
    """When to refresh a new token: ``REFRESH_MARGIN`` before the sooner of ``expires_in`` and ``exp``."""
    lifetimes = [
        x
        for x in (grant.expires_in, _jwt_lifetime(grant.access_token, time.time() if wall_now is None else wall_now))
        if x is not None
    ]
    lifetime = min(lifetimes) if lifetimes else 0.0
    # A token shorter-lived than twice the margin is used for half its life instead.
    margin = REFRESH_MARGIN if lifetime > 2 * REFRESH_MARGIN else lifetime / 2
    return AccessToken(grant.access_token, now + lifetime - margin)


class TokenCache:
    """The sync client's token: a threading lock makes concurrent threads share one exchange."""

    def __init__(self, exchange: Callable[[], AccessTokenGrant], clock: Clock = time.monotonic) -> None:
        self._exchange = exchange
        self._clock = clock
        self._lock = threading.Lock()
        self._token: AccessToken | None = None

    def get(self) -> str:
        token = self._token
        if token is not None and token.fresh(self._clock()):
            return token.value
        with self._lock:
            # Another thread may have exchanged while this one waited for the lock.
            token = self._token
            if token is None or not token.fresh(self._clock()):
                grant = self._exchange()
                token = self._token = token_from_grant(grant, self._clock())
            return token.value

    def invalidate(self, value: str) -> None:
        """Drop ``value`` after a 401, unless another caller already replaced it (then keep the new one)."""
        with self._lock:
            if self._token is not None and self._token.value == value:
                self._token = None


class AsyncTokenCache:
    """The async client's token: an asyncio lock makes concurrent tasks share one exchange."""

    def __init__(self, exchange: Callable[[], Awaitable[AccessTokenGrant]], clock: Clock = time.monotonic) -> None:
        self._exchange = exchange
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: AccessToken | None = None

    async def get(self) -> str:
        token = self._token
        if token is not None and token.fresh(self._clock()):
            return token.value
        async with self._lock:
            token = self._token
            if token is None or not token.fresh(self._clock()):
                grant = await self._exchange()
                token = self._token = token_from_grant(grant, self._clock())
            return token.value

    async def invalidate(self, value: str) -> None:
        async with self._lock:
            if self._token is not None and self._token.value == value:
                self._token = None
