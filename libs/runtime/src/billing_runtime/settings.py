"""Settings every service shares; each service subclasses with its own ``env_prefix``."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Built once in ``__main__`` (or by the embedded runner / tests) and passed down; never global."""

    model_config = SettingsConfigDict(extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = "sqlite+aiosqlite:///./service.db"
    # Connections each process keeps open (PostgreSQL). A fixed pool, no overflow: overflow
    # connections are closed as soon as they are returned, and reconnecting under load (a backend
    # fork plus asyncpg's setup queries per connection) cost more than waiting for a pooled one.
    database_pool_size: int = Field(default=20, ge=1, le=500)
    # amqp://guest:guest@127.0.0.1:5672/ in the distributed mode; memory:// in the embedded mode.
    bus_url: str = "memory://"
    # Shared by the gateway and the services it calls, to sign and verify internal tokens.
    internal_secret: SecretStr = SecretStr("dev-internal-secret-change-me-0123456789")
    outbox_poll_interval: float = 1.0
    log_level: str = "INFO"
