"""Throttles in front of ``POST /v1/auth/token``, the one unauthenticated route that costs an argon2
hash: a token bucket per client address and one per app name (429 with ``Retry-After``), checked
before the database is read or anything is hashed.

The client address is the TCP peer. ``X-Forwarded-For`` is believed only when the peer is one of the
configured trusted proxies (``GATEWAY_TRUSTED_PROXIES``), and then only its entries added by trusted
proxies: the address right of the last untrusted hop is the client, whatever a client prepends.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web
from billing_runtime.problems import ProblemError

from gateway.metrics import GatewayMetrics
from gateway.ratelimit import RateLimiter

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Sequence[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "127.0.0.1"]`` → networks; a bare address is a /32 (or /128)."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values if value.strip())


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The address to throttle: the peer, or behind trusted proxies the nearest untrusted hop."""
    peer_ip = _address(peer or "")
    if peer_ip is None:
        return peer or "unknown"
    if not forwarded_for or not any(peer_ip in net for net in trusted):
        return str(peer_ip)
    hop = peer_ip
    for entry in reversed(forwarded_for.split(",")):
        ip = _address(entry)
        if ip is None:  # a malformed entry: trust nothing beyond it
            break
        hop = ip
        if not any(ip in net for net in trusted):
            break
    return str(hop)


class TokenThrottle:
    def __init__(
        self,
        *,
        per_client: RateLimiter,
        per_app: RateLimiter,
        trusted_proxies: Sequence[Network],
        metrics: GatewayMetrics,
    ) -> None:
        self._per_client = per_client
        self._per_app = per_app
        self._trusted = tuple(trusted_proxies)
        self._metrics = metrics

    def check_client(self, request: web.Request) -> None:
        """Before the body is even parsed: a flood of junk is throttled too."""
        address = client_address(request.remote, request.headers.get("X-Forwarded-For"), self._trusted)
        self._take(self._per_client, address, "client")

    def check_app(self, app_name: str) -> None:
        # Keyed by the name as sent, known or not: an unknown name costs a dummy hash all the same.
        self._take(self._per_app, app_name, "app")

    def _take(self, limiter: RateLimiter, key: str, scope: str) -> None:
        wait = limiter.acquire(key)
        if wait is not None:
            self._metrics.token_requests_refused.labels(scope).inc()
            raise ProblemError(
                429,
                "rate_limited",
                f"Too many token requests from this {'client' if scope == 'client' else 'app'}",
                headers={"Retry-After": str(wait)},
            )
