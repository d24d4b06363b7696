"""The HTTP client that delivers webhooks: SSRF-guarded at connect time, redirects never followed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp.abc import ResolveResult

from webhook_dispatcher.domain.addresses import refusal_reason

if TYPE_CHECKING:
    from aiohttp.tracing import Trace

log = logging.getLogger(__name__)


class AddressRefused(OSError):
    """The destination resolved to an address webhooks may not reach."""


class GuardedConnector(aiohttp.TCPConnector):
    """Vets every address the host resolves to, at connect time, so DNS rebinding cannot slip a private
    address past a check made when the endpoint was created. IP literals pass through here too (aiohttp
    skips the resolver for them), so ``http://127.0.0.1`` and ``http://[::1]`` are refused as well.

    Any refused address refuses the whole host: connecting to "the good one" of a mixed answer would
    still let an attacker choose which address wins.
    """

    def __init__(self, *, allowed_hosts: frozenset[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._allowed_hosts = allowed_hosts

    async def _resolve_host(self, host: str, port: int, traces: Sequence[Trace] | None = None) -> list[ResolveResult]:
        results = await super()._resolve_host(host, port, traces=traces)
        if host.lower().rstrip(".").strip("[]") in self._allowed_hosts:
            return results
        for result in results:
            reason = refusal_reason(result["host"])
            if reason is not None:
                # The tenant sees the attempt's error: name the category, never the internal address.
                log.warning("SSRF guard refused %s: resolves to %s (%s)", host, result["host"], reason)
                raise AddressRefused(f"refused by SSRF guard: {host} resolves to a disallowed address ({reason})")
        return results


def create_client_session(*, guard: bool, allowed_hosts: frozenset[str], limit: int) -> aiohttp.ClientSession:
    """One session per dispatcher (created in a cleanup context). ``trust_env=False``: a proxy from the
    environment would bypass the address check."""
    connector: aiohttp.TCPConnector = (
        GuardedConnector(allowed_hosts=allowed_hosts, limit=limit, ttl_dns_cache=10)
        if guard
        else aiohttp.TCPConnector(limit=limit)
    )
    return aiohttp.ClientSession(connector=connector, trust_env=False)
