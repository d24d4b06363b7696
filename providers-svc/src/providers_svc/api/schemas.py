"""HTTP models of the internal API, and turning pydantic errors into a 422 problem."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypeVar

from billing_contracts.problems import FieldError
from billing_runtime.problems import validation_error
from pydantic import AnyHttpUrl, AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, ValidationError

from providers_svc.domain.transactions import Transaction

CURRENCY_PATTERN = r"^[A-Z]{3}$"

ModelT = TypeVar("ModelT", bound=BaseModel)


class StartPaymentRequest(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True)

    payment_id: str = Field(min_length=1, max_length=64)
    provider: str = Field(min_length=1, max_length=32)
    amount: StrictInt = Field(gt=0)
    currency: str = Field(pattern=CURRENCY_PATTERN)
    order_id: str | None = Field(default=None, max_length=128)
    description: str | None = Field(default=None, max_length=1000)
    return_url: AnyHttpUrl | None = Field(default=None)
    expires_at: AwareDatetime | None = None
    capture_method: Literal["automatic", "manual"] = "automatic"


class CaptureRequest(BaseModel):
    """``POST /internal/payments/{payment_id}/capture``: capture ``amount`` of the authorized payment."""

    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True)

    provider: str = Field(min_length=1, max_length=32)
    amount: StrictInt = Field(gt=0)
    currency: str = Field(pattern=CURRENCY_PATTERN)


class RefundCheckRequest(BaseModel):
    """``POST /internal/refunds/check`` (docs/INTERNAL.md "Refunds (issue 13)")."""

    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True)

    payment_id: str = Field(min_length=1, max_length=64)
    provider: str = Field(min_length=1, max_length=32)
    amount: StrictInt = Field(gt=0)
    payment_amount: StrictInt = Field(gt=0)
    currency: str = Field(pattern=CURRENCY_PATTERN)
    amount_refunded: StrictInt = Field(default=0, ge=0)
    paid_at: AwareDatetime | None = None


class ProvidersQuery(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True)

    currency: str | None = Field(default=None, pattern=CURRENCY_PATTERN)


def parse(model: type[ModelT], data: dict[str, Any]) -> ModelT:
    """Validate ``data`` or raise a 422 naming every invalid field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            FieldError(field=".".join(str(p) for p in err["loc"]) or "body", message=err["msg"])
            for err in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise validation_error(errors) from exc


def rfc3339(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def transaction_json(txn: Transaction) -> dict[str, Any]:
    return {
        "provider_transaction_id": txn.id,
        "redirect_url": txn.redirect_url,
        "provider_reference": txn.provider_reference,
        "status": txn.status.value,
        "expires_at": rfc3339(txn.expires_at),
    }
