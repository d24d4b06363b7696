"""Commands as tenants and payers send them. Strict: no coercion (``"5000"`` and ``50.0`` are not
amounts), unknown fields
rejected, strings free of control characters (PostgreSQL cannot store NUL; logs should not carry them)."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,63}$")
_PHONE = re.compile(r"^\+?[0-9 ()\-]{4,32}$")
_PROVIDER = re.compile(r"^[a-z0-9_-]{1,32}$")


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http or https URL")
    return value


def _email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError("must be an email address")
    return value


def _phone(value: str) -> str:
    if not _PHONE.fullmatch(value):
        raise ValueError("must be a phone number")
    return value


def _provider(value: str) -> str:
    if not _PROVIDER.fullmatch(value):
        raise ValueError("must be a provider name ([a-z0-9_-], 1-32)")
    return value


Text = Annotated[StrictStr, AfterValidator(_no_control)]
_MetadataKey = Annotated[StrictStr, Field(min_length=1, max_length=40), AfterValidator(_no_control)]
_MetadataValue = Annotated[StrictStr, Field(max_length=500), AfterValidator(_no_control)]


class CustomerIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)

    email: Annotated[Text, Field(max_length=254), AfterValidator(_email)] | None = None
    name: Annotated[Text, Field(min_length=1, max_length=200)] | None = None
    phone: Annotated[Text, AfterValidator(_phone)] | None = None


class PaymentCreate(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)

    amount: StrictInt
    currency: Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}$")]
    order_id: Annotated[Text, Field(min_length=1, max_length=128)]
    description: Annotated[Text, Field(max_length=1000)] | None = None
    customer: CustomerIn | None = None
    return_url: Annotated[Text, Field(max_length=2048), AfterValidator(_http_url)] | None = None
    metadata: Annotated[dict[_MetadataKey, _MetadataValue], Field(max_length=20)] = {}
    expires_in: Annotated[StrictInt, Field(ge=60, le=86400)] = 1800
    providers: (
        Annotated[list[Annotated[StrictStr, AfterValidator(_provider)]], Field(min_length=1, max_length=10)] | None
    ) = None
    # Stripe's ``capture_method``: ``manual`` only authorizes (AUTHORIZED) and the tenant captures later.
    capture_method: Literal["automatic", "manual"] = "automatic"


class CheckoutPay(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)

    provider: Annotated[StrictStr, AfterValidator(_provider)]


# Above any amount a currency allows, and far inside BIGINT: a larger number is not an amount.
MAX_REFUND_AMOUNT = 10**15


class RefundCreate(BaseModel):
    """``POST /v1/payments/{id}/refunds``: ``amount`` None means all that remains refundable."""

    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)

    amount: Annotated[StrictInt, Field(gt=0, le=MAX_REFUND_AMOUNT)] | None = None
    reason: Annotated[Text, Field(min_length=1, max_length=500)] | None = None


class CaptureCreate(BaseModel):
    """``POST /v1/payments/{id}/capture``: ``amount`` None captures all of ``amount_capturable``."""

    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)

    amount: Annotated[StrictInt, Field(gt=0, le=MAX_REFUND_AMOUNT)] | None = None
