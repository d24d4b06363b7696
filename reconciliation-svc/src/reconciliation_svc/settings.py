"""reconciliation-svc settings (env prefix ``RECONCILIATION_``)."""

from __future__ import annotations

from billing_runtime.secret_policy import required_secret
from billing_runtime.settings import InternalServiceSettings
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from reconciliation_svc.domain.schedule import CheckSchedule

# When the janitor asks a provider about a payment stuck PROVIDER_PENDING (or a refund stuck PENDING):
# at these ages of the object's pending state (seconds: 5 min, 1 h), then every JANITOR_REPEAT_SECONDS.
DEFAULT_JANITOR_AGES = "300,3600"


class Settings(InternalServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RECONCILIATION_", extra="ignore")

    port: int = 8004
    # PostgreSQL in every mode (the embedded one starts its own server and passes its URL). The default
    # names a local server with no password, so no credential is published here.
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/reconciliation"
    providers_url: str = "http://127.0.0.1:8002"
    # providers-svc's own internal key (its PROVIDERS_INTERNAL_SECRET): the janitor's sync calls and the
    # statements are signed with it (iss=reconciliation).
    providers_internal_secret: SecretStr = Field(default=None, validate_default=True)
    payments_url: str = "http://127.0.0.1:8001"
    # payments-svc's own internal key (its PAYMENTS_INTERNAL_SECRET): `rebuild` reads its event log.
    payments_internal_secret: SecretStr = Field(default=None, validate_default=True)
    # Seconds for one call to providers-svc or payments-svc.
    request_timeout: float = Field(default=30.0, gt=0)
    # Seconds between the worker's janitor passes; each idle pass is one indexed query.
    janitor_interval: float = Field(default=60.0, gt=0)
    # Ages (seconds, comma-separated, increasing) of a pending object at which it is asked first...
    janitor_ages: str = DEFAULT_JANITOR_AGES
    # ...and then every this many seconds (daily) for as long as it stays pending.
    janitor_repeat_seconds: float = Field(default=86400.0, gt=0)
    # After an answer that says nothing (providers-svc unavailable or erring), ask again this soon.
    janitor_retry_seconds: float = Field(default=300.0, gt=0)
    # Objects asked per janitor pass at most (the oldest due first); the rest wait for the next pass.
    janitor_batch_size: int = Field(default=100, ge=1, le=10_000)
    # Seconds between refreshes of the reconciliation_discrepancies gauge (worker).
    metrics_interval: float = Field(default=15.0, gt=0)
    # Events per page `rebuild` reads from payments-svc's log.
    rebuild_page_size: int = Field(default=100, ge=1, le=1000)

    # Reconciliation runs (README "Runs"). Seconds between the worker's looks for queued runs.
    runs_poll_interval: float = Field(default=5.0, gt=0)
    # A worker's lease on the run it does, extended with every progress report; past it another
    # worker takes the run over (its worker stopped).
    run_lease_seconds: float = Field(default=300.0, ge=10)
    # Attempts at a run (a worker stopped mid-run) before it is failed.
    run_max_attempts: int = Field(default=3, ge=1, le=20)
    # Whether the worker queues the daily runs at all (off: runs are only queued through the admin
    # API or the command line, e.g. where a provider's statements are not reconciled every day).
    schedule_enabled: bool = True
    # The UTC hour from which the worker queues yesterday's run of every account it knows of.
    schedule_hour: int = Field(default=2, ge=0, le=23)
    # Both sides are read this much beyond the period (providers' clocks across midnight).
    match_margin_seconds: float = Field(default=3600.0, ge=0, le=86400)
    # The largest settlement file the admin API takes.
    statement_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)

    _providers_internal_secret = field_validator("providers_internal_secret", mode="before")(required_secret)
    _payments_internal_secret = field_validator("payments_internal_secret", mode="before")(required_secret)

    @field_validator("janitor_ages")
    @classmethod
    def _valid_ages(cls, value: str) -> str:
        try:
            ages = [float(part) for part in value.split(",") if part.strip()]
        except ValueError:
            raise ValueError("janitor_ages must be comma-separated seconds") from None
        if not ages or any(a <= 0 for a in ages) or ages != sorted(ages):
            raise ValueError("janitor_ages must be positive seconds in increasing order")
        return value

    @property
    def janitor_schedule(self) -> CheckSchedule:
        ages = tuple(float(part) for part in self.janitor_ages.split(",") if part.strip())
        return CheckSchedule.of_seconds(ages, self.janitor_repeat_seconds, self.janitor_retry_seconds)
