"""The payer's side of Octo and Stripe in the lifecycle bench (``lifecycle.py``), at the API level.

**Octo**: the bench's tenant has no Octo account, so as a test tenant it pays through Octo's simulator
(the fake Octo server mounted in providers-svc under ``/simulators/octo``, reached through the gateway;
on by default: ``PROVIDERS_SIMULATORS``, ``PROVIDERS_ENABLED_PROVIDERS``). The checkout's
``redirect_url`` is the simulator's pay page; the payer's ``outcome=pay`` there makes the fake post
Octo's signed notify to ``/billing/octo``, which re-checks the status at the fake before moving money.

**Stripe**: localstripe (the tests' fake Stripe, ``providers-svc/tests/stripe_payments/
localstripe_server.py``) on loopback, as its own process: "Stripe's servers". The tenant gets a test
Stripe account whose ``api_base`` is localstripe (``flow=payment_intent``), and localstripe posts its
signed events to ``/billing/stripe`` through the gateway. The checkout's ``redirect_url`` is our Stripe
payer page; the test card posted there is attached to the PaymentIntent at localstripe and confirmed,
and only localstripe's ``payment_intent.succeeded`` webhook decides the payment. localstripe sends each
webhook 1 s after the event (``localstripe/webhooks.py``), a fixed delay in every Stripe lifecycle.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from pathlib import Path

import aiohttp
from billing_runtime.testing import free_port
from regional import ClickFlow, Order, PaymeFlow, Stats
from run import Proc, spawn

LOCALSTRIPE = Path(__file__).resolve().parents[2] / "providers-svc/tests/stripe_payments/localstripe_server.py"


async def _page(http: aiohttp.ClientSession, stats: Stats, route: str, url: str, form: dict[str, str]) -> str | None:
    """The payer's button on a provider's page: the redirect it answered with ("" for a 200 page), or
    None (an error recorded) for anything else."""
    started = time.perf_counter()
    async with http.post(url, data=form, allow_redirects=False) as r:
        body = await r.read()
        status, location = r.status, r.headers.get("Location", "")
    stats.add(route, time.perf_counter() - started)
    if status not in (200, 303):
        stats.errors.append(f"{route}: {status} {body[:200]!r}")
        return None
    return location


class SandboxPage:
    """The payer's "succeed" on the sandbox bank's page; the bank then sends its signed callback."""

    async def confirm(self, http: aiohttp.ClientSession, order: Order, redirect_url: str, stats: Stats) -> bool:
        return await _page(http, stats, "POST /sandbox/pay/{ptx}", redirect_url, {"outcome": "succeed"}) is not None


class ProviderCalls:
    """Payme's or Click's own calls to our endpoints, played by the bench with its test account's keys."""

    def __init__(self, flow: PaymeFlow | ClickFlow) -> None:
        self.flow = flow

    async def confirm(self, http: aiohttp.ClientSession, order: Order, redirect_url: str, stats: Stats) -> bool:
        return await self.flow.run(http, order, stats)


class OctoPage:
    """The payer's "pay" on the Octo simulator's page (``redirect_url``); the fake Octo then posts its
    signed notify to ``/billing/octo`` before it answers (a 303 to the shop's return URL)."""

    async def confirm(self, http: aiohttp.ClientSession, order: Order, redirect_url: str, stats: Stats) -> bool:
        if "/simulators/octo/pay/" not in redirect_url:
            stats.errors.append(f"octo: not the simulator's pay page: {redirect_url[:200]}")
            return False
        route = "POST /simulators/octo/pay/{uuid}"
        return await _page(http, stats, route, redirect_url, {"outcome": "pay"}) is not None


class StripePage:
    """The test card on our Stripe payer page (``redirect_url``): providers-svc attaches it to the
    PaymentIntent at localstripe and confirms it; localstripe's webhook then decides the payment."""

    async def confirm(self, http: aiohttp.ClientSession, order: Order, redirect_url: str, stats: Stats) -> bool:
        if "/pay/stripe/" not in redirect_url:
            stats.errors.append(f"stripe: not our payer page: {redirect_url[:200]}")
            return False
        location = await _page(http, stats, "POST /pay/stripe/{ptx}/{token}", redirect_url, {"card": "visa"})
        if location is None:
            return False
        if "error=" in location:  # the page sends the payer back to itself with the card's error
            stats.errors.append(f"stripe card: {location[:200]}")
            return False
        return True


Confirmer = SandboxPage | ProviderCalls | OctoPage | StripePage


async def start_localstripe(logs: Path) -> tuple[Proc, str]:
    """localstripe on a free loopback port, as the e2e tests start it; returns once it accepts."""
    port = free_port()
    proc = spawn("localstripe", [sys.executable, str(LOCALSTRIPE), str(port)], {}, logs)
    deadline = time.monotonic() + 20
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline or proc.popen.poll() is not None:
                proc.popen.kill()
                raise RuntimeError("localstripe did not start") from None
            await asyncio.sleep(0.05)


async def stripe_account(
    http: aiohttp.ClientSession, gw: str, admin: str, tenant_id: str, localstripe: str, currency: str
) -> StripePage:
    """A test Stripe account at localstripe, assigned to the tenant, whose webhooks localstripe signs
    and posts to ``/billing/stripe`` through the gateway (as ``tests/e2e/test_stripe.py`` sets it up)."""
    auth = {"Authorization": f"Bearer {admin}"}
    webhook_secret = f"whsec_{secrets.token_hex(16)}"
    body = {
        "provider": "stripe",
        "name": "bench stripe (localstripe)",
        "environment": "test",
        "currencies": [currency],
        "credentials": {"secret_key": f"sk_test_{secrets.token_hex(12)}", "webhook_secret": webhook_secret},
        "settings": {"api_base": localstripe, "flow": "payment_intent"},
    }
    async with http.post(f"{gw}/admin/provider-accounts", json=body, headers=auth) as r:
        account = await r.json()
        assert r.status == 201, account
    url = f"{gw}/admin/tenants/{tenant_id}/provider-accounts/stripe"
    async with http.put(url, json={"provider_account_id": account["id"]}, headers=auth) as r:
        assert r.status == 200, await r.text()
    hook = {"url": f"{gw}/billing/stripe", "secret": webhook_secret}
    async with http.post(f"{localstripe}/_config/webhooks/bench", data=hook) as r:
        assert r.status == 200, await r.text()
    return StripePage()
