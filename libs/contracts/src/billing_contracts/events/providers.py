"""Events published by providers-svc: what a provider told us about a payment."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from billing_contracts.config import CONTRACT
from billing_contracts.envelope import EventBase


class ProviderPaymentOutcome(BaseModel):
    """The provider's verdict on one payment attempt, in our units (minor units + ISO 4217)."""

    model_config = CONTRACT

    payment_id: str
    provider: str
    provider_transaction_id: str
    provider_reference: str | None = None
    amount: int
    currency: str
    failure_code: str | None = None
    failure_message: str | None = None
    livemode: bool = False
    # How providers-svc learned it: ``callback`` (the provider called us) or ``status_check`` (we asked
    # the provider: the reconciliation janitor healing a missed callback). Optional within v1.
    observed_via: Literal["callback", "status_check"] = "callback"
    # The provider account the attempt went through (None for the sandbox): reconciliation compares a
    # provider account's statement with the payments of that account. Optional within v1.
    account_id: str | None = None
    # Manual capture: when the provider's hold lapses (``provider.payment.authorized``); None when the
    # provider does not say. Optional within v1.
    authorization_expires_at: datetime | None = None


class _ProviderEvent(EventBase):
    source: str = "providers"
    data: ProviderPaymentOutcome


class ProviderPaymentAuthorizedV1(_ProviderEvent):
    """The provider holds ``amount`` for a manual-capture payment (authorized, not captured): nothing is
    taken until we capture it, and the hold lapses at ``authorization_expires_at``."""

    event_type: Literal["provider.payment.authorized"] = "provider.payment.authorized"


class ProviderPaymentSucceededV1(_ProviderEvent):
    """The provider confirmed (captured) the payment through a verified callback, or confirmed our
    capture of an authorized one: ``amount`` is what it took (for a partial capture, less than the
    payment's amount)."""

    event_type: Literal["provider.payment.succeeded"] = "provider.payment.succeeded"


class ProviderPaymentFailedV1(_ProviderEvent):
    """The provider declined or cancelled the payment through a verified callback."""

    event_type: Literal["provider.payment.failed"] = "provider.payment.failed"


PROVIDER_EVENTS: tuple[type[_ProviderEvent], ...] = (
    ProviderPaymentSucceededV1,
    ProviderPaymentFailedV1,
    ProviderPaymentAuthorizedV1,
)
