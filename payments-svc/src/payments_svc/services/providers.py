"""What payments-svc needs from providers-svc, as a port. The HTTP adapter lives in ``api/``-free
``services/providers_http.py`` so tests and the embedded mode can swap transports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from payments_svc.domain.payment import MANUAL_CAPTURE_PROVIDERS


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    display_name: str
    # False for a test provider (the sandbox, a simulator, a test account), which never moves a live
    # payment; None when providers-svc does not say.
    livemode: bool | None = None
    # The capture methods providers-svc says it can start with this provider (None: it does not say,
    # and the provider's name decides: ``domain.payment.MANUAL_CAPTURE_PROVIDERS``).
    capture_methods: frozenset[str] | None = None

    @property
    def manual_capture(self) -> bool:
        if self.capture_methods is not None:
            return "manual" in self.capture_methods
        return self.name in MANUAL_CAPTURE_PROVIDERS


@dataclass(frozen=True)
class StartedPayment:
    provider_transaction_id: str
    redirect_url: str
    provider_reference: str | None


@dataclass(frozen=True)
class StartRequest:
    payment_id: str
    provider: str
    amount: int
    currency: str
    order_id: str
    description: str | None
    return_url: str
    expires_at: datetime
    customer: dict[str, Any] | None
    capture_method: str = "automatic"


@dataclass(frozen=True)
class CaptureRequest:
    """Capture ``amount`` of an authorized payment at its provider (the rest of the hold is released)."""

    payment_id: str
    provider: str
    amount: int
    currency: str


@dataclass(frozen=True)
class Captured:
    """The provider confirmed the capture: what it took, and its reference of the payment."""

    amount: int
    provider_reference: str | None = None


@dataclass(frozen=True)
class RefundCheck:
    """What providers-svc needs to say whether the payment's provider can refund ``amount`` of it
    (docs/INTERNAL.md "Refunds (issue 13)")."""

    payment_id: str
    provider: str
    amount: int
    payment_amount: int
    currency: str
    amount_refunded: int
    paid_at: datetime


class ProvidersPort(Protocol):
    """Every call names the payment's mode: providers-svc offers and moves a live payment only through
    live accounts (API.md "Test mode and live mode")."""

    async def available(self, tenant_id: str, currency: str, *, livemode: bool) -> list[ProviderInfo]: ...

    async def start(self, tenant_id: str, request: StartRequest, *, livemode: bool) -> StartedPayment: ...

    async def cancel(self, tenant_id: str, payment_id: str, *, livemode: bool) -> bool:
        """True when nothing can be paid any more at any provider; False when a provider has the money."""
        ...

    async def void(self, tenant_id: str, payment_id: str, provider_transaction_id: str, *, livemode: bool) -> bool:
        """Close one attempt at its provider so that it can no longer take money (Stripe: cancel the
        PaymentIntent or expire the Checkout Session; Octo: cancel; Payme, Click, the sandbox and the
        simulators: refuse its callbacks from now on). True when it is closed; False when its provider
        took, or is taking, the money."""
        ...

    async def capture(self, tenant_id: str, request: CaptureRequest, *, livemode: bool) -> Captured:
        """Return once the provider captured (idempotent: a repeat after a capture is answered with it);
        raise the provider's refusal (409/422 ``ProblemError``) or 503 ``provider_unavailable``, after
        which nothing may be assumed captured (a retry finds out)."""
        ...

    async def check_refund(self, tenant_id: str, check: RefundCheck, *, livemode: bool) -> None:
        """Return when the provider can refund this; raise the provider's refusal (a 409/422
        ``ProblemError`` to pass on to the tenant unchanged) or 503 ``provider_unavailable``."""
        ...
