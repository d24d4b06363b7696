"""``GET /internal/events``: every tenant's event log in one order, for reconciliation-svc's rebuild;
and a reconciliation token reaches that route only (docs/INTERNAL.md "Reconciliation")."""

from __future__ import annotations

from typing import Any

import pytest
from billing_runtime.internal_auth import INTERNAL_HEADER, sign_internal

# As in conftest: payments-svc's own key (the gateway's), and reconciliation-svc's own key here.
INTERNAL_SECRET = "test-internal-secret-0123456789abcdef"
RECONCILIATION_SECRET = "test-reconciliation-secret-0123456789abcdef"


def _reconciliation(tenant_id: str | None = None) -> dict[str, str]:
    token = sign_internal(RECONCILIATION_SECRET, issuer="reconciliation", audience="payments", tenant_id=tenant_id)
    return {INTERNAL_HEADER: token}


async def _page(client: Any, query: str = "") -> dict[str, Any]:
    response = await client.get(f"/internal/events{query}", headers=_reconciliation())
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


class TestPlatformEvents:
    async def test_every_tenants_events_in_log_order(self, client: Any, new_payment: Any) -> None:
        a1 = await new_payment("ten_a")
        b1 = await new_payment("ten_b", livemode=True)
        a2 = await new_payment("ten_a")
        page = await _page(client)
        assert [(e["tenant_id"], e["data"]["payment"]["id"]) for e in page["data"]] == [
            ("ten_a", a1["id"]),
            ("ten_b", b1["id"]),
            ("ten_a", a2["id"]),
        ]
        assert [e["livemode"] for e in page["data"]] == [False, True, False]
        assert {e["type"] for e in page["data"]} == {"payment.created"}
        assert page["has_more"] is False

    async def test_pages_with_after_never_miss_or_repeat(self, client: Any, new_payment: Any) -> None:
        created = [(await new_payment(tenant))["id"] for tenant in ("ten_a", "ten_b", "ten_a", "ten_c", "ten_b")]
        seen: list[str] = []
        query = "?limit=2"
        while True:
            page = await _page(client, query)
            seen += [e["data"]["payment"]["id"] for e in page["data"]]
            if not page["has_more"]:
                break
            query = f"?limit=2&after={page['data'][-1]['id']}"
        assert seen == created

    async def test_tenant_log_agrees_with_the_platform_log(self, client: Any, new_payment: Any, auth: Any) -> None:
        for tenant in ("ten_a", "ten_b", "ten_a"):
            await new_payment(tenant)
        platform = [e for e in (await _page(client))["data"] if e["tenant_id"] == "ten_a"]
        tenant = (await (await client.get("/v1/events", headers=auth("ten_a"))).json())["data"]
        assert [{k: v for k, v in e.items() if k != "tenant_id"} for e in platform] == tenant

    @pytest.mark.parametrize(
        ("query", "status", "code"),
        [
            ("?limit=0", 422, "validation_error"),
            ("?limit=1001", 422, "validation_error"),
            ("?limit=x", 422, "validation_error"),
            ("?after=pay_1", 422, "validation_error"),
            ("?after=evt_unknown", 404, "not_found"),
        ],
    )
    async def test_bad_queries_are_problems(self, client: Any, query: str, status: int, code: str) -> None:
        response = await client.get(f"/internal/events{query}", headers=_reconciliation())
        assert response.status == status
        assert (await response.json())["code"] == code


class TestWhoMayCall:
    async def test_the_gateway_may_not_read_every_tenants_log(self, client: Any, auth: Any) -> None:
        for headers in (auth("ten_a"), auth(None)):
            response = await client.get("/internal/events", headers=headers)
            assert response.status == 403
            assert (await response.json())["code"] == "forbidden"

    async def test_a_reconciliation_token_naming_a_tenant_is_refused(self, client: Any) -> None:
        response = await client.get("/internal/events", headers=_reconciliation("ten_a"))
        assert response.status == 401

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/v1/payments"),
            ("GET", "/v1/events"),
            ("GET", "/v1/checkout/tok_x"),
            ("POST", "/v1/checkout/tok_x/pay"),
            ("POST", "/v1/payments"),
        ],
    )
    async def test_reconciliation_reaches_no_other_route(self, client: Any, method: str, path: str, count: Any) -> None:
        response = await client.request(method, path, json={}, headers=_reconciliation())
        assert response.status == 403
        assert (await response.json())["code"] == "forbidden"
        assert await count("payments") == 0


class TestReconciliationKey:
    """reconciliation-svc signs with a key of its own: it cannot claim to be the gateway (and reach the
    tenant routes), and the gateway's key cannot claim to be reconciliation-svc."""

    async def test_reconciliations_key_cannot_sign_as_the_gateway(self, client: Any, new_payment: Any) -> None:
        payment = await new_payment("ten_a")
        forged = sign_internal(RECONCILIATION_SECRET, issuer="gateway", audience="payments", tenant_id="ten_a")
        response = await client.get(f"/v1/payments/{payment['id']}", headers={INTERNAL_HEADER: forged})
        assert response.status == 401
        assert (await response.json())["code"] == "unauthorized"
        response = await client.post(
            f"/v1/payments/{payment['id']}/refunds",
            json={},
            headers={INTERNAL_HEADER: forged, "Idempotency-Key": "forged"},
        )
        assert response.status == 401

    async def test_the_gateways_key_cannot_sign_as_reconciliation(self, client: Any) -> None:
        forged = sign_internal(INTERNAL_SECRET, issuer="reconciliation", audience="payments", tenant_id=None)
        response = await client.get("/internal/events", headers={INTERNAL_HEADER: forged})
        assert response.status == 401
