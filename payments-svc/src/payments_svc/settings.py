"""payments-svc settings (env prefix ``PAYMENTS_``)."""

from __future__ import annotations

from billing_runtime.secret_policy import optional_secret, required_secret
from billing_runtime.settings import InternalServiceSettings
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict


class Settings(InternalServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", extra="ignore")

    port: int = 8001
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/payments"
    providers_url: str = "http://127.0.0.1:8002"
    # providers-svc's own internal key (its PROVIDERS_INTERNAL_SECRET), to sign the calls made to it.
    providers_internal_secret: SecretStr = Field(default=None, validate_default=True)
    # The key reconciliation-svc signs its calls here with (it holds it as
    # RECONCILIATION_PAYMENTS_INTERNAL_SECRET): a key of its own, so that reconciliation-svc cannot sign
    # as the gateway and the gateway's key cannot sign as reconciliation. Unset: reconciliation-svc is
    # refused (its rebuild cannot read the event log).
    reconciliation_internal_secret: SecretStr | None = None
    # Where payers open checkout links (checkout-web's public URL).
    checkout_base_url: str = "http://127.0.0.1:8080"
    provider_timeout: float = 10.0
    sweep_interval: float = 5.0
    idempotency_retention_hours: int = 48
    # Seconds between the worker's event-log sequencer passes (PostgreSQL; see services/event_log.py).
    event_log_interval: float = 5.0

    _providers_internal_secret = field_validator("providers_internal_secret", mode="before")(required_secret)
    _reconciliation_internal_secret = field_validator("reconciliation_internal_secret", mode="before")(optional_secret)
