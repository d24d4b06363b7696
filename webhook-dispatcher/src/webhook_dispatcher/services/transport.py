"""The HTTP client that delivers webhooks: SSRF-guarded at connect time, redirects never followed."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp.abc import ResolveResult

from webhook_dispatcher.domain.addresses import AddressPolicy

if TYPE_CHECKING:
    from aiohttp.tracing import Trace

log = logging.getLogger(__name__)


class AddressRefused(OSError):
    """The destination resolved to an address webhooks may not reach."""


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class GuardedConnector(aiohttp.TCPConnector):
    """Vets every address the host resolves to, with its port, at connect time, so DNS rebinding
    cannot slip a private address past a check made when the endpoint was created. IP literals pass
    through here too (aiohttp skips the resolver for them), so ``http://127.0.0.1`` and
    ``http://[::1]`` are refused as well unless the policy allows loopback.

    Any refused address refuses the whole host: connecting to "the good one" of a mixed answer would
    still let an attacker choose which address wins. Platform listeners given by name (``gateway:8000``
    in a compose file) are resolved here as well, through the same cache, so they are compared as
    addresses too.
    """

    def __init__(self, *, policy: AddressPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._policy = replace(policy, platform=frozenset(p for p in policy.platform if _is_ip(p[0])))
        self._platform_names = sorted(p for p in policy.platform if not _is_ip(p[0]))

    async def _platform(self, traces: Sequence[Trace] | None) -> AddressPolicy:
        if not self._platform_names:
            return self._policy
        resolved = set(self._policy.platform)
        for name, port in self._platform_names:
            try:
                results = await super()._resolve_host(name, port, traces=traces)
            except OSError:
                # A listener that does not resolve cannot be reached through a name either.
                continue
            resolved.update((r["host"], port) for r in results)
        return replace(self._policy, platform=frozenset(resolved))

    async def _resolve_host(self, host: str, port: int, traces: Sequence[Trace] | None = None) -> list[ResolveResult]:
        results = await super()._resolve_host(host, port, traces=traces)
        policy = await self._platform(traces)
        for result in results:
            reason = policy.refusal(host, result["host"], result["port"] or port)
            if reason is not None:
                # The tenant sees the attempt's error: name the category, never the internal address.
                log.warning("SSRF guard refused %s:%s: resolves to %s (%s)", host, port, result["host"], reason)
                raise AddressRefused(f"refused by SSRF guard: {host} resolves to a disallowed address ({reason})")
        return results


def create_client_session(*, policy: AddressPolicy, limit: int) -> aiohttp.ClientSession:
    """One session per dispatcher (created in a cleanup context). ``trust_env=False``: a proxy from the
    environment would bypass the address check."""
    connector = GuardedConnector(policy=policy, limit=limit, ttl_dns_cache=10)
    return aiohttp.ClientSession(connector=connector, trust_env=False)
