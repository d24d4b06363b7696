"""The services the gateway forwards to, each with its own HTTP client session."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import ClientSession, ClientTimeout, DummyCookieJar
from yarl import URL

from gateway.settings import Settings

PAYMENTS = "payments"
PROVIDERS = "providers"
WEBHOOKS = "webhooks"
RECONCILIATION = "reconciliation"


@dataclass(frozen=True)
class Upstream:
    # Also the audience of the internal tokens the gateway signs for this service.
    name: str
    base_url: str
    session: ClientSession

    def url(self, raw_path_qs: str) -> URL:
        """The upstream URL for an already-encoded path and query (not re-encoded)."""
        return URL(self.base_url + raw_path_qs, encoded=True)

    async def check(self) -> None:
        """Raise unless the upstream answers its ``/healthz`` with a 200."""
        async with self.session.get(self.url("/healthz"), allow_redirects=False) as response:
            if response.status != 200:
                raise RuntimeError(f"{self.name} /healthz answered {response.status}")


def open_upstreams(settings: Settings) -> dict[str, Upstream]:
    """One client session per upstream; call from a running loop (a cleanup context)."""
    timeout = ClientTimeout(total=settings.upstream_timeout, sock_connect=settings.upstream_connect_timeout)
    urls = {
        PAYMENTS: settings.payments_url,
        PROVIDERS: settings.providers_url,
        WEBHOOKS: settings.webhooks_url,
        RECONCILIATION: settings.reconciliation_url,
    }
    return {
        # No cookie jar: a cookie an upstream sets for one client must never ride along for another.
        name: Upstream(name, url.rstrip("/"), ClientSession(timeout=timeout, cookie_jar=DummyCookieJar()))
        for name, url in urls.items()
    }


async def close_upstreams(upstreams: dict[str, Upstream]) -> None:
    for upstream in upstreams.values():
        await upstream.session.close()
