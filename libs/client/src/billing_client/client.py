"""``BillingClient``: the sync client (one httpx.Client; safe to share between threads)."""

from __future__ import annotations

import random
import time
from types import TracebackType
from typing import TypeVar

import httpx

from billing_client.calls import Call
from billing_client.models import AccessTokenGrant
from billing_client.resources.events import Events
from billing_client.resources.payments import Payments
from billing_client.resources.refunds import Refunds
from billing_client.resources.webhook_deliveries import WebhookDeliveries
from billing_client.resources.webhook_endpoints import WebhookEndpoints
from billing_client.retries import RetryPolicy
from billing_client.sending import USER_AGENT, Sending, token_call
from billing_client.tokens import Clock, TokenCache

T = TypeVar("T")


class BillingClient:
    """A tenant's client of the gateway: ``client.payments.create(...)``, ``client.refunds``, ...

    Exchanges ``app_name`` + ``secret`` for an access token when first needed and reuses it (see
    tokens.py); retries what is worth retrying up to ``max_retries`` times (see retries.py).
    ``timeout`` (seconds) bounds each try; ``retry_policy`` overrides ``max_retries`` and sets the
    backoff; ``http_client`` is an ``httpx.Client`` of yours (then ``timeout`` is its own, and closing
    it is yours); ``clock`` is the monotonic clock token lifetimes are counted on.
    """

    def __init__(
        self,
        base_url: str,
        app_name: str,
        secret: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 2,
        retry_policy: RetryPolicy | None = None,
        http_client: httpx.Client | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        policy = retry_policy or RetryPolicy(max_retries=max_retries)
        self._sending = Sending(base_url, policy, random.Random())
        # A client of the caller's (its own transport, proxies, limits) is the caller's to close.
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout, headers={"User-Agent": USER_AGENT})
        self._token_call = token_call(app_name, secret)
        self._tokens = TokenCache(self._exchange, clock)
        self.payments = Payments(self._send)
        self.refunds = Refunds(self._send)
        self.webhook_endpoints = WebhookEndpoints(self._send)
        self.webhook_deliveries = WebhookDeliveries(self._send)
        self.events = Events(self._send)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> BillingClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _exchange(self) -> AccessTokenGrant:
        return self._send(self._token_call)

    def _send(self, call: Call[T]) -> T:
        return self._sending.result(call, self._respond(call))

    def _respond(self, call: Call[T]) -> httpx.Response:
        """The final answer to ``call`` after the retries the policy allows and one token refresh."""
        attempt, refreshed = 0, False
        while True:
            token = self._tokens.get() if call.authenticated else None
            try:
                response = self._http.send(self._sending.request(self._http, call, token))
            except httpx.TransportError as exc:
                delay = self._sending.delay_after_error(call, attempt, exc)
                if delay is None:
                    raise self._sending.network_error(call, exc, attempt + 1) from exc
            else:
                if response.status_code == 401 and token is not None:
                    # A refused token is never used again; but the call is retried once only: a fresh
                    # token refused too means the credentials themselves are refused.
                    self._tokens.invalidate(token)
                    if not refreshed:
                        refreshed = True
                        continue
                delay = self._sending.delay_after_response(call, attempt, response)
                if delay is None:
                    return response
            attempt += 1
            time.sleep(delay)
