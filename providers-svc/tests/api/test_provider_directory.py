"""Which account pays a tenant's payment (API.md "Provider accounts"): the tenant's assigned account, or,
for a test tenant without one, the provider's simulator account; a live tenant only its own. Driven
through the internal API and ``ProviderDirectory`` on real PostgreSQL, with an account provider of the
test's own that records which account each adapter was bound to."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from providers_svc.adapters.base import RefundResult, StartResult, StatusResult
from providers_svc.db.models import ProviderAccountRow, ProviderTransactionRow
from providers_svc.domain.accounts import BoundAccount
from providers_svc.domain.transactions import Transaction, TransactionStatus
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.postgres

TEST_PAYME = {
    "provider": "payme",
    "name": "Shop kassa (test)",
    "environment": "test",
    "currencies": ["UZS"],
    "credentials": {"merchant_id": "5e730e8e0b852a417aa49ceb", "key": "kassa-test-key"},
}
LIVE_PAYME = {**TEST_PAYME, "name": "Shop kassa", "environment": "production"}


@dataclass
class BoundAdapter:
    account: BoundAccount
    log: list[tuple[str, str, str]]
    name: str = "payme"
    display_name: str = "Payme"
    currencies: frozenset[str] = frozenset({"UZS"})

    @property
    def test_only(self) -> bool:
        return self.account.test

    starts_locally = False

    async def start(self, txn: Transaction) -> StartResult:
        self.log.append(("start", txn.id, self.account.id))
        return StartResult(f"http://127.0.0.1:9/pay/{self.account.id}/{txn.id}")

    async def cancel(self, txn: Transaction) -> bool:
        self.log.append(("cancel", txn.id, self.account.id))
        return True

    async def fetch_status(self, txn: Transaction) -> StatusResult:
        return StatusResult(TransactionStatus.PENDING)

    async def refund(
        self, txn: Transaction, *, refund_id: str, amount: int, reason: str | None, retry: bool = False
    ) -> RefundResult:
        return RefundResult("failed")

    async def refund_status(
        self, txn: Transaction, *, refund_id: str, provider_refund_id: str | None, amount: int
    ) -> RefundResult:
        return RefundResult("failed")


@dataclass
class RecordingPayme:
    """An account provider named ``payme`` whose adapters say which account they were bound to."""

    log: list[tuple[str, str, str]] = field(default_factory=list)
    name: str = "payme"
    display_name: str = "Payme"
    currencies: frozenset[str] = frozenset({"UZS"})

    def bind(self, account: BoundAccount) -> BoundAdapter:
        assert account.provider == "payme"
        return BoundAdapter(account, self.log)


@pytest.fixture
async def payme() -> RecordingPayme:
    return RecordingPayme()


@pytest.fixture
async def client(make_client: Any, payme: RecordingPayme) -> Any:
    return await make_client(account_providers=[payme])


async def _account(client: Any, admin: dict[str, str], body: dict[str, Any]) -> str:
    resp = await client.post("/admin/provider-accounts", json=body, headers=admin)
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def _assign(client: Any, internal_headers: Any, tenant: str, account_id: str, *, livemode: bool) -> None:
    headers = internal_headers(tenant, issuer="gateway", livemode=livemode)
    resp = await client.put(
        f"/admin/tenants/{tenant}/provider-accounts/payme", json={"provider_account_id": account_id}, headers=headers
    )
    assert resp.status == 200, await resp.text()


async def _offered(client: Any, internal_headers: Any, tenant: str, currency: str, *, livemode: bool) -> list[Any]:
    resp = await client.get(
        f"/internal/providers?currency={currency}", headers=internal_headers(tenant, livemode=livemode)
    )
    assert resp.status == 200, await resp.text()
    return list((await resp.json())["data"])


class TestOffers:
    async def test_a_test_tenant_without_an_account_is_served_by_the_simulator(
        self, client: Any, internal_headers: Any, engine: AsyncEngine
    ) -> None:
        offered = await _offered(client, internal_headers, "ten_test", "UZS", livemode=False)
        assert offered == [
            {
                "name": "payme",
                "display_name": "Payme (simulator)",
                "simulator": True,
                "livemode": False,
                "capture_methods": ["automatic"],
            },
            {
                "name": "sandbox",
                "display_name": "Sandbox (test)",
                "simulator": False,
                "livemode": False,
                "capture_methods": ["automatic", "manual"],
            },
        ]
        # Asked for by many at once, the simulator account is still created once.
        await asyncio.gather(*(_offered(client, internal_headers, f"ten_{i}", "UZS", livemode=False) for i in range(8)))
        async with engine.connect() as conn:
            rows = (await conn.execute(select(ProviderAccountRow).where(ProviderAccountRow.simulator))).all()
        assert [(r.id, r.provider, r.environment) for r in rows] == [("pac_simulator_payme", "payme", "test")]

    async def test_the_simulator_serves_only_the_currencies_of_its_provider(
        self, client: Any, internal_headers: Any
    ) -> None:
        offered = await _offered(client, internal_headers, "ten_test", "USD", livemode=False)
        assert [o["name"] for o in offered] == ["sandbox"]

    async def test_a_live_tenant_is_offered_only_its_own_production_account(
        self, client: Any, internal_headers: Any, admin: dict[str, str]
    ) -> None:
        assert await _offered(client, internal_headers, "ten_live", "UZS", livemode=True) == []
        account = await _account(client, admin, LIVE_PAYME)
        await _assign(client, internal_headers, "ten_live", account, livemode=True)
        offered = await _offered(client, internal_headers, "ten_live", "UZS", livemode=True)
        assert offered == [
            {
                "name": "payme",
                "display_name": "Payme",
                "simulator": False,
                "livemode": True,
                "capture_methods": ["automatic"],
            }
        ]
        # Another live tenant gets nothing from it.
        assert await _offered(client, internal_headers, "ten_other", "UZS", livemode=True) == []

    async def test_an_assigned_test_account_replaces_the_simulator(
        self, client: Any, internal_headers: Any, admin: dict[str, str]
    ) -> None:
        account = await _account(client, admin, TEST_PAYME)
        await _assign(client, internal_headers, "ten_test", account, livemode=False)
        offered = await _offered(client, internal_headers, "ten_test", "UZS", livemode=False)
        assert {
            "name": "payme",
            "display_name": "Payme",
            "simulator": False,
            "livemode": False,
            "capture_methods": ["automatic"],
        } in offered

    async def test_with_simulators_off_a_test_tenant_needs_an_account(
        self, make_client: Any, internal_headers: Any, payme: RecordingPayme
    ) -> None:
        client = await make_client(account_providers=[payme], simulators=False)
        offered = await _offered(client, internal_headers, "ten_test", "UZS", livemode=False)
        assert [o["name"] for o in offered] == ["sandbox"]
        resp = await client.post(
            "/internal/payments/start",
            json={"payment_id": "pay_nosim", "provider": "payme", "amount": 100, "currency": "UZS"},
            headers=internal_headers("ten_test"),
        )
        assert resp.status == 422
        assert (await resp.json())["code"] == "unknown_provider"

    async def test_the_admin_api_never_shows_the_simulator_account(
        self, client: Any, internal_headers: Any, admin: dict[str, str]
    ) -> None:
        await _offered(client, internal_headers, "ten_test", "UZS", livemode=False)
        listed = await (await client.get("/admin/provider-accounts", headers=admin)).json()
        assert listed["data"] == []
        for method in ("GET", "PATCH", "DELETE"):
            resp = await client.request(
                method, "/admin/provider-accounts/pac_simulator_payme", json={"name": "x"}, headers=admin
            )
            assert resp.status == 404, method
        resp = await client.put(
            "/admin/tenants/ten_test/provider-accounts/payme",
            json={"provider_account_id": "pac_simulator_payme"},
            headers=internal_headers("ten_test", issuer="gateway"),
        )
        assert resp.status == 422


class TestStartAndCancel:
    async def _start(self, client: Any, internal_headers: Any, tenant: str, payment_id: str, **kw: Any) -> Any:
        body = {"payment_id": payment_id, "provider": "payme", "amount": 150_000, "currency": "UZS", **kw}
        return await client.post("/internal/payments/start", json=body, headers=internal_headers(tenant))

    async def test_the_transaction_keeps_the_account_it_was_started_with(
        self, client: Any, internal_headers: Any, admin: dict[str, str], payme: RecordingPayme, engine: AsyncEngine
    ) -> None:
        resp = await self._start(client, internal_headers, "ten_test", "pay_sim1")
        assert resp.status == 200, await resp.text()
        started = await resp.json()
        assert started["redirect_url"].startswith("http://127.0.0.1:9/pay/pac_simulator_payme/")
        # The tenant gets an account of its own; the started payment stays with the simulator's.
        account = await _account(client, admin, TEST_PAYME)
        await _assign(client, internal_headers, "ten_test", account, livemode=False)
        again = await (await self._start(client, internal_headers, "ten_test", "pay_sim1")).json()
        assert again == started
        async with engine.connect() as conn:
            stored = (await conn.execute(select(ProviderTransactionRow.account_id))).scalars().all()
        assert stored == ["pac_simulator_payme"]
        resp = await client.post("/internal/payments/pay_sim1/cancel", headers=internal_headers("ten_test"))
        assert resp.status == 200
        assert payme.log[-1] == ("cancel", started["provider_transaction_id"], "pac_simulator_payme")
        # A new payment uses the new account.
        new = await (await self._start(client, internal_headers, "ten_test", "pay_own1")).json()
        assert new["redirect_url"].startswith(f"http://127.0.0.1:9/pay/{account}/")

    async def test_a_currency_the_account_does_not_take_is_refused(self, client: Any, internal_headers: Any) -> None:
        resp = await self._start(client, internal_headers, "ten_test", "pay_usd", currency="USD")
        assert resp.status == 422
        assert (await resp.json())["code"] == "currency_not_supported"

    async def test_a_live_tenant_without_an_account_cannot_start(
        self, client: Any, internal_headers: Any, engine: AsyncEngine
    ) -> None:
        body = {"payment_id": "pay_live1", "provider": "payme", "amount": 100, "currency": "UZS"}
        resp = await client.post(
            "/internal/payments/start", json=body, headers=internal_headers("ten_live", livemode=True)
        )
        assert resp.status == 422
        async with engine.connect() as conn:
            count = (await conn.execute(select(func.count()).select_from(ProviderTransactionRow))).scalar()
        assert count == 0


class TestTenantProviders:
    """``GET /v1/providers`` (an extension beyond API.md, through the gateway): what the tenant is
    offered in its mode, each with where it comes from, never a credential."""

    async def _listed(self, client: Any, internal_headers: Any, tenant: str, *, livemode: bool) -> list[Any]:
        headers = internal_headers(tenant, issuer="gateway", livemode=livemode)
        resp = await client.get("/v1/providers", headers=headers)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert (body["object"], body["has_more"]) == ("list", False)
        return list(body["data"])

    async def test_a_test_tenant_sees_the_sandbox_and_the_simulators(self, client: Any, internal_headers: Any) -> None:
        listed = await self._listed(client, internal_headers, "ten_test", livemode=False)
        by_name = {p["name"]: p for p in listed}
        assert by_name["payme"] == {
            "object": "provider",
            "name": "payme",
            "display_name": "Payme (simulator)",
            "environment": "test",
            "livemode": False,
            "source": "simulator",
            "currencies": ["UZS"],
        }
        assert by_name["sandbox"]["source"] == "sandbox"
        assert by_name["sandbox"]["environment"] == "test"
        assert "USD" in by_name["sandbox"]["currencies"]

    async def test_a_live_tenant_sees_its_production_account_only(
        self, client: Any, internal_headers: Any, admin: dict[str, str]
    ) -> None:
        assert await self._listed(client, internal_headers, "ten_live", livemode=True) == []
        await _assign(client, internal_headers, "ten_live", await _account(client, admin, LIVE_PAYME), livemode=True)
        [listed] = await self._listed(client, internal_headers, "ten_live", livemode=True)
        assert (listed["name"], listed["environment"], listed["livemode"], listed["source"]) == (
            "payme",
            "production",
            True,
            "account",
        )
        assert "credentials" not in listed
        assert "kassa-test-key" not in str(listed)

    async def test_needs_a_tenant(self, client: Any, internal_headers: Any) -> None:
        resp = await client.get("/v1/providers", headers=internal_headers(None, issuer="gateway"))
        assert resp.status in (401, 403)
        assert resp.content_type == "application/problem+json"
