from __future__ import annotations

from collections.abc import Callable
from typing import Any


class TestHealth:
    async def test_healthz_readyz_and_metrics_are_open(self, client: Any) -> None:
        assert (await client.get("/healthz")).status == 200
        ready = await client.get("/readyz")
        assert ready.status == 200, await ready.text()
        metrics = await (await client.get("/metrics")).text()
        assert "reconciliation_janitor_checks_total" in metrics

    async def test_an_admin_route_needs_the_gateways_token(self, client: Any) -> None:
        response = await client.get("/admin/reconciliation/discrepancies")
        assert response.status == 401
        assert (await response.json())["code"] == "unauthorized"

    async def test_another_issuer_is_refused(self, client: Any, admin_headers: Callable[..., dict[str, str]]) -> None:
        response = await client.get("/admin/reconciliation/discrepancies", headers=admin_headers("payments"))
        assert response.status == 401
