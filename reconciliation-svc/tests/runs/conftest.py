"""Fixtures of the runs tests: the projection seeded directly (the consumers are not under test
here), statements staged as a run would, a fake providers-svc serving statements over loopback HTTP
(what it is outside this service), and the deps a run is done with."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from billing_contracts.statements import StatementRecord
from billing_runtime.db import table_of
from billing_runtime.internal_auth import INTERNAL_HEADER
from reconciliation_svc.db import runs as run_queries
from reconciliation_svc.db import statements as statement_queries
from reconciliation_svc.db.models import ReconPayment, ReconRefund
from reconciliation_svc.domain.periods import Period
from reconciliation_svc.services.runs import RunDeps
from reconciliation_svc.services.statements_client import StatementsClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

PROVIDERS_SECRET = "test-recon-providers-secret-0123456789abcdef"
DAY = date(2026, 12, 4)
NOON = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


class Seeder:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def payment(
        self,
        payment_id: str,
        *,
        account: str | None = "pac_a",
        provider: str = "click",
        status: str = "SUCCEEDED",
        amount: int = 500_000,
        currency: str = "UZS",
        reference: str | None = None,
        at: datetime = NOON,
        tenant: str = "ten_a",
    ) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                table_of(ReconPayment).insert(),
                {
                    "id": payment_id,
                    "tenant_id": tenant,
                    "livemode": False,
                    "status": status,
                    "amount": amount,
                    "currency": currency,
                    "amount_refunded": 0,
                    "provider": provider,
                    "provider_reference": reference,
                    "provider_account_id": account,
                    "last_sequence": 1,
                    "created_at": at - timedelta(minutes=5),
                    "updated_at": at,
                    "succeeded_at": at if status in ("SUCCEEDED", "PARTIALLY_REFUNDED", "REFUNDED") else None,
                },
            )

    async def refund(
        self,
        refund_id: str,
        payment_id: str,
        *,
        provider: str = "click",
        status: str = "SUCCEEDED",
        amount: int = 500_000,
        currency: str = "UZS",
        provider_refund_id: str | None = None,
        at: datetime = NOON,
    ) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                table_of(ReconRefund).insert(),
                {
                    "id": refund_id,
                    "payment_id": payment_id,
                    "tenant_id": "ten_a",
                    "livemode": False,
                    "status": status,
                    "amount": amount,
                    "currency": currency,
                    "provider": provider,
                    "provider_refund_id": provider_refund_id,
                    "last_sequence": 1,
                    "created_at": at - timedelta(minutes=1),
                    "updated_at": at,
                },
            )

    async def statement(
        self, records: list[StatementRecord], *, account: str = "pac_a", provider: str = "click"
    ) -> str:
        async with self.engine.begin() as conn:
            staging = await statement_queries.create_statement(
                conn, provider=provider, account_id=account, origin="csv", created_by="test", sha256=None
            )
            await statement_queries.stage_lines(conn, staging, records)
            await statement_queries.finish_statement(conn, staging)
        return staging.id

    async def claimed_run(
        self, *, account: str = "pac_a", statement_id: str | None = None, day: date = DAY, lease: float = 60
    ) -> Any:
        async with self.engine.begin() as conn:
            await run_queries.queue_run(
                conn, run_queries.NewRun(account, Period(day, day), "cli", "test", statement_id=statement_id)
            )
            return await run_queries.claim_run(conn, timedelta(seconds=lease))

    async def discrepancies(self) -> list[Any]:
        async with self.engine.connect() as conn:
            return list(
                await conn.execute(
                    text(
                        "SELECT kind, provider, payment_id, refund_id, provider_reference, dedupe_key, ours, theirs,"
                        " run_id, account_id FROM discrepancies ORDER BY dedupe_key"
                    )
                )
            )


def line(
    reference: str,
    *,
    payment_id: str | None = None,
    refund_id: str | None = None,
    kind: str = "payment",
    amount: int = 500_000,
    currency: str = "UZS",
    status: str = "succeeded",
    at: datetime = NOON,
    account: str = "pac_a",
    provider: str = "click",
) -> StatementRecord:
    return StatementRecord(
        provider=provider,
        account_id=account,
        kind=kind,  # type: ignore[arg-type]
        provider_reference=reference,
        payment_id=payment_id,
        refund_id=refund_id,
        amount=amount,
        currency=currency,
        status=status,  # type: ignore[arg-type]
        occurred_at=at,
    )


@pytest.fixture
def seed(clean_db: AsyncEngine) -> Seeder:
    return Seeder(clean_db)


@pytest.fixture(name="line")
def line_fixture() -> Callable[..., StatementRecord]:
    return line


@dataclass
class FakeStatements:
    """providers-svc's ``GET /internal/statements`` as INTERNAL.md gives it: NDJSON, then the final line."""

    records: list[StatementRecord] = field(default_factory=list)
    # complete | truncated | 503 | 404 | foreign
    mode: str = "complete"
    calls: list[dict[str, str]] = field(default_factory=list)

    async def statements(self, request: web.Request) -> web.StreamResponse:
        claims = jwt.decode(
            request.headers[INTERNAL_HEADER], PROVIDERS_SECRET, algorithms=["HS256"], audience="providers"
        )
        assert claims["iss"] == "reconciliation"
        assert "tenant_id" not in claims
        self.calls.append(dict(request.query))
        if self.mode == "503":
            return web.json_response({"code": "provider_unavailable"}, status=503)
        if self.mode == "404":
            return web.json_response({"code": "account_not_found"}, status=404)
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        for record in self.records:
            if self.mode == "foreign":
                record = record.model_copy(update={"account_id": "pac_other"})
            await response.write(record.model_dump_json().encode() + b"\n")
        if self.mode == "complete":
            await response.write(json.dumps({"complete": True}).encode() + b"\n")
        await response.write_eof()
        return response


@pytest.fixture
async def fake_statements(aiohttp_server) -> tuple[FakeStatements, str]:  # type: ignore[no-untyped-def]
    fake = FakeStatements()
    app = web.Application()
    app.router.add_get("/internal/statements", fake.statements)
    server = await aiohttp_server(app, host="127.0.0.1")
    return fake, str(server.make_url("")).rstrip("/")


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def run_deps(
    clean_db: AsyncEngine, http: aiohttp.ClientSession, fake_statements: tuple[FakeStatements, str]
) -> RunDeps:
    _fake, url = fake_statements
    return RunDeps(
        engine=clean_db,
        statements=StatementsClient(http, url, PROVIDERS_SECRET, 5),
        lease=timedelta(seconds=60),
        margin=timedelta(hours=1),
    )
