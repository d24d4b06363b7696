"""Who may call the reconciliation routes, and what a reconciliation token reaches: only those routes,
naming no tenant (docs/INTERNAL.md "Trust")."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import reconciliation_headers


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
