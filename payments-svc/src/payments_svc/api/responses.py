"""Response bodies of payments-svc's public API that are not contract snapshots: lists, the status
history, the event log and the checkout view. The OpenAPI document is generated from them (api/openapi.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from billing_contracts.events import PaymentAttemptSnapshot, PaymentSnapshot, RefundSnapshot
from pydantic import BaseModel, ConfigDict


class _Response(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")


class PaymentList(_Response):
    object: Literal["list"] = "list"
    data: list[PaymentSnapshot]
    limit: int
    offset: int
    has_more: bool


class RefundList(_Response):
    object: Literal["list"] = "list"
    data: list[RefundSnapshot]
    limit: int
    offset: int
    has_more: bool


class AttemptList(_Response):
    """All of a payment's attempts, oldest first (a handful at most: one page)."""

    object: Literal["list"] = "list"
    data: list[PaymentAttemptSnapshot]
    has_more: bool


class StatusChange(_Response):
    """One step of a payment's status history: who moved it, when and why."""

    from_status: str | None
    to_status: str
    actor: str
    reason: str | None
    event_id: str | None
    created_at: datetime


class PaymentHistory(_Response):
    object: Literal["list"] = "list"
    data: list[StatusChange]


class Event(_Response):
    """One entry of the tenant's event log: ``data`` is the webhook's ``data`` (``payment``, and
    ``refund`` or ``dispute`` for those events)."""

    id: str
    object: Literal["event"] = "event"
    type: str
    livemode: bool
    created_at: datetime
    data: dict[str, Any]


class EventList(_Response):
    object: Literal["list"] = "list"
    data: list[Event]
    limit: int
    has_more: bool


class Merchant(_Response):
    display_name: str


class CheckoutProvider(_Response):
    name: str
    display_name: str


class CheckoutView(_Response):
    """The public view of one payment for its payer: nothing secret."""

    livemode: bool
    status: str
    amount: int
    currency: str
    currency_exponent: int
    description: str | None
    order_id: str
    merchant: Merchant
    providers: list[CheckoutProvider]
    provider: str | None
    return_url: str | None
    expires_at: datetime
    failure_message: str | None
    # The provider whose attempt failed last, while the payer may choose again (else null).
    failed_provider: str | None
    attempt_count: int
    # Added by the gateway (it owns tenants): the origins whose pages may frame the hosted checkout.
    allowed_origins: list[str]


class CheckoutRedirect(_Response):
    redirect_url: str
