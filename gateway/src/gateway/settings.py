"""The gateway's settings, read from ``GATEWAY_*`` environment variables (the admin token also from
``BILLING_ADMIN_TOKEN``). Built once in ``__main__`` (or by the embedded runner / tests) and passed down."""

from __future__ import annotations

import ipaddress
import json
from datetime import timedelta
from typing import Annotated, Any

from billing_runtime.secret_policy import optional_secret, required_secret, weakness
from billing_runtime.settings import ServiceSettings
from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", validate_by_name=True)

    port: int = 8000
    # The ops listener (/healthz, /readyz, /metrics without the admin token); unset: none is opened.
    ops_host: str = "127.0.0.1"
    ops_port: int | None = Field(default=None, ge=1, le=65535)
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/gateway"

    # None disables the admin API (every /admin request is 401); there is deliberately no default token.
    # When set: >= 32 bytes and never a published value, like every secret (billing_runtime.secret_policy).
    admin_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("GATEWAY_ADMIN_TOKEN", "BILLING_ADMIN_TOKEN")
    )

    # kid → HMAC secret. The first key signs; every key verifies (add a new key first to rotate).
    # From the environment: "kid1:secret1,kid2:secret2" or a JSON object. Required: no default.
    jwt_keys: Annotated[dict[str, SecretStr], NoDecode] = Field(default=None, validate_default=True)

    # The internal key of each service the gateway calls (that service's own *_INTERNAL_SECRET): a key
    # per audience, so no service holds a key another service accepts (billing_runtime.internal_auth).
    payments_internal_secret: SecretStr = Field(default=None, validate_default=True)
    webhooks_internal_secret: SecretStr = Field(default=None, validate_default=True)
    # providers-svc's key: the admin API of provider accounts is served there, through this gateway.
    providers_internal_secret: SecretStr = Field(default=None, validate_default=True)
    # reconciliation-svc's key (its RECONCILIATION_INTERNAL_SECRET): the admin API of discrepancies is
    # served there. Optional: unset, /admin/reconciliation/* answers 503 reconciliation_not_configured
    # (a deployment without the service); when set, the same policy as every secret.
    reconciliation_internal_secret: SecretStr | None = None
    jwt_issuer: str = "billing-gateway"
    jwt_audience: str = "billing-api"
    token_ttl: int = Field(default=86400, gt=0)

    # Seconds a replica may answer from its copy of a tenant's access row (disabled, secret
    # generation) instead of reading it per request; a change made on any replica reaches every other
    # at once through NOTIFY, so this only bounds a notification lost on a broken connection. 0: no copy.
    tenant_cache_seconds: float = Field(default=2.0, ge=0, le=60)
    # How long a rotated-out tenant secret keeps working (seconds or ISO 8601 duration).
    secret_grace_period: timedelta = timedelta(hours=24)

    # argon2id cost: OWASP's recommended profile (m=19 MiB, t=2, p=1). What is hashed is a secret of
    # 256 random bits that the platform generated, not a password a person chose: no guessing attack
    # on a leaked hash gets anywhere near it, so memory hardness beyond this buys nothing, while every
    # MiB is held by the gateway for each verification (RFC 9106's 64 MiB, 4-lane profile made the
    # gateway's peak RSS 160 MiB and cost 0.2 s of CPU a token). Hashes record their own parameters,
    # so changing these affects new hashes only; older ones verify as before.
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_kib: int = Field(default=19 * 1024, ge=8)
    argon2_parallelism: int = Field(default=1, ge=1)

    # POST /v1/auth/token runs argon2 for every request: at most this many hashes at once (each holds
    # argon2_memory_kib and a core) and this many more waiting; beyond, 503 auth_busy at once.
    hash_concurrency: int = Field(default=2, ge=1, le=64)
    hash_queue: int = Field(default=8, ge=0, le=10_000)
    # Verifications started per second, per replica, whoever asks (burst: at once). One costs about
    # 25 ms of CPU with the default argon2 cost (0.2 s with a 64 MiB one), so 2/s is a few percent of
    # one core.
    hash_rate: float = Field(default=2.0, gt=0)
    hash_burst: int = Field(default=4, ge=1)
    # Token buckets on POST /v1/auth/token, per gateway replica: per client address and per app name
    # (requests/second sustained and burst). A tenant needs one token a day per process.
    token_rate_per_client: float = Field(default=1.0, gt=0)
    token_burst_per_client: int = Field(default=10, ge=1)
    token_rate_per_app: float = Field(default=1.0, gt=0)
    token_burst_per_app: int = Field(default=10, ge=1)
    # Proxies (addresses or CIDR blocks, comma-separated) whose X-Forwarded-For is believed for the
    # client address. Empty: the TCP peer is the client, whatever a request says.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    payments_url: str = "http://127.0.0.1:8001"
    providers_url: str = "http://127.0.0.1:8002"
    webhooks_url: str = "http://127.0.0.1:8003"
    reconciliation_url: str = "http://127.0.0.1:8004"
    # Seconds for a whole upstream exchange, and for opening its connection.
    upstream_timeout: float = Field(default=20.0, gt=0)
    upstream_connect_timeout: float = Field(default=3.0, gt=0)
    # GET /admin/status: seconds each service has to answer its /internal/status (asked concurrently);
    # one that does not is shown unreachable, the rest still answer.
    status_timeout: float = Field(default=5.0, gt=0, le=60)

    # Token bucket per tenant, per gateway replica: sustained requests/second and burst size. 0 disables.
    rate_limit_per_second: float = Field(default=50.0, ge=0)
    rate_limit_burst: int = Field(default=100, ge=1)

    body_limit: int = Field(default=64 * 1024, gt=0)
    # A settlement file uploaded to reconciliation (POST /admin/reconciliation/statements, admin only) is
    # streamed through, never held here, up to this size (reconciliation-svc has its own, equal limit).
    statement_upload_limit: int = Field(default=64 * 1024 * 1024, gt=0)
    # Seconds for that whole exchange: the upload and reconciliation-svc's parsing and staging of it.
    statement_upload_timeout: float = Field(default=300.0, gt=0)

    _internal_secrets = field_validator(
        "payments_internal_secret", "webhooks_internal_secret", "providers_internal_secret", mode="before"
    )(required_secret)
    _reconciliation_secret = field_validator("reconciliation_internal_secret", mode="before")(optional_secret)

    @field_validator("jwt_keys", mode="before")
    @classmethod
    def _parse_jwt_keys(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("GATEWAY_JWT_KEYS is required: 'kid1:<32+ random bytes>' (the first key signs)")
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("{"):
            return json.loads(text)
        keys: dict[str, str] = {}
        for pair in filter(None, (part.strip() for part in text.split(","))):
            kid, sep, secret = pair.partition(":")
            if not sep:
                raise ValueError("jwt_keys must look like 'kid1:secret1,kid2:secret2'")
            keys[kid.strip()] = secret.strip()
        return keys

    @field_validator("jwt_keys")
    @classmethod
    def _check_jwt_keys(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        if not value:
            raise ValueError("at least one JWT signing key is required")
        for kid, secret in value.items():
            if not kid:
                raise ValueError("a JWT key id must not be empty")
            problem = weakness(secret.get_secret_value())
            if problem is not None:
                raise ValueError(f"GATEWAY_JWT_KEYS: key {kid!r} {problem}")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR block") from None
        return value

    @field_validator("secret_grace_period", mode="before")
    @classmethod
    def _seconds_from_env(cls, value: Any) -> Any:
        # Environment values are strings; pydantic reads a bare number as seconds only if it is a number.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return value
        return value

    @field_validator("admin_token", mode="before")
    @classmethod
    def _admin_token(cls, value: Any, info: ValidationInfo) -> SecretStr | None:
        # Unset or empty: the admin API is off. Named by its own variable in errors (it has two names).
        try:
            return optional_secret(cls, value, info)
        except ValueError as exc:
            raise ValueError(
                str(exc).replace("GATEWAY_ADMIN_TOKEN", "GATEWAY_ADMIN_TOKEN (or BILLING_ADMIN_TOKEN)")
            ) from None
