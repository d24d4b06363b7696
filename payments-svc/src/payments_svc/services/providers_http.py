"""HTTP adapter of ``ProvidersPort``: calls providers-svc's internal API with an internal token."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
from billing_contracts.problems import FieldError
from billing_runtime import tracing
from billing_runtime.errors import ProblemError
from billing_runtime.internal_auth import INTERNAL_HEADER, InternalSigner

from payments_svc.services.providers import (
    Captured,
    CaptureRequest,
    ProviderInfo,
    RefundCheck,
    StartedPayment,
    StartRequest,
)

log = logging.getLogger(__name__)


def _unavailable() -> ProblemError:
    return ProblemError(
        503, "provider_unavailable", "The payment provider service is unavailable.", headers={"Retry-After": "5"}
    )


# providers-svc's refusals to start a provider the tenant's payment is not offered.
_NOT_OFFERED = frozenset({"unknown_provider", "currency_not_supported", "capture_method_unsupported"})


class HttpProviders:
    """Opened and closed by the app's cleanup context (its ClientSession must live inside a loop)."""

    def __init__(self, base_url: str, internal_secret: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        # One token per (tenant, mode) reused while more than half its life remains: signing one per
        # call was a few percent of payments-api's CPU under load, and providers-svc remembers the
        # tokens it has verified.
        self._signer = InternalSigner(internal_secret, issuer="payments")
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self, tenant_id: str, livemode: bool) -> dict[str, str]:
        # The payment's mode travels in the token: providers-svc serves a live payment only through
        # live accounts, whatever the request's body says.
        token = self._signer.token(audience="providers", tenant_id=tenant_id, livemode=livemode)
        headers = {INTERNAL_HEADER: token}
        tracing.inject(headers)  # providers-svc continues the payment's trace
        return headers

    async def _call(
        self,
        method: str,
        path: str,
        tenant_id: str,
        livemode: bool,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        try:
            assert self._session is not None, "open() first"
            async with self._session.request(
                method, self.base_url + path, headers=self._headers(tenant_id, livemode), json=json, params=params
            ) as response:
                body = await response.json(content_type=None)
                return response.status, body if isinstance(body, dict) else {}
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            log.warning("providers-svc %s %s failed: %s", method, path, exc)
            raise _unavailable() from exc

    async def available(self, tenant_id: str, currency: str, *, livemode: bool) -> list[ProviderInfo]:
        status, body = await self._call(
            "GET", "/internal/providers", tenant_id, livemode, params={"currency": currency}
        )
        if status != 200:
            raise _unavailable()
        return [
            ProviderInfo(p["name"], p.get("display_name", p["name"]), _provider_mode(p), _capture_methods(p))
            for p in body.get("data", [])
        ]

    async def start(self, tenant_id: str, request: StartRequest, *, livemode: bool) -> StartedPayment:
        payload = {
            "payment_id": request.payment_id,
            "provider": request.provider,
            "amount": request.amount,
            "currency": request.currency,
            "order_id": request.order_id,
            "description": request.description,
            "return_url": request.return_url,
            "expires_at": request.expires_at.isoformat(),
            "customer": request.customer,
            "capture_method": request.capture_method,
        }
        status, body = await self._call("POST", "/internal/payments/start", tenant_id, livemode, json=payload)
        if status == 200:
            return StartedPayment(body["provider_transaction_id"], body["redirect_url"], body.get("provider_reference"))
        if status == 422 and body.get("code") in _NOT_OFFERED:
            # The tenant has no such provider for this payment's mode and currency: the checkout's own
            # refusal (it no longer asks for the list before every click).
            raise ProblemError(422, "provider_not_allowed", f"{request.provider} is not available for this payment.")
        if status in (409, 422):
            raise ProblemError(status, body.get("code", "provider_rejected"), body.get("detail"))
        raise _unavailable()

    async def cancel(self, tenant_id: str, payment_id: str, *, livemode: bool) -> bool:
        status, _body = await self._call("POST", f"/internal/payments/{payment_id}/cancel", tenant_id, livemode)
        if status == 200:
            return True
        if status == 409:
            return False
        raise _unavailable()

    async def void(self, tenant_id: str, payment_id: str, provider_transaction_id: str, *, livemode: bool) -> bool:
        path = f"/internal/payments/{payment_id}/transactions/{provider_transaction_id}/void"
        status, _body = await self._call("POST", path, tenant_id, livemode)
        if status == 200:
            return True
        if status == 409:
            return False
        raise _unavailable()

    async def capture(self, tenant_id: str, request: CaptureRequest, *, livemode: bool) -> Captured:
        payload = {"provider": request.provider, "amount": request.amount, "currency": request.currency}
        path = f"/internal/payments/{request.payment_id}/capture"
        status, body = await self._call("POST", path, tenant_id, livemode, json=payload)
        captured = body.get("amount_captured")
        if status == 200 and isinstance(captured, int) and not isinstance(captured, bool) and captured > 0:
            reference = body.get("provider_reference")
            return Captured(captured, reference if isinstance(reference, str) else None)
        if status in (409, 422) and isinstance(body.get("code"), str):
            raise passed_on(status, body)
        log.warning("providers-svc capture answered %s with code %r", status, body.get("code"))
        raise _unavailable()

    async def check_refund(self, tenant_id: str, check: RefundCheck, *, livemode: bool) -> None:
        payload = {
            "payment_id": check.payment_id,
            "provider": check.provider,
            "amount": check.amount,
            "payment_amount": check.payment_amount,
            "currency": check.currency,
            "amount_refunded": check.amount_refunded,
            "paid_at": check.paid_at.isoformat().replace("+00:00", "Z"),
        }
        status, body = await self._call("POST", "/internal/refunds/check", tenant_id, livemode, json=payload)
        if status == 200 and body.get("refundable") is True:
            return
        if status in (409, 422) and isinstance(body.get("code"), str):
            raise passed_on(status, body)
        # Anything else (a 200 that does not say yes included) is not an answer we can act on.
        log.warning("providers-svc refund check answered %s with code %r", status, body.get("code"))
        raise _unavailable()


# The members of a problem that ``ProblemError`` carries itself; the rest are its extensions.
_PROBLEM_MEMBERS = frozenset({"type", "title", "status", "code", "detail", "instance", "errors", "request_id"})


def passed_on(status: int, body: dict[str, Any]) -> ProblemError:
    """providers-svc's refusal as the tenant's problem, unchanged: its status, code, title, detail,
    field errors and extension members (a fresh ``request_id`` and ``instance`` are the tenant's)."""
    errors = body.get("errors")
    field_errors = None
    if isinstance(errors, list):
        field_errors = [
            FieldError(field=str(e.get("field")), message=str(e.get("message"))) for e in errors if isinstance(e, dict)
        ]
    detail, title = body.get("detail"), body.get("title")
    return ProblemError(
        status,
        body["code"],
        detail if isinstance(detail, str) else None,
        title=title if isinstance(title, str) else None,
        errors=field_errors or None,
        extensions={k: v for k, v in body.items() if k not in _PROBLEM_MEMBERS},
    )


def _provider_mode(entry: dict[str, Any]) -> bool | None:
    """Whether providers-svc marks the provider live (``livemode``) or test (``environment``)."""
    livemode = entry.get("livemode")
    if isinstance(livemode, bool):
        return livemode
    environment = entry.get("environment")
    if environment in ("test", "production"):
        return bool(environment == "production")
    return None


def _capture_methods(entry: dict[str, Any]) -> frozenset[str] | None:
    methods = entry.get("capture_methods")
    if isinstance(methods, list) and all(isinstance(m, str) for m in methods):
        return frozenset(methods)
    return None
