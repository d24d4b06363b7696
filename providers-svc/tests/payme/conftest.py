"""Fixtures of the Payme tests: the app with Payme enabled on real PostgreSQL, Payme accounts assigned to
tenants, payments started through the internal API, and a client that calls ``POST /billing/payme`` as
Payme does (JSON-RPC, Basic auth ``Paycom:<key>``)."""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from billing_contracts.envelope import utcnow
from providers_svc.db.models import ProviderAccountRow
from providers_svc.db.payme import PaymeReversalRow, PaymeTransactionRow
from providers_svc.keys import key_ring_key, metrics_key, uow_factory_key
from providers_svc.services.accounts import NewAccount, assign_account, create_account
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

TENANT = "ten_aaaaaaaaaaaaaaaa"
OTHER_TENANT = "ten_bbbbbbbbbbbbbbbb"
AMOUNT = 500_000  # 5 000 so'm in tiyin, which are UZS minor units

Client = TestClient[web.Request, web.Application]


def basic(key: str, login: str = "Paycom") -> str:
    return "Basic " + base64.b64encode(f"{login}:{key}".encode()).decode()


def payme_id() -> str:
    """A Payme transaction id as Payme makes them: 24 hex characters (a Mongo ObjectId)."""
    return secrets.token_hex(12)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Payme:
    """Payme's side of the Merchant API for one account key, against the test app."""

    client: Client
    key: str
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def raw(self, body: bytes | str, authorization: str | None = None, method: str = "POST") -> bytes:
        headers = {"Content-Type": "application/json"}
        auth = basic(self.key) if authorization is None else authorization
        if auth:
            headers["Authorization"] = auth
        response = await self.client.request(method, "/billing/payme", data=body, headers=headers)
        assert response.status == 200, await response.text()
        assert response.content_type == "application/json"
        return await response.read()

    async def call_raw(self, method: str, **params: Any) -> bytes:
        body = json.dumps({"jsonrpc": "2.0", "id": next(self.ids), "method": method, "params": params})
        return await self.raw(body)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(await self.call_raw(method, **params))
        return answer

    async def result(self, method: str, **params: Any) -> dict[str, Any]:
        answer = await self.call(method, **params)
        assert "result" in answer, answer
        result: dict[str, Any] = answer["result"]
        return result

    async def error(self, method: str, **params: Any) -> dict[str, Any]:
        answer = await self.call(method, **params)
        assert "error" in answer, answer
        error: dict[str, Any] = answer["error"]
        return error

    async def create(self, payment_id: str, *, id_: str | None = None, amount: int = AMOUNT, **extra: Any) -> Any:
        params = {"id": id_ or payme_id(), "time": now_ms(), "amount": amount, "account": {"order_id": payment_id}}
        params.update(extra)
        return await self.call("CreateTransaction", **params)


@dataclass
class Shop:
    """A tenant with a Payme account assigned, and the app it pays through."""

    client: Client
    account_id: str
    key: str
    payme: Payme
    tenant_id: str
    start: Callable[..., Awaitable[dict[str, Any]]]


async def add_account(client: Client, *, key: str | None = None, environment: str = "test", **settings: str) -> Any:
    app = client.app
    return await create_account(
        app[uow_factory_key],
        app[key_ring_key],
        NewAccount(
            provider="payme",
            name="Shop kassa",
            environment=environment,
            currencies=["UZS"],
            credentials={"merchant_id": secrets.token_hex(12), "key": key or secrets.token_urlsafe(27)},
            settings=settings,
        ),
        utcnow(),
    )


@pytest.fixture
def payme_client(make_client: Any) -> Callable[..., Awaitable[Client]]:
    async def make(**overrides: Any) -> Client:
        client: Client = await make_client(enabled_providers=["sandbox", "payme"], **overrides)
        return client

    return make


@pytest.fixture
def new_shop(
    payme_client: Callable[..., Awaitable[Client]], internal_headers: Callable[..., dict[str, str]]
) -> Callable[..., Awaitable[Shop]]:
    """``await new_shop(client=None, tenant=TENANT, livemode=False, **settings)``: an account assigned to
    the tenant, and ``shop.start(amount=…)`` that starts a Payme payment and returns the internal answer."""
    counter = itertools.count()

    async def make(client: Client | None = None, tenant: str = TENANT, livemode: bool = False, **settings: str) -> Shop:
        client = client or await payme_client()
        key = secrets.token_urlsafe(27)
        environment = "production" if livemode else "test"
        account = await add_account(client, key=key, environment=environment, **settings)
        app = client.app
        await assign_account(app[uow_factory_key], tenant, "payme", account.id, livemode=livemode, now=utcnow())

        async def start(amount: int = AMOUNT, **fields: Any) -> dict[str, Any]:
            body = {
                "payment_id": f"pay_{next(counter):04d}{secrets.token_hex(6)}",
                "provider": "payme",
                "amount": amount,
                "currency": "UZS",
                "order_id": "order-1",
                "description": "Two coffees",
                "return_url": "http://127.0.0.1:8080/c/tok_1/return",
                "expires_at": (datetime.now(UTC) + timedelta(minutes=30)).isoformat(),
                **fields,
            }
            response = await client.post(
                "/internal/payments/start", json=body, headers=internal_headers(tenant, livemode=livemode)
            )
            assert response.status == 200, await response.text()
            data: dict[str, Any] = await response.json()
            data["payment_id"] = body["payment_id"]
            return data

        return Shop(client, account.id, key, Payme(client, key), tenant, start)

    return make


@dataclass
class Tables:
    engine: AsyncEngine

    async def payme(self) -> list[dict[str, Any]]:
        return await self._rows(select(PaymeTransactionRow.__table__).order_by(PaymeTransactionRow.time))

    async def reversals(self) -> list[dict[str, Any]]:
        return await self._rows(select(PaymeReversalRow.__table__))

    async def accounts(self) -> list[dict[str, Any]]:
        return await self._rows(select(ProviderAccountRow.__table__))

    async def _rows(self, stmt: Any) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(stmt)).mappings().all()]


@pytest.fixture
def tables(engine: AsyncEngine) -> Tables:
    return Tables(engine)


def counted(client: Client, name: str, **labels: str) -> float:
    value = client.app[metrics_key].registry.get_sample_value(name, {"provider": "payme", **labels})
    return value or 0.0


@pytest.fixture
def metric() -> Callable[..., float]:
    """``metric(client, "provider_callbacks_rejected_total", reason="bad_auth")``: the counter's value."""
    return counted


@pytest.fixture
def new_payme_id() -> Callable[[], str]:
    return payme_id


@pytest.fixture
def authorization() -> Callable[..., str]:
    return basic
