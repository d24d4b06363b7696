"""Settings of the hosted payment page and the tenant dashboard (environment prefix ``CHECKOUT_``)."""

from __future__ import annotations

from typing import Any

from billing_runtime.key_ring import key_ring_problem
from billing_runtime.secret_policy import env_name
from billing_runtime.settings import ServiceSettings
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict
from yarl import URL


class Settings(ServiceSettings):
    """Built once in ``__main__`` (or by the embedded runner / tests) and passed to ``create_app``."""

    model_config = SettingsConfigDict(env_prefix="CHECKOUT_", extra="ignore")

    port: int = 8080
    # The dashboard's sessions and sign-in throttles (never the payer's pages, which keep no state).
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/checkout"
    database_pool_size: int = Field(default=5, ge=1, le=500)
    # The public gateway; checkout-web never calls a service directly.
    gateway_url: str = "http://127.0.0.1:8000"
    # Whole-request budget for one gateway call; a payer waits at most this long for an answer.
    request_timeout: float = Field(default=10.0, gt=0, le=120)
    connect_timeout: float = Field(default=3.0, gt=0, le=60)
    # No frame-ancestors setting: who may frame a payment's pages is its tenant's allowed_origins,
    # from the checkout view (CHECKOUT_FRAME_ANCESTORS, which applied one list to every tenant, is gone).
    # Cache lifetime of checkout.js and the stylesheets (they are revalidated by ETag after that).
    asset_max_age: int = Field(default=3600, ge=0)

    # Fernet keys (comma-separated; the first encrypts, every one decrypts) that encrypt the tenants'
    # access tokens kept in dashboard sessions. Required: no default outside the embedded mode.
    session_keys: SecretStr = Field(default=None, validate_default=True)
    # A session ends after this long without a request, and at the latest this long after sign-in (and
    # never after its access token expires).
    session_idle_seconds: int = Field(default=1800, ge=60, le=86400)
    session_max_seconds: int = Field(default=43200, ge=300, le=604800)
    # Sign-in attempts allowed per window, per client address and per app name (kept in the database,
    # so every replica counts together).
    login_window_seconds: int = Field(default=900, ge=1, le=86400)
    login_limit_per_client: int = Field(default=10, ge=1, le=10000)
    login_limit_per_app: int = Field(default=30, ge=1, le=10000)
    # Addresses or CIDR blocks whose X-Forwarded-For / X-Forwarded-Proto are believed (an ingress).
    trusted_proxies: str = ""
    # Budget of one gateway call made for a dashboard page: past it the page says the gateway is slow.
    dashboard_timeout: float = Field(default=5.0, gt=0, le=120)
    # The URLs tenants use, shown in the dashboard's API docs (default: the gateway URL above, and the
    # origin the dashboard was reached on).
    public_gateway_url: str | None = None
    public_checkout_url: str | None = None

    @field_validator("gateway_url", "public_gateway_url", "public_checkout_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("must be an absolute http(s) URL")
        return value

    @field_validator("session_keys", mode="before")
    @classmethod
    def _fernet_keys(cls, value: Any) -> SecretStr:
        plain = value.get_secret_value() if isinstance(value, SecretStr) else value
        problem = key_ring_problem(plain if isinstance(plain, str) else "", env_name(cls, "session_keys"))
        if problem is not None:
            raise ValueError(problem)
        return SecretStr(str(plain))

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [part.strip() for part in self.trusted_proxies.split(",") if part.strip()]
