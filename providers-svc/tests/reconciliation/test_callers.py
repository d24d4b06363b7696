"""Who may call the reconciliation routes, and what a reconciliation token reaches: only those routes,
naming no tenant (docs/INTERNAL.md "Trust")."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import INTERNAL_SECRET, RECONCILIATION_SECRET, reconciliation_headers


class TestReconciliationToken:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/internal/providers?currency=USD"),
            ("POST", "/internal/payments/start"),
            ("POST", "/internal/payments/pay_1/cancel"),
            ("GET", "/admin/provider-accounts"),
            ("GET", "/admin/stripe/charges"),
            ("GET", "/v1/stripe/charges"),
            ("GET", "/internal/nowhere"),
        ],
    )
    async def test_reaches_no_other_route(self, make_client: Any, db_read: Any, method: str, path: str) -> None:
        client = await make_client()
        response = await client.request(method, path, json={}, headers=reconciliation_headers())
        assert response.status == 403
        assert (await response.json())["code"] == "forbidden"
        assert await db_read("transactions") == []

    async def test_naming_a_tenant_is_refused(self, make_client: Any) -> None:
        client = await make_client()
        headers = reconciliation_headers(tenant_id="ten_aaaaaaaaaaaaaaaa")
        for method, path in (("POST", "/internal/payments/pay_1/sync"), ("GET", "/internal/statements")):
            response = await client.request(method, path, headers=headers)
            assert response.status == 401


class TestOtherCallers:
    @pytest.mark.parametrize("issuer", ["payments", "gateway"])
    async def test_may_not_sync_or_read_statements(self, make_client: Any, issuer: str) -> None:
        client = await make_client()
        for tenant_id in (None, "ten_aaaaaaaaaaaaaaaa"):
            headers = reconciliation_headers(tenant_id=tenant_id, issuer=issuer)
            for method, path in (
                ("POST", "/internal/payments/pay_1/sync"),
                ("GET", "/internal/statements?account_id=sandbox&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z"),
            ):
                response = await client.request(method, path, headers=headers)
                assert response.status == 403, (issuer, tenant_id, path)
                assert (await response.json())["code"] == "forbidden"


class TestKeyPerIssuer:
    """reconciliation-svc holds only its own key here: it cannot sign as payments-svc or the gateway
    (which would reach starts, cancels and the provider accounts), nor can their key sign as it."""

    @pytest.mark.parametrize("issuer", ["payments", "gateway"])
    async def test_reconciliations_key_cannot_sign_as_another_service(self, make_client: Any, issuer: str) -> None:
        client = await make_client()
        for tenant_id in (None, "ten_aaaaaaaaaaaaaaaa"):
            headers = reconciliation_headers(tenant_id=tenant_id, issuer=issuer, secret=RECONCILIATION_SECRET)
            for method, path in (("GET", "/internal/providers?currency=USD"), ("GET", "/admin/provider-accounts")):
                response = await client.request(method, path, headers=headers)
                assert response.status == 401, (issuer, tenant_id, path)

    async def test_the_shared_key_cannot_sign_as_reconciliation(self, make_client: Any) -> None:
        client = await make_client()
        headers = reconciliation_headers(secret=INTERNAL_SECRET)
        response = await client.post("/internal/payments/pay_1/sync", headers=headers)
        assert response.status == 401
