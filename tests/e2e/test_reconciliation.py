"""reconciliation-svc runs in both modes (embedded: its database on the embedded server, its api and
worker in the process; distributed: its own process on RabbitMQ) and its admin API is reached through
the gateway with the admin token only."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


class TestReconciliationRuns:
    async def test_the_service_runs_and_its_admin_api_is_served_through_the_gateway(
        self, platform, new_tenant, http
    ) -> None:
        async with http.get(f"http://127.0.0.1:{platform.ports['reconciliation']}/readyz") as r:
            assert r.status == 200, await r.text()
        admin = {"Authorization": f"Bearer {platform.admin_token}"}
        async with http.get(f"{platform.gateway_url}/admin/reconciliation/discrepancies", headers=admin) as r:
            assert r.status == 200, await r.text()
            body = await r.json()
        assert (body["object"], body["data"], body["has_more"]) == ("list", [], False)
        async with http.post(f"{platform.gateway_url}/admin/reconciliation/janitor/run", headers=admin) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["object"] == "janitor_run"
        async with http.get(f"{platform.gateway_url}/admin/reconciliation/discrepancies/dsc_nope", headers=admin) as r:
            assert r.status == 404
            assert (await r.json())["code"] == "not_found"
        # Not for tenants, nor for anyone without the admin token; and never reachable directly.
        tenant = await new_tenant()
        async with http.get(f"{platform.gateway_url}/admin/reconciliation/discrepancies", headers=tenant.auth) as r:
            assert r.status == 403
        async with http.get(f"{platform.gateway_url}/admin/reconciliation/discrepancies") as r:
            assert r.status == 401
        direct = f"http://127.0.0.1:{platform.ports['reconciliation']}/admin/reconciliation/discrepancies"
        async with http.get(direct, headers=admin) as r:
            assert r.status == 401
