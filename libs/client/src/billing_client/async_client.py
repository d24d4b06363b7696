"""``AsyncBillingClient``: the async client (one httpx.AsyncClient; share it between tasks)."""

from __future__ import annotations

import asyncio
import random
import time
from types import TracebackType
from typing import TypeVar

import httpx

from billing_client.calls import Call
from billing_client.models import AccessTokenGrant
from billing_client.resources.events import AsyncEvents
from billing_client.resources.payments import AsyncPayments
from billing_client.resources.refunds import AsyncRefunds
from billing_client.resources.webhook_deliveries import AsyncWebhookDeliveries
from billing_client.resources.webhook_endpoints import AsyncWebhookEndpoints
from billing_client.retries import RetryPolicy
from billing_client.sending import USER_AGENT, Sending, token_call
from billing_client.tokens import AsyncTokenCache, Clock

T = TypeVar("T")


class AsyncBillingClient:
    """The async twin of ``BillingClient``: the same resources and behaviour, every call awaited."""

    def __init__(
        self,
        base_url: str,
        app_name: str,
        secret: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 2,
        retry_policy: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        policy = retry_policy or RetryPolicy(max_retries=max_retries)
        self._sending = Sending(base_url, policy, random.Random())
        # A client of the caller's (its own transport, proxies, limits) is the caller's to close.
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout, headers={"User-Agent": USER_AGENT})
        self._token_call = token_call(app_name, secret)
        self._tokens = AsyncTokenCache(self._exchange, clock)
        self.payments = AsyncPayments(self._send)
        self.refunds = AsyncRefunds(self._send)
        self.webhook_endpoints = AsyncWebhookEndpoints(self._send)
        self.webhook_deliveries = AsyncWebhookDeliveries(self._send)
        self.events = AsyncEvents(self._send)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncBillingClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _exchange(self) -> AccessTokenGrant:
        return await self._send(self._token_call)

    async def _send(self, call: Call[T]) -> T:
        return self._sending.result(call, await self._respond(call))

    async def _respond(self, call: Call[T]) -> httpx.Response:
        """The final answer to ``call`` after the retries the policy allows and one token refresh."""
        attempt, refreshed = 0, False
        while True:
            token = await self._tokens.get() if call.authenticated else None
            try:
                response = await self._http.send(self._sending.request(self._http, call, token))
            except httpx.TransportError as exc:
                delay = self._sending.delay_after_error(call, attempt, exc)
                if delay is None:
                    raise self._sending.network_error(call, exc, attempt + 1) from exc
            else:
                if response.status_code == 401 and token is not None:
                    # A refused token is never used again; but the call is retried once only: a fresh
                    # token refused too means the credentials themselves are refused.
                    await self._tokens.invalidate(token)
                    if not refreshed:
                        refreshed = True
                        continue
                delay = self._sending.delay_after_response(call, attempt, response)
                if delay is None:
                    return response
            attempt += 1
            await asyncio.sleep(delay)
