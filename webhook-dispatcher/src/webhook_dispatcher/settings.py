"""webhook-dispatcher settings (env prefix ``WEBHOOKS_``)."""

from __future__ import annotations

from typing import Any

from billing_runtime.key_ring import key_ring_problem
from billing_runtime.secret_policy import env_name
from billing_runtime.settings import InternalServiceSettings
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from webhook_dispatcher.domain.addresses import AddressPolicy, parse_host_ports

# Svix's schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, then give up.
DEFAULT_RETRY_SCHEDULE = "0,5,300,1800,7200,18000,36000,36000"


# The default ports of every process of the platform (gateway, payments, providers and its worker,
# this dispatcher, checkout), on loopback.
# The platform's default listeners on this host (services, workers, the gateway's ops port 8090) and the
# infrastructure beside them (PostgreSQL, RabbitMQ and its management API): refused as webhook targets
# even when loopback is allowed, so a tenant cannot read them through delivery responses.
_DEFAULT_PORTS = (8000, 8001, 8002, 8003, 8004, 8080, 8090, 8101, 8102, 8103, 5432, 5672, 15672)
DEFAULT_PLATFORM_ADDRESSES = ",".join(f"127.0.0.1:{port}" for port in _DEFAULT_PORTS)


def _floats(raw: str) -> list[float]:
    return [float(part) for part in raw.split(",") if part.strip()]


class Settings(InternalServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WEBHOOKS_", extra="ignore")

    port: int = 8003
    # PostgreSQL in every mode (the embedded one starts its own server and passes its URL). The default
    # names a local server with no password, so no credential is published here.
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/webhooks"
    # Fernet key (url-safe base64 of 32 bytes) that encrypts signing secrets at rest. Required:
    # there is deliberately no default, so a deployment can never run on a key published in the repo.
    encryption_key: SecretStr = Field(default=None, validate_default=True)
    # Seconds before attempt 1, 2, ...: the first entry must be 0 (the first attempt is immediate), each
    # later one follows a failure; after the last entry's attempt fails the delivery is failed.
    # Tests use a schedule in fractions of a second ("0,0.1,0.2").
    retry_schedule: str = DEFAULT_RETRY_SCHEDULE
    # Each delay is stretched by a random factor in [1, 1 + jitter] so that endpoints that failed
    # together do not all come back at the same instant.
    retry_jitter: float = Field(default=0.2, ge=0)
    # A Retry-After (429/503) longer than the schedule's delay is honoured up to this many seconds.
    max_retry_after: float = 6 * 3600
    request_timeout: float = Field(default=10.0, gt=0)
    # A claimed delivery belongs to its worker for this long; must exceed request_timeout so that a live
    # worker never loses a claim mid-request (which would let another worker send the same attempt).
    lease_seconds: float = 60.0
    max_concurrency_per_endpoint: int = Field(default=4, ge=1)
    # 0 makes a worker that consumes events but never delivers (used by tests to stage a backlog).
    worker_concurrency: int = Field(default=64, ge=0)
    dispatch_poll_interval: float = 1.0
    # The longest sleep of a worker with nothing due soon (it sleeps until the earliest scheduled retry;
    # new deliveries wake it at once): only bounds a lost wake-up.
    dispatch_idle_interval: float = Field(default=30.0, gt=0)
    # The outbox relay's fallback poll (it is woken at once by the commits of its own process).
    outbox_poll_interval: float = Field(default=10.0, gt=0)
    # How long a worker may trust its copy of a tenant's endpoints when it fans an event out
    # (services/endpoint_copies.py): every change sends NOTIFY webhook_endpoints (a trigger) and drops
    # the copies on every worker; copies are used only while that LISTEN connection is up; 0 reads
    # the endpoints for every batch of events.
    endpoint_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    # Deliveries leased per claim transaction and attempts recorded per record transaction, at most.
    dispatch_batch_size: int = Field(default=128, ge=1, le=1000)
    # A worker leases the deliveries it can send at once as it stores them (one transaction: the ingest
    # statement after locking their endpoints) instead of claiming them afterwards; false makes every
    # ingest one self-committing statement and every delivery wait for a claim.
    lease_at_ingest: bool = True
    secret_rotation_grace_hours: float = 24.0
    # An endpoint without a single success for this long is disabled (Svix: 5 days).
    disable_after_hours: float = 5 * 24.0
    # SSRF guard: private, loopback, link-local... addresses are refused at connect time, in every mode.
    # It cannot be turned off (false stops the start-up, so an old configuration is not silently
    # loosened); allow_loopback and allowed_hosts are the explicit exceptions.
    ssrf_guard: bool = True
    # Lets webhooks reach loopback (127.0.0.0/8, ::1): a receiver on this machine, for a local demo
    # (`make run` turns it on and says so). The platform's own ports stay refused.
    allow_loopback: bool = False
    # Comma-separated hosts (names or IP literals) exempt from the address classes, e.g. a receiver on
    # a private network. The platform's own ports stay refused.
    allowed_hosts: str = ""
    # The platform's own listeners (host:port, comma-separated; names are resolved at connect time),
    # refused whatever the two settings above say: a tenant must never reach the gateway, a service
    # or checkout through a webhook and read its answer. A loopback or 0.0.0.0 entry covers every
    # loopback address on that port. This dispatcher's own host:port is always added.
    platform_addresses: str = DEFAULT_PLATFORM_ADDRESSES
    # https only unless this is set (embedded mode and tests deliver to http://127.0.0.1).
    allow_http: bool = False
    # Endpoints a tenant may have (enabled or disabled; deleted ones do not count): fan-out work per
    # event is bounded by it. Beyond it, creating one is 409 endpoint_limit_reached.
    max_endpoints_per_tenant: int = Field(default=20, ge=1, le=10_000)
    # A replay queues its deliveries in transactions of at most this many rows, so replaying a tenant
    # with a million deliveries holds neither a long statement nor them all in memory.
    replay_batch_size: int = Field(default=500, ge=1, le=10_000)
    # Response bodies are kept up to this many bytes per attempt (API.md: the first 2 KiB).
    response_excerpt_bytes: int = Field(default=2048, ge=0, le=65536)

    @field_validator("encryption_key", mode="before")
    @classmethod
    def _fernet_keys(cls, value: Any) -> SecretStr:
        # One Fernet key, or several comma-separated to rotate: the first encrypts, every one decrypts.
        plain = value.get_secret_value() if isinstance(value, SecretStr) else value
        problem = key_ring_problem(plain if isinstance(plain, str) else "", env_name(cls, "encryption_key"))
        if problem is not None:
            raise ValueError(problem)
        return SecretStr(str(plain))

    @field_validator("retry_schedule")
    @classmethod
    def _valid_schedule(cls, value: str) -> str:
        delays = _floats(value)
        if not delays or any(d < 0 for d in delays):
            raise ValueError("retry_schedule must be a comma-separated list of non-negative seconds")
        if delays[0] != 0:
            # A delivery is due the moment it is stored (WHK-1); only retries wait.
            raise ValueError("retry_schedule must start with 0: the first attempt is immediate")
        return value

    @field_validator("ssrf_guard")
    @classmethod
    def _guard_stays_on(cls, value: bool) -> bool:
        if not value:
            raise ValueError(
                "the SSRF guard cannot be turned off; set WEBHOOKS_ALLOW_LOOPBACK=true for receivers on this "
                "machine or WEBHOOKS_ALLOWED_HOSTS for named hosts"
            )
        return value

    @field_validator("platform_addresses")
    @classmethod
    def _valid_platform_addresses(cls, value: str) -> str:
        parse_host_ports(value)
        return value

    @model_validator(mode="after")
    def _lease_outlives_request(self) -> Settings:
        if self.lease_seconds <= self.request_timeout:
            raise ValueError("lease_seconds must be greater than request_timeout")
        return self

    @property
    def schedule(self) -> list[float]:
        return _floats(self.retry_schedule)

    @property
    def allowed_host_set(self) -> frozenset[str]:
        return frozenset(h.strip().lower().strip("[]") for h in self.allowed_hosts.split(",") if h.strip())

    @property
    def address_policy(self) -> AddressPolicy:
        own = {(self.host.strip("[]").lower(), self.port)}
        return AddressPolicy(
            allow_loopback=self.allow_loopback,
            allowed_hosts=self.allowed_host_set,
            platform=parse_host_ports(self.platform_addresses) | own,
        )
