"""Settings every service shares; each service subclasses with its own ``env_prefix``."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from billing_runtime.secret_policy import env_name, required_secret


class ServiceSettings(BaseSettings):
    """Built once in ``__main__`` (or by the embedded runner / tests) and passed down; never global."""

    # A settings error never repeats the value it refused (it may be a secret).
    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True)

    host: str = "127.0.0.1"
    port: int = 8000
    # PostgreSQL in every mode (the embedded mode starts its own server and sets this).
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    # Connections each process keeps open (PostgreSQL). A fixed pool, no overflow: overflow
    # connections are closed as soon as they are returned, and reconnecting under load (a backend
    # fork plus asyncpg's setup queries per connection) cost more than waiting for a pooled one.
    database_pool_size: int = Field(default=20, ge=1, le=500)
    # amqp://guest:guest@127.0.0.1:5672/ in the distributed mode; memory:// in the embedded mode.
    bus_url: str = "memory://"
    # The relay's fallback poll: its own process's commits wake it directly, other processes' by NOTIFY;
    # this bounds only a lost wake-up or a dead relay's lease running out (issue 16: idle cost).
    outbox_poll_interval: float = 10.0
    # Every process refreshes its row of worker_heartbeats this often (billing_runtime.heartbeats); the
    # status endpoint calls one silent for 12 intervals (2 minutes by default) stale.
    heartbeat_interval: float = Field(default=10.0, gt=0, le=3600)
    log_level: str = "INFO"
    # Graceful stop (billing_runtime.shutdown): from SIGTERM to exit at most this long, all included;
    # an orchestrator must wait longer before it kills (Kubernetes' terminationGracePeriodSeconds: 40).
    shutdown_grace_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Of which, first, this long with /readyz failing while still serving, for a balancer to notice
    # (Kubernetes: about 5 s for the endpoints to propagate); 0 where nothing balances (default).
    shutdown_delay_seconds: float = Field(default=0.0, ge=0, le=600)

    @model_validator(mode="after")
    def _delay_within_grace(self) -> ServiceSettings:
        if self.shutdown_delay_seconds >= self.shutdown_grace_seconds:
            grace = env_name(type(self), "shutdown_grace_seconds")
            delay = env_name(type(self), "shutdown_delay_seconds")
            raise ValueError(f"{delay} must be less than {grace} (the delay is part of the grace period)")
        return self

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str) -> str:
        # PostgreSQL is the one dialect. Refused at start-up, naming the variable (never the value: it
        # may hold a password), rather than on the first statement: a configuration from before the
        # embedded mode ran on PostgreSQL must be seen.
        name = env_name(cls, "database_url")
        try:
            driver = make_url(value).drivername
        except (ArgumentError, ValueError):
            raise ValueError(f"{name} is not a database URL") from None
        if driver != "postgresql+asyncpg":
            raise ValueError(f"{name} must be a PostgreSQL URL: postgresql+asyncpg://user@host:port/database")
        return value


class InternalServiceSettings(ServiceSettings):
    """A service behind the gateway: it accepts internal tokens signed with its own key (a key per
    audience, so one service's key never lets anyone act towards another service)."""

    # Required, >= 32 bytes, never a published value (billing_runtime.secret_policy). Its callers hold
    # it too: the gateway as GATEWAY_<SERVICE>_INTERNAL_SECRET, payments-svc as PAYMENTS_PROVIDERS_...
    internal_secret: SecretStr = Field(default=None, validate_default=True)

    _internal_secret = field_validator("internal_secret", mode="before")(required_secret)
