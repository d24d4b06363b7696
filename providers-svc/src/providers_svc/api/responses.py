"""Response bodies of providers-svc's admin and tenant APIs, for the OpenAPI document (api/openapi.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class _Response(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")


class ProviderAccount(_Response):
    """One merchant's account at a provider: which credentials are set, never their values."""

    id: str
    object: Literal["provider_account"] = "provider_account"
    provider: str
    name: str
    environment: Literal["test", "production"]
    currencies: list[str]
    settings: dict[str, Any]
    credentials_set: list[str]
    created_at: datetime
    updated_at: datetime


class ProviderAccountList(_Response):
    object: Literal["list"] = "list"
    data: list[ProviderAccount]
    limit: int
    offset: int
    has_more: bool


class DeletedProviderAccount(_Response):
    id: str
    object: Literal["provider_account"] = "provider_account"
    deleted: Literal[True] = True


class ProviderAccountAssignment(_Response):
    object: Literal["provider_account_assignment"] = "provider_account_assignment"
    tenant_id: str
    provider: str
    provider_account: ProviderAccount
    assigned_at: datetime


class ProviderAccountAssignmentList(_Response):
    object: Literal["list"] = "list"
    data: list[ProviderAccountAssignment]


class TenantProvider(_Response):
    """A provider the tenant's payments are offered (``GET /v1/providers``), with no credential."""

    object: Literal["provider"] = "provider"
    name: str
    display_name: str
    environment: Literal["test", "production"]
    livemode: bool
    source: Literal["account", "sandbox", "simulator"]
    currencies: list[str]


class TenantProviderList(_Response):
    object: Literal["list"] = "list"
    data: list[TenantProvider]
    has_more: bool


class DeletedProviderAccountAssignment(_Response):
    object: Literal["provider_account_assignment"] = "provider_account_assignment"
    provider: str
    deleted: Literal[True] = True


class StripeObject(_Response):
    """A projected Stripe object: our fields, and under ``stripe_object`` the object exactly as Stripe
    last described it."""

    id: str
    object: str
    account: str
    stripe_account: str | None
    livemode: bool
    deleted: bool
    created: datetime
    customer: str | None
    status: str | None
    amount: int | None
    currency: str | None
    metadata: dict[str, str]
    subscription_metadata: dict[str, str] | None
    sequence: int
    stripe_event_id: str
    stripe_event_type: str
    updated_at: datetime
    stripe_object: dict[str, Any]


class AdminStripeObject(StripeObject):
    """As a tenant sees it, plus the tenant it is attributed to (none: not attributed)."""

    tenant_id: str | None


class StripeObjectList(_Response):
    object: Literal["list"] = "list"
    data: list[StripeObject]
    limit: int
    has_more: bool


class AdminStripeObjectList(_Response):
    object: Literal["list"] = "list"
    data: list[AdminStripeObject]
    limit: int
    has_more: bool
