"""Typed calls to the gateway's checkout API, with every failure mapped to one exception type."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, TypeVar

import aiohttp
from billing_runtime import tracing
from billing_runtime.middlewares import REQUEST_ID_HEADER
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from yarl import URL

log = logging.getLogger(__name__)

Minor = Annotated[int, Field(strict=True, ge=0)]
ModelT = TypeVar("ModelT", bound=BaseModel)


class CheckoutMerchant(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="ignore")

    display_name: str


class CheckoutProvider(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="ignore")

    name: str
    display_name: str


class Checkout(BaseModel):
    """The public view of one payment, as ``GET /v1/checkout/{token}`` returns it."""

    # Unknown fields are ignored and ``status`` is a plain string, so the gateway may grow the
    # contract (new fields, new statuses) without breaking the page.
    model_config = ConfigDict(defer_build=True, frozen=True, extra="ignore")

    status: str
    amount: Minor
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    currency_exponent: Annotated[int, Field(strict=True, ge=0, le=4)]
    description: str | None = None
    order_id: str
    merchant: CheckoutMerchant
    providers: list[CheckoutProvider] = []
    return_url: str | None = None
    expires_at: datetime | None = None
    failure_message: str | None = None
    # The provider whose attempt failed last, while the payment is payable again (payments-svc's
    # attempts): the page says the payment with it did not go through. None when none failed.
    failed_provider: str | None = None
    # API.md's test and live mode. None when the gateway does not say: the page then shows no test
    # banner, since telling a payer "no real money moves" about a live payment is the dangerous mistake.
    livemode: bool | None = None
    # The sites that may frame this payment's pages (its tenant's, checkout_web.embedding). None sent
    # (an older gateway): none, so the pages cannot be framed.
    allowed_origins: list[str] = []

    @property
    def test_mode(self) -> bool:
        return self.livemode is False


class PayResult(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="ignore")

    redirect_url: str


class GatewayError(Exception):
    """Base of every failure of a gateway call; ``code`` is the problem+json code when there was one."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class CheckoutNotFound(GatewayError):
    """404: no checkout for this token."""


class CheckoutNotPayable(GatewayError):
    """409: the payment is no longer payable (paid, expired, cancelled)."""


class ProviderNotAllowed(GatewayError):
    """422: the provider is not one the payer may choose for this payment."""


class GatewayUnavailable(GatewayError):
    """The gateway or something behind it is down, slow or rate limiting; trying later may work."""


class UnexpectedGatewayResponse(GatewayError):
    """An answer outside the contract (a bug on one side); not the payer's fault, not retryable."""


class GatewayClient:
    """Wraps the one ``ClientSession`` the app opens in its cleanup context."""

    def __init__(self, session: aiohttp.ClientSession, base_url: URL) -> None:
        self._session = session
        self._base_url = base_url

    def _url(self, token: str, *rest: str) -> URL:
        return self._base_url.joinpath("v1", "checkout", token, *rest)

    async def get_checkout(self, token: str, *, request_id: str | None = None) -> Checkout:
        body = await self._call("get_checkout", "GET", self._url(token), request_id=request_id)
        return _parse(Checkout, body)

    async def pay(self, token: str, provider: str, *, request_id: str | None = None) -> PayResult:
        body = await self._call(
            "pay", "POST", self._url(token, "pay"), json={"provider": provider}, request_id=request_id
        )
        return _parse(PayResult, body)

    async def _call(
        self,
        operation: str,
        method: str,
        url: URL,
        *,
        json: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> object:
        # Logs name the operation, never the URL: the token in it is the payer's credential.
        headers = {"Accept": "application/json"}
        if request_id is not None:
            headers[REQUEST_ID_HEADER] = request_id
        tracing.inject(headers)  # the payer's page view and the payment it pays are one trace
        try:
            async with self._session.request(method, url, json=json, headers=headers) as response:
                if response.status == 200:
                    return await response.json(content_type=None)
                is_problem = response.content_type == "application/problem+json"
                problem = await _problem(response)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("gateway %s failed (request %s): %r", operation, request_id, exc)
            raise GatewayUnavailable(f"gateway unreachable: {type(exc).__name__}") from exc
        except ValueError as exc:
            raise UnexpectedGatewayResponse("gateway answered 200 with a body that is not JSON") from exc
        if not is_problem:
            # The gateway answers every error with problem+json; anything else (a bare 404 from a wrong
            # gateway_url, a proxy's HTML 502) is a deployment fault, not the payer's bad link.
            log.error(
                "gateway %s answered %s %s (request %s)", operation, response.status, response.content_type, request_id
            )
            if response.status in (502, 503, 504):
                raise GatewayUnavailable(f"gateway answered {response.status}")
            raise UnexpectedGatewayResponse(f"gateway answered {response.status} without problem+json")
        raise _error_for(response.status, problem)


async def _problem(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        body = await response.json(content_type=None)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error_for(status: int, problem: dict[str, Any]) -> GatewayError:
    code = problem.get("code") if isinstance(problem.get("code"), str) else None
    detail = problem.get("detail") if isinstance(problem.get("detail"), str) else None
    message = f"gateway answered {status} {code or ''}: {detail or ''}".strip()
    if status == 404:
        return CheckoutNotFound(message, code=code)
    if status == 409:
        return CheckoutNotPayable(message, code=code)
    if status == 422:
        return ProviderNotAllowed(message, code=code)
    if status in (429, 502, 503, 504):
        return GatewayUnavailable(message, code=code)
    log.error("unexpected gateway answer: %s", message)
    return UnexpectedGatewayResponse(message, code=code)


def _parse(model: type[ModelT], body: object) -> ModelT:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        log.error("gateway answer does not match %s: %s", model.__name__, exc)
        raise UnexpectedGatewayResponse(f"gateway answer does not match {model.__name__}") from exc
