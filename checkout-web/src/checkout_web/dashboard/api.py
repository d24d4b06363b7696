"""The dashboard's calls to the gateway's public tenant API, with the session's access token, every
failure mapped to one exception type. Logs name the call and the request id, never a token or URL."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from billing_runtime import tracing
from billing_runtime.middlewares import REQUEST_ID_HEADER
from yarl import URL

from checkout_web.gateway_client import GatewayUnavailable, UnexpectedGatewayResponse

log = logging.getLogger(__name__)


class SessionRejected(Exception):
    """The gateway refused the session's access token (expired, revoked, tenant disabled)."""


class ApiProblem(Exception):
    """A 4xx problem the page explains (not found, invalid state, validation)."""

    def __init__(self, status: int, code: str, detail: str, body: Mapping[str, Any]) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.detail = detail
        self.body = body


class GatewayTimeout(GatewayUnavailable):
    """The gateway did not answer within the dashboard's budget."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: Mapping[str, str]


class TenantApi:
    def __init__(
        self, session: aiohttp.ClientSession, base_url: URL, *, timeout: float, connect_timeout: float
    ) -> None:
        self._session = session
        self._base_url = base_url
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(connect_timeout, timeout))
        self.timeout_seconds = timeout

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None,
        query: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> Answer:
        """``path`` is relative to the gateway (``v1/payments``); its parts are the caller's, checked."""
        url = self._base_url.joinpath(*path.split("/"))
        if query:
            url = url.with_query({k: v for k, v in query.items() if v})
        sent = {"Accept": "application/json", **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if request_id is not None:
            sent[REQUEST_ID_HEADER] = request_id
        tracing.inject(sent)
        operation = f"{method} {path.split('/')[1] if '/' in path else path}"
        try:
            async with self._session.request(method, url, json=json, headers=sent, timeout=self._timeout) as response:
                status = response.status
                content_type = response.content_type
                answer_headers = {k: v for k, v in response.headers.items() if k in ("Retry-After",)}
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
        except TimeoutError as exc:
            log.warning("gateway %s timed out (request %s)", operation, request_id)
            raise GatewayTimeout("the gateway did not answer in time") from exc
        except aiohttp.ClientError as exc:
            log.warning("gateway %s failed (request %s): %s", operation, request_id, type(exc).__name__)
            raise GatewayUnavailable(f"gateway unreachable: {type(exc).__name__}") from exc
        if status < 400:
            if not isinstance(body, dict):
                raise UnexpectedGatewayResponse(f"gateway answered {status} without a JSON object")
            return Answer(status, body, answer_headers)
        problem = body if isinstance(body, dict) and content_type == "application/problem+json" else None
        if problem is None:
            log.error("gateway %s answered %s %s (request %s)", operation, status, content_type, request_id)
            if status in (502, 503, 504):
                raise GatewayUnavailable(f"gateway answered {status}")
            raise UnexpectedGatewayResponse(f"gateway answered {status} without problem+json")
        code = problem.get("code") if isinstance(problem.get("code"), str) else "error"
        detail = problem.get("detail") if isinstance(problem.get("detail"), str) else ""
        if status == 401 and token is not None:
            raise SessionRejected(code)
        if status in (429, 502, 503, 504) and token is not None:
            raise GatewayUnavailable(f"gateway answered {status} {code}", code=code)
        if 400 <= status < 500 or status == 503:
            raise ApiProblem(
                status, str(code), str(detail), {**problem, "_retry_after": answer_headers.get("Retry-After")}
            )
        raise UnexpectedGatewayResponse(f"gateway answered {status} {code}", code=str(code))
