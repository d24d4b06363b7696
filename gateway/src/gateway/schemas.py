"""HTTP request models and the JSON shapes the gateway answers with."""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from billing_contracts.problems import FieldError
from billing_runtime.problems import validation_error
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.db.models import Tenant
from gateway.origins import MAX_ALLOWED_ORIGINS, normalise_origin, normalise_origins
from gateway.responses import Tenant as TenantOut

APP_NAME_PATTERN = r"^[a-z0-9-]{3,64}$"
_CONTROL_OR_SURROGATE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

_FRIENDLY_MESSAGES = {
    "app_name": "must be 3-64 characters of a-z, 0-9 and '-'",
    "display_name": "must be a string of 1-200 characters",
    "livemode": "must be true or false",
    "disabled": "must be true or false",
    "allowed_origins": f"must be a list of at most {MAX_ALLOWED_ORIGINS} origins",
}
# Fields a PATCH may not carry, with why.
_FIXED_FIELDS = {"livemode": "is fixed when the tenant is created", "app_name": "cannot be changed"}

ModelT = TypeVar("ModelT", bound=BaseModel)


def _utf8(value: str) -> str:
    # JSON may carry lone surrogates (\ud800), which no database or hash function can encode.
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("must be valid UTF-8 text") from None
    return value


def _printable(value: str) -> str:
    if _CONTROL_OR_SURROGATE.search(value):
        raise ValueError("must not contain control characters")
    return value


# Exact origins that may frame the tenant's checkout and receive its messages (gateway.origins).
AllowedOrigins = Annotated[
    list[Annotated[str, AfterValidator(normalise_origin)]],
    Field(max_length=MAX_ALLOWED_ORIGINS),
    AfterValidator(normalise_origins),
]


class TenantCreate(BaseModel):
    model_config = ConfigDict(defer_build=True, strict=True)

    app_name: Annotated[str, StringConstraints(pattern=APP_NAME_PATTERN)]
    display_name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(_printable)
    ]
    # Fixed for life: a test tenant never becomes live, nor the reverse (API.md).
    livemode: bool = False
    allowed_origins: AllowedOrigins = []


class TenantUpdate(BaseModel):
    """``PATCH /admin/tenants/{id}``: ``disabled`` and ``allowed_origins`` may change, each only when
    sent (``livemode`` is fixed for life)."""

    model_config = ConfigDict(defer_build=True, strict=True, extra="forbid")

    disabled: bool | None = None
    allowed_origins: AllowedOrigins | None = None

    @field_validator("disabled", "allowed_origins", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Absent means "leave it"; an explicit null is a mistake, not a way to clear a field.
        if value is None:
            raise ValueError("must not be null")
        return value

    @model_validator(mode="after")
    def _something(self) -> TenantUpdate:
        if not self.model_fields_set:
            raise ValueError("send disabled or allowed_origins")
        return self


class TokenRequest(BaseModel):
    model_config = ConfigDict(defer_build=True, strict=True)

    app_name: Annotated[str, AfterValidator(_utf8)]
    secret: Annotated[str, AfterValidator(_utf8)]


def parse(model: type[ModelT], data: Any) -> ModelT:
    """Validate ``data`` or raise a 422 problem naming every invalid field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [_field_error(error) for error in exc.errors()]
        raise validation_error(errors, f"{errors[0].field} {errors[0].message}") from exc


def _field_error(error: Any) -> FieldError:
    field = ".".join(str(part) for part in error["loc"]) or "body"
    if error["type"] == "missing":
        message = "is required"
    elif error["type"] == "extra_forbidden":
        message = _FIXED_FIELDS.get(field, "is not a field that can be changed")
    elif error["type"] == "value_error":
        message = str(error["ctx"]["error"])
    else:
        message = _FRIENDLY_MESSAGES.get(field, error["msg"])
    return FieldError(field=field, message=message)


def tenant_model(tenant: Tenant) -> TenantOut:
    return TenantOut(
        id=tenant.id,
        app_name=tenant.app_name,
        display_name=tenant.display_name,
        livemode=tenant.livemode,
        disabled=tenant.disabled,
        allowed_origins=list(tenant.allowed_origins),
        previous_secret_expires_at=tenant.previous_secret_expires_at,
        created_at=tenant.created_at,
        updated_at=tenant.updated_at,
    )


def tenant_json(tenant: Tenant) -> dict[str, Any]:
    return tenant_model(tenant).model_dump(mode="json")
