"""Settings of the hosted payment page (environment prefix ``CHECKOUT_``)."""

from __future__ import annotations

from billing_runtime.settings import ServiceSettings
from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict
from yarl import URL


class Settings(ServiceSettings):
    """Built once in ``__main__`` (or by the embedded runner / tests) and passed to ``create_app``."""

    model_config = SettingsConfigDict(env_prefix="CHECKOUT_", extra="ignore")

    port: int = 8080
    # The public gateway; checkout-web never calls a service directly.
    gateway_url: str = "http://127.0.0.1:8000"
    # Whole-request budget for one gateway call; a payer waits at most this long for an answer.
    request_timeout: float = Field(default=10.0, gt=0, le=120)
    connect_timeout: float = Field(default=3.0, gt=0, le=60)
    # No frame-ancestors setting: who may frame a payment's pages is its tenant's allowed_origins,
    # from the checkout view (CHECKOUT_FRAME_ANCESTORS, which applied one list to every tenant, is gone).
    # Cache lifetime of checkout.js and the stylesheet (they are revalidated by ETag after that).
    asset_max_age: int = Field(default=3600, ge=0)

    @field_validator("gateway_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        url = URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("gateway_url must be an absolute http(s) URL")
        return value
