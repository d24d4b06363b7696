"""payments-svc fixtures: a real PostgreSQL database per run (migrated by Alembic), emptied before each
test; the app with an in-memory bus and a recording fake of the providers port."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from billing_runtime.bus import MemoryBus
from billing_runtime.db import create_engine
from billing_runtime.internal_auth import INTERNAL_HEADER, sign_internal
from billing_runtime.testing import create_test_database, drop_test_database, truncate_all
from payments_svc.app import create_app
from payments_svc.db.models import metadata
from payments_svc.services.providers import (
    Captured,
    CaptureRequest,
    ProviderInfo,
    RefundCheck,
    StartedPayment,
    StartRequest,
)
from payments_svc.settings import Settings
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

SERVICE_ROOT = Path(__file__).resolve().parents[1]
INTERNAL_SECRET = "test-internal-secret-0123456789abcdef"
# reconciliation-svc's own key here (PAYMENTS_RECONCILIATION_INTERNAL_SECRET).
RECONCILIATION_SECRET = "test-reconciliation-secret-0123456789abcdef"
# providers-svc's own key: payments-svc signs its calls there with it (a key per audience).
PROVIDERS_INTERNAL_SECRET = "test-providers-internal-secret-0123456789"


@dataclass
class FakeProviders:
    """Stands in for providers-svc behind the port; records every call."""

    names: list[str] = field(default_factory=lambda: ["sandbox", "other"])
    cancellable: bool = True
    # What ``void`` answers (True: the attempt is closed at its provider), and the attempts it was asked.
    voidable: bool = True
    voided: list[str] = field(default_factory=list)
    unavailable: bool = False
    started: list[tuple[str, StartRequest]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    # The livemode every call carried, in call order.
    modes: list[bool] = field(default_factory=list)
    # Refund checks asked, and the refusal to answer them with (None: refundable).
    refund_checks: list[RefundCheck] = field(default_factory=list)
    refund_refusal: Exception | None = None
    # Captures asked; what the provider captured so far per payment (a repeat answers with it).
    captures: list[CaptureRequest] = field(default_factory=list)
    captured: dict[str, int] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def _check(self) -> None:
        if self.unavailable:
            from billing_runtime.errors import ProblemError

            raise ProblemError(503, "provider_unavailable", "down")

    async def available(self, tenant_id: str, currency: str, *, livemode: bool) -> list[ProviderInfo]:
        self._check()
        self.modes.append(livemode)
        return [ProviderInfo(n, n.title()) for n in self.names]

    async def start(self, tenant_id: str, request: StartRequest, *, livemode: bool) -> StartedPayment:
        self._check()
        self.modes.append(livemode)
        if request.provider not in self.names:  # providers-svc refuses a provider the tenant lacks
            from billing_runtime.errors import ProblemError

            raise ProblemError(422, "provider_not_allowed", f"{request.provider} is not available for this payment.")
        self.started.append((tenant_id, request))
        txn = f"ptx_{request.payment_id}_{request.provider}"
        return StartedPayment(txn, f"http://127.0.0.1:9/{request.provider}/{txn}", None)

    async def cancel(self, tenant_id: str, payment_id: str, *, livemode: bool) -> bool:
        self._check()
        self.modes.append(livemode)
        self.cancelled.append(payment_id)
        return self.cancellable

    async def void(self, tenant_id: str, payment_id: str, provider_transaction_id: str, *, livemode: bool) -> bool:
        self._check()
        self.modes.append(livemode)
        self.voided.append(provider_transaction_id)
        return self.voidable

    async def capture(self, tenant_id: str, request: CaptureRequest, *, livemode: bool) -> Captured:
        self._check()
        self.modes.append(livemode)
        self.captures.append(request)
        amount = self.captured.setdefault(request.payment_id, request.amount)
        return Captured(amount, f"ref_{request.payment_id}")

    async def check_refund(self, tenant_id: str, check: RefundCheck, *, livemode: bool) -> None:
        self._check()
        self.modes.append(livemode)
        self.refund_checks.append(check)
        if self.refund_refusal is not None:
            raise self.refund_refusal


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    url = await create_test_database("payments", SERVICE_ROOT)
    yield url
    await drop_test_database(url)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def clean_db(engine: AsyncEngine) -> AsyncEngine:
    await truncate_all(engine, metadata)
    return engine


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        internal_secret=INTERNAL_SECRET,
        providers_internal_secret=PROVIDERS_INTERNAL_SECRET,
        reconciliation_internal_secret=RECONCILIATION_SECRET,
        checkout_base_url="http://127.0.0.1:8080",
        sweep_interval=3600,
        outbox_poll_interval=0.05,
    )


@pytest.fixture
def providers() -> FakeProviders:
    return FakeProviders()


@pytest.fixture
def bus() -> MemoryBus:
    return MemoryBus()


@pytest.fixture
async def app(settings: Settings, clean_db: AsyncEngine, bus: MemoryBus, providers: FakeProviders):  # type: ignore[no-untyped-def]
    await bus.start()
    app = create_app(settings, engine=clean_db, bus=bus, providers=providers)
    yield app
    await bus.close()


@pytest.fixture
async def client(aiohttp_client, app):  # type: ignore[no-untyped-def]
    return await aiohttp_client(app)


@pytest.fixture
def auth() -> Callable[..., dict[str, str]]:
    def make(
        tenant: str | None = "ten_a", name: str | None = "Shop A", *, livemode: bool = False, **extra: str
    ) -> dict[str, str]:
        token = sign_internal(
            INTERNAL_SECRET,
            issuer="gateway",
            audience="payments",
            tenant_id=tenant,
            tenant_name=name,
            livemode=livemode,
        )
        return {INTERNAL_HEADER: token, **extra}

    return make


@pytest.fixture
def count(clean_db: AsyncEngine) -> Callable[..., Any]:
    async def count_rows(table_name: str) -> int:
        table = metadata.tables[table_name]
        async with clean_db.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())

    return count_rows


def payment_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"amount": 5000, "currency": "USD", "order_id": "order-1"}
    body.update(overrides)
    return body


@pytest.fixture
def new_payment(client, auth):  # type: ignore[no-untyped-def]
    counter = itertools.count(1)

    async def create(tenant: str = "ten_a", *, livemode: bool = False, **overrides: Any) -> dict[str, Any]:
        key = f"key-{next(counter)}"
        headers = auth(tenant, livemode=livemode, **{"Idempotency-Key": key})
        response = await client.post("/v1/payments", json=payment_body(**overrides), headers=headers)
        assert response.status == 201, await response.text()
        return await response.json()

    return create


@pytest.fixture
def make_body() -> Callable[..., dict[str, Any]]:
    return payment_body


@pytest.fixture
def paid_payment(client, auth, new_payment, app):  # type: ignore[no-untyped-def]
    """A SUCCEEDED sandbox payment (of ten_a by default), paid through checkout and the provider's
    verdict as the worker applies it."""
    from billing_contracts.events import ProviderPaymentOutcome, ProviderPaymentSucceededV1
    from billing_runtime.bus import Message
    from billing_runtime.metrics import Metrics
    from payments_svc.events.consumers import provider_outcome_handler
    from payments_svc.keys import lifecycle_deps_key

    handle = provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))

    async def make(tenant: str = "ten_a", **overrides: Any) -> dict[str, Any]:
        created = await new_payment(tenant, **overrides)
        response = await client.post(
            f"/v1/checkout/{created['checkout_token']}/pay", json={"provider": "sandbox"}, headers=auth(None, None)
        )
        assert response.status == 200, await response.text()
        outcome = ProviderPaymentOutcome(
            payment_id=created["id"],
            provider="sandbox",
            provider_transaction_id=f"ptx_{created['id']}_sandbox",
            amount=created["amount"],
            currency=created["currency"],
            livemode=created["livemode"],
        )
        event = ProviderPaymentSucceededV1(tenant_id=tenant, livemode=created["livemode"], data=outcome)
        await handle(
            Message("providers.provider.payment.succeeded.v1", event.model_dump_json().encode(), event.event_id)
        )
        payment = await (await client.get(f"/v1/payments/{created['id']}", headers=auth(tenant))).json()
        assert payment["status"] == "SUCCEEDED"
        return payment  # type: ignore[no-any-return]

    return make


@pytest.fixture
def refund(client, auth):  # type: ignore[no-untyped-def]
    """POST a refund of ``payment`` with a fresh Idempotency-Key (or the one given); the response."""
    counter = itertools.count(1)

    async def post(
        payment: dict[str, Any], body: dict[str, Any] | None = None, *, tenant: str = "ten_a", key: str | None = None
    ):  # type: ignore[no-untyped-def]
        headers = auth(tenant, **{"Idempotency-Key": key or f"refund-{next(counter)}"})
        return await client.post(f"/v1/payments/{payment['id']}/refunds", json=body or {}, headers=headers)

    return post
