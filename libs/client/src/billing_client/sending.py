"""What both clients do around one HTTP exchange, without doing I/O: the request's URL and headers,
reading the answer (or the error it is), and whether and when to try again.

The sync and async clients differ only in how they wait (``time.sleep`` or ``asyncio.sleep``), which
lock guards the token, and which httpx client sends; every decision is made here once.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx

from billing_client.calls import Call
from billing_client.errors import BillingError, NetworkError, error_from_response, parse_problem
from billing_client.models import AccessTokenGrant
from billing_client.retries import RetryPolicy, delay_after_error, delay_after_response, parse_retry_after
from billing_client.version import __version__

T = TypeVar("T")

USER_AGENT = f"billing-client-python/{__version__}"


class Send(Protocol):
    """Sends one call with retries and returns its parsed answer (the sync client)."""

    def __call__(self, call: Call[T], /) -> T: ...


class AsyncSend(Protocol):
    """Sends one call with retries and returns its parsed answer (the async client)."""

    def __call__(self, call: Call[T], /) -> Awaitable[T]: ...


def token_call(app_name: str, secret: str) -> Call[AccessTokenGrant]:
    # No side effect at the server: safe to repeat on any transient failure.
    return Call(
        "POST",
        "/v1/auth/token",
        AccessTokenGrant.model_validate,
        json={"app_name": app_name, "secret": secret},
        authenticated=False,
    )


@dataclass
class Sending:
    """The settings of a client and the decisions taken for each try of a call."""

    base_url: str
    policy: RetryPolicy
    rng: random.Random

    def request(self, http: httpx.Client | httpx.AsyncClient, call: Call[Any], token: str | None) -> httpx.Request:
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if call.idempotency_key is not None:
            headers["Idempotency-Key"] = call.idempotency_key
        return http.build_request(
            call.method,
            self.base_url.rstrip("/") + call.path,
            params=call.params or None,
            json=call.json,
            headers=headers,
        )

    def delay_after_error(self, call: Call[Any], attempt: int, error: httpx.TransportError) -> float | None:
        return delay_after_error(self.policy, attempt, error, repeatable=call.repeatable or call.keyed, rng=self.rng)

    def delay_after_response(self, call: Call[Any], attempt: int, response: httpx.Response) -> float | None:
        status = response.status_code
        if status < 400:
            return None
        # The code decides only one retry (a key still in flight); parse the body only then.
        code = parse_problem(status, response.content).code if status == 409 else None
        return delay_after_response(
            self.policy,
            attempt,
            status,
            parse_retry_after(response.headers.get("retry-after")),
            code,
            repeatable=call.repeatable or call.keyed,
            keyed=call.keyed,
            rng=self.rng,
        )

    @staticmethod
    def network_error(call: Call[Any], error: httpx.TransportError, tries: int) -> NetworkError:
        return NetworkError(f"{call.method} {call.path}: {type(error).__name__}: {error} (after {tries} tries)")

    @staticmethod
    def result(call: Call[T], response: httpx.Response) -> T:
        """The parsed answer, or the error it is raised as."""
        if response.status_code >= 400:
            raise error_from_response(
                response.status_code,
                response.content,
                response.headers,
                parse_retry_after(response.headers.get("retry-after")),
            )
        try:
            body = json.loads(response.content) if response.content else None
        except ValueError as exc:
            raise BillingError(
                f"{call.method} {call.path}: answer {response.status_code} is not JSON",
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
            ) from exc
        return call.parse(body)
