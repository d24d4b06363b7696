"""payments-svc settings (env prefix ``PAYMENTS_``)."""

from __future__ import annotations

from billing_runtime.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", extra="ignore")

    port: int = 8001
    database_url: str = "sqlite+aiosqlite:///./.data/payments.db"
    providers_url: str = "http://127.0.0.1:8002"
    # Where payers open checkout links (checkout-web's public URL).
    checkout_base_url: str = "http://127.0.0.1:8080"
    provider_timeout: float = 10.0
    sweep_interval: float = 5.0
    idempotency_retention_hours: int = 48
    # Seconds between the worker's event-log sequencer passes (PostgreSQL; see services/event_log.py).
    event_log_interval: float = 1.0
