"""Settings of providers-svc, read from ``PROVIDERS_*`` environment variables (built once in ``__main__``)."""

from __future__ import annotations

from typing import Annotated

from billing_runtime.key_ring import key_ring_problem
from billing_runtime.secret_policy import env_name, optional_secret, required_secret
from billing_runtime.settings import InternalServiceSettings
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from providers_svc.domain.refunds import worst_refund_attempt

DEFAULT_SANDBOX_CURRENCIES = (
    "AED,AUD,CAD,CHF,CNY,CZK,DKK,EUR,GBP,HUF,INR,JPY,KGS,KRW,KZT,NOK,PLN,RUB,SEK,TJS,TRY,USD,UZS"
)


def _split_csv(value: object) -> object:  # a validator's input and output: anything the source gave
    # Environment variables carry lists as "a,b,c"; a list given in code is taken as is.
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(InternalServiceSettings):
    """Every knob of the service. Secrets are ``SecretStr`` so they never reach logs or reprs."""

    model_config = SettingsConfigDict(env_prefix="PROVIDERS_", extra="ignore")

    port: int = 8002
    # The worker process (relay + sandbox bank sender) serves only health routes, on its own port.
    worker_port: int = 8102
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/providers"

    # Where payers and providers reach us: the gateway. Payer page links and sandbox callbacks use it.
    public_gateway_url: str = "http://127.0.0.1:8000"
    enabled_providers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["sandbox", "payme", "click", "octo", "stripe"]
    )
    # A test tenant without an account of Payme, Click or Octo is served by that provider's simulator
    # (API.md "Provider accounts"); off: such a provider is offered only where an account is assigned.
    simulators: bool = True
    # How long a replica may trust its copy of the provider accounts (services/account_copies.py):
    # a bound for a change notification lost without a sign; 0 reads the accounts on every callback.
    account_cache_seconds: float = Field(default=2.0, ge=0, le=60)
    # A start request without ``expires_at`` gets this lifetime (the public API's default too).
    default_transaction_ttl: int = Field(default=1800, ge=60, le=86400)
    # Timeout of one call to a provider's API (real providers; the sandbox answers in-process).
    provider_timeout: float = Field(default=15.0, gt=0)

    # How often the worker looks for refunds left ``requested`` (their provider was unreachable) whose
    # next attempt is due (services/refunds.py: 30 s after the first try, doubling, at most hourly).
    refund_retry_poll_interval: float = Field(default=5.0, gt=0)
    # How long a caller holds a refund while it asks the provider (its lease): at least twice the worst
    # attempt (``domain.refunds.worst_refund_attempt``: 120 s with the default timeout), so no second
    # caller sends the refund while the first one's call may still be running (Click has no key).
    refund_lease_seconds: float = Field(default=300.0, gt=0)

    # The sandbox "bank": the HMAC key of its signed callbacks. Required, >= 32 bytes, never published.
    sandbox_secret: SecretStr = Field(default=None, validate_default=True)
    # The key reconciliation-svc signs its calls here with (it holds it as
    # RECONCILIATION_PROVIDERS_INTERNAL_SECRET): a key of its own, so that it cannot sign as payments-svc
    # or the gateway, nor they as it. Unset: reconciliation-svc is refused (no janitor syncs, no
    # statements).
    reconciliation_internal_secret: SecretStr | None = None
    sandbox_signature_tolerance: int = Field(default=300, ge=1)
    sandbox_pending_delay: float = Field(default=3.0, ge=0)
    # How long the sandbox bank and the Octo simulator hold a manual-capture payment's funds before the
    # hold lapses (its ``authorization_expires_at``); Stripe holds card funds for 7 days.
    sandbox_authorization_seconds: int = Field(default=7 * 24 * 3600, ge=1)
    sandbox_currencies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [c.strip() for c in DEFAULT_SANDBOX_CURRENCIES.split(",") if c.strip()]
    )
    # Seconds to wait before the 1st, 2nd, ... retry of an undelivered callback; the last value repeats.
    sandbox_callback_retry_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0]
    )
    # After this many failed attempts the bank gives up (reconciliation is the safety net past that).
    sandbox_callback_max_attempts: int = Field(default=100, ge=1)
    sandbox_callback_timeout: float = Field(default=10.0, gt=0)
    # The sender's longest sleep: decisions wake it (in-process or by NOTIFY), and it sleeps until the
    # next callback falls due; this only bounds a wake-up that was lost.
    sandbox_callback_poll_interval: float = Field(default=30.0, gt=0)

    # Fernet keys that encrypt provider credentials at rest, comma-separated: the first encrypts, every
    # one decrypts (add a new key in front to rotate; drop the old one once nothing needs it). Required.
    credentials_keys: SecretStr = Field(default=None, validate_default=True)

    _sandbox_secret = field_validator("sandbox_secret", mode="before")(required_secret)
    _reconciliation_internal_secret = field_validator("reconciliation_internal_secret", mode="before")(optional_secret)

    @field_validator("credentials_keys", mode="before")
    @classmethod
    def _key_ring(cls, value: object) -> SecretStr:
        plain = value.get_secret_value() if isinstance(value, SecretStr) else value
        problem = key_ring_problem(plain if isinstance(plain, str) else "", env_name(cls, "credentials_keys"))
        if problem is not None:
            raise ValueError(problem)
        return SecretStr(str(plain))

    @field_validator("enabled_providers", "sandbox_currencies", "sandbox_callback_retry_schedule", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("sandbox_currencies")
    @classmethod
    def _upper(cls, value: list[str]) -> list[str]:
        return [code.upper() for code in value]

    @field_validator("sandbox_callback_retry_schedule")
    @classmethod
    def _non_empty_positive(cls, value: list[float]) -> list[float]:
        if not value or any(delay < 0 for delay in value):
            raise ValueError("needs at least one delay, none negative")
        return value

    @model_validator(mode="after")
    def _refund_lease_outlives_the_calls(self) -> Settings:
        worst = worst_refund_attempt(self.provider_timeout)
        if self.refund_lease_seconds < 2 * worst:
            raise ValueError(
                f"{env_name(type(self), 'refund_lease_seconds')} ({self.refund_lease_seconds:g} s) must be at least"
                f" twice the longest refund attempt ({worst:g} s with {env_name(type(self), 'provider_timeout')}"
                f" {self.provider_timeout:g} s)"
            )
        return self

    @property
    def payer_page_base(self) -> str:
        return self.public_gateway_url.rstrip("/") + "/sandbox/pay/"

    @property
    def sandbox_callback_url(self) -> str:
        return self.public_gateway_url.rstrip("/") + "/billing/sandbox"

    @property
    def octo_notify_url(self) -> str:
        """Octo's notify_url for every payment we prepare: ``POST /billing/octo`` through the gateway."""
        return self.public_gateway_url.rstrip("/") + "/billing/octo"

    @property
    def octo_return_base(self) -> str:
        """Octo's return page for a payment without a return URL: ``/pay/octo/{ptx}`` through the gateway."""
        return self.public_gateway_url.rstrip("/") + "/pay/octo"

    @property
    def octo_simulator_base(self) -> str:
        """The fake Octo server's api_base (computed, never stored: the embedded mode's ports change)."""
        return self.public_gateway_url.rstrip("/") + "/simulators/octo"

    @property
    def stripe_page_base(self) -> str:
        """Where the Stripe payer pages are (``flow=payment_intent``): ``/pay/stripe`` through the gateway."""
        return self.public_gateway_url.rstrip("/") + "/pay/stripe"
