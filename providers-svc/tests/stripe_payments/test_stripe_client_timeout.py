"""A Stripe that does not answer costs the provider timeout (``PROVIDERS_PROVIDER_TIMEOUT``), not the
library's own 80 s a request: a webhook re-fetching an intent holds a row lock and a database connection
meanwhile. The fake Stripe here accepts the request and never answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from providers_svc.adapters.base import ProviderUnavailableError
from providers_svc.adapters.stripe.client import StripeApi
from providers_svc.domain.accounts import BoundAccount, Environment, settings_with_defaults


@pytest.fixture
async def silent_stripe(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> AsyncIterator[str]:
    never = asyncio.Event()

    async def hang(_request: web.Request) -> web.Response:
        await never.wait()
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hang)
    server = await aiohttp_server(app, host="127.0.0.1")
    yield str(server.make_url("")).rstrip("/")
    never.set()


async def test_a_silent_stripe_is_unavailable_after_the_provider_timeout(silent_stripe: str) -> None:
    account = BoundAccount(
        id="pac_timeout",
        provider="stripe",
        environment=Environment.TEST,
        currencies=frozenset({"USD"}),
        settings=settings_with_defaults("stripe", {"api_base": silent_stripe}),
        credentials={"secret_key": "sk_test_timeout", "webhook_secret": "whsec_timeout"},
    )
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.3)) as session:
        api = StripeApi(account, lambda: session)
        # With the library's 80 s per attempt this would outlast the test's own timeout (pytest-timeout).
        async with asyncio.timeout(20):
            with pytest.raises(ProviderUnavailableError):
                await api.payment_intent("pi_silent")
