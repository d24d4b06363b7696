"""``POST /internal/payments/{payment_id}/transactions/{ptx}/void`` (services/voids.py): one attempt closed
at its provider when the payer switches provider; refused while the provider took the money."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

TENANT_B = "ten_bbbbbbbbbbbbbbbb"


def _void_path(started: dict[str, Any], transaction_id: str | None = None) -> str:
    ptx = transaction_id or started["provider_transaction_id"]
    return f"/internal/payments/{started['payment_id']}/transactions/{ptx}/void"


class TestVoid:
    async def test_a_pending_attempt_is_closed_at_the_bank_and_here(
        self,
        make_client: Any,
        internal_headers: Callable[..., dict[str, str]],
        start_payment: Callable[..., Awaitable[dict[str, Any]]],
        db_read: Any,
    ) -> None:
        client = await make_client()
        started = await start_payment(client)
        response = await client.post(_void_path(started), headers=internal_headers())
        assert response.status == 200
        assert await response.json() == {"voided": True, "status": "cancelled"}
        [row] = await db_read("transactions")
        assert row["status"] == "cancelled"
        # Asked again: still closed, nothing else happens.
        again = await client.post(_void_path(started), headers=internal_headers())
        assert (again.status, (await again.json())["status"]) == (200, "cancelled")
        # The payer can no longer pay it on the sandbox page.
        page = await client.post(f"/sandbox/pay/{started['provider_transaction_id']}", data={"outcome": "succeed"})
        assert "cancelled" in await page.text()
        [charge] = await db_read("charges")
        assert charge["outcome"] == "cancelled"

    @pytest.mark.parametrize("outcome", ["succeed", "pending"])
    async def test_refused_once_the_bank_took_the_money(
        self,
        make_client: Any,
        internal_headers: Callable[..., dict[str, str]],
        start_payment: Callable[..., Awaitable[dict[str, Any]]],
        db_read: Any,
        outcome: str,
    ) -> None:
        client = await make_client()
        started = await start_payment(client)
        pay = await client.post(
            f"/sandbox/pay/{started['provider_transaction_id']}", data={"outcome": outcome}, allow_redirects=False
        )
        assert pay.status == 303
        response = await client.post(_void_path(started), headers=internal_headers())
        assert response.status == 409
        assert response.content_type == "application/problem+json"
        assert (await response.json())["code"] == "not_cancellable"
        [row] = await db_read("transactions")
        assert row["status"] == "pending"

    async def test_only_the_named_attempt_of_this_tenants_payment(
        self,
        make_client: Any,
        internal_headers: Callable[..., dict[str, str]],
        start_payment: Callable[..., Awaitable[dict[str, Any]]],
        db_read: Any,
    ) -> None:
        client = await make_client()
        started = await start_payment(client)
        unknown = await client.post(_void_path(started, "ptx_unknown"), headers=internal_headers())
        assert (unknown.status, (await unknown.json())["code"]) == (404, "not_found")
        foreign = await client.post(_void_path(started), headers=internal_headers(TENANT_B))
        assert foreign.status == 404
        other_payment = {**started, "payment_id": "pay_other"}
        assert (await client.post(_void_path(other_payment), headers=internal_headers())).status == 404
        [row] = await db_read("transactions")
        assert row["status"] == "pending"

    async def test_needs_a_payments_token(
        self, make_client: Any, start_payment: Callable[..., Awaitable[dict[str, Any]]]
    ) -> None:
        client = await make_client()
        started = await start_payment(client)
        assert (await client.post(_void_path(started))).status == 401
