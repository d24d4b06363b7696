"""``GET /admin/tenants`` does bounded work as every list does (API.md "Payments": "offset is capped
(10,000)", Stripe's cursors): a capped offset, and ``starting_after`` / ``ending_before`` paging every
tenant exactly once, newest first, however many are created meanwhile."""

from __future__ import annotations

from typing import Any

import pytest
from billing_contracts.envelope import utcnow
from gateway.db.models import Tenant
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from .support import Gateway, admin_headers, problem

pytestmark = pytest.mark.postgres

UNKNOWN = "ten_" + "0" * 26


async def _page(gateway: Gateway, **query: str) -> dict[str, Any]:
    resp = await gateway.client.get("/admin/tenants", params=query, headers=admin_headers())
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def _ids(gateway: Gateway, **query: str) -> list[str]:
    return [t["id"] for t in (await _page(gateway, **query))["data"]]


async def _tenants(gateway: Gateway, count: int, prefix: str = "shop") -> list[str]:
    """``count`` new tenants' ids, newest first (as the list shows them)."""
    return [(await gateway.create_tenant(f"{prefix}-{n}"))["id"] for n in range(count)][::-1]


async def _insert_directly(engine: AsyncEngine, tenant_id: str, app_name: str) -> None:
    # A tenant whose id was drawn before others were committed (two admins creating at once): its id
    # sorts behind tenants already listed.
    now = utcnow()
    async with engine.begin() as conn:
        await conn.execute(
            insert(Tenant).values(
                id=tenant_id, app_name=app_name, display_name=app_name, secret_hash="x", created_at=now, updated_at=now
            )
        )


class TestOffsetCap:
    async def test_offset_up_to_ten_thousand_is_served(self, gateway: Gateway) -> None:
        await gateway.create_tenant()
        page = await _page(gateway, offset="10000")
        assert (page["data"], page["offset"], page["has_more"]) == ([], 10000, False)

    @pytest.mark.parametrize("offset", ["10001", "2147483647"])
    async def test_offset_beyond_ten_thousand_is_422_naming_offset(self, gateway: Gateway, offset: str) -> None:
        resp = await gateway.client.get(f"/admin/tenants?offset={offset}", headers=admin_headers())
        body = await problem(resp, 422, "validation_error")
        assert body["errors"] == [{"field": "offset", "message": "must be an integer from 0 to 10000"}]


class TestCursors:
    async def test_starting_after_walks_every_tenant_once_newest_first(self, gateway: Gateway) -> None:
        newest_first = await _tenants(gateway, 7)
        assert await _ids(gateway, limit="100") == newest_first
        seen: list[str] = []
        query = {"limit": "3"}
        while True:
            page = await _page(gateway, **query)
            seen += [t["id"] for t in page["data"]]
            assert page["offset"] == 0
            if not page["has_more"]:
                break
            query = {"limit": "3", "starting_after": seen[-1]}
        assert seen == newest_first

    async def test_tenants_created_between_pages_neither_repeat_nor_hide_any(
        self, gateway: Gateway, engine: AsyncEngine
    ) -> None:
        newest_first = await _tenants(gateway, 6)
        # Drawn long before the tenants above (its time part is 1 ms past the epoch), committed mid-walk.
        drawn_early = "ten_" + "0" * 9 + "1" + "abcdefghjkmnpqrs"
        seen: list[str] = []
        page = await _page(gateway, limit="2")
        n = 0
        while True:
            seen += [t["id"] for t in page["data"]]
            if not page["has_more"]:
                break
            # Between pages: a tenant created the usual way (newer than all), and once a late one.
            await gateway.create_tenant(f"late-{n}")
            if n == 1:
                await _insert_directly(engine, drawn_early, "drawn-early")
            n += 1
            page = await _page(gateway, limit="2", starting_after=seen[-1])
        # Every tenant of the start exactly once, in order; those created meanwhile are newer than the
        # walk's first page (not in it) but the one committed late with an old id, found behind the cursor.
        assert seen == [*newest_first, drawn_early]
        everything = await _ids(gateway, limit="100")
        assert len(everything) == 6 + n + 1 and everything[-1] == drawn_early

    async def test_ending_before_walks_back_to_the_newest(self, gateway: Gateway) -> None:
        newest_first = await _tenants(gateway, 7)
        page = await _page(gateway, limit="2", ending_before=newest_first[4])
        assert [t["id"] for t in page["data"]] == newest_first[2:4]
        assert page["has_more"] is True
        page = await _page(gateway, limit="5", ending_before=newest_first[2])
        assert [t["id"] for t in page["data"]] == newest_first[:2]
        assert page["has_more"] is False

        backward: list[str] = []
        cursor = newest_first[-1]
        while True:
            page = await _page(gateway, limit="2", ending_before=cursor)
            backward = [t["id"] for t in page["data"]] + backward
            if not page["has_more"]:
                break
            cursor = page["data"][0]["id"]
        assert backward == newest_first[:-1]

    async def test_the_oldest_and_newest_end_the_walks(self, gateway: Gateway) -> None:
        newest_first = await _tenants(gateway, 2)
        after_oldest = await _page(gateway, starting_after=newest_first[-1])
        before_newest = await _page(gateway, ending_before=newest_first[0])
        assert (after_oldest["data"], after_oldest["has_more"]) == ([], False)
        assert (before_newest["data"], before_newest["has_more"]) == ([], False)


class TestBadCursors:
    @pytest.mark.parametrize("name", ["starting_after", "ending_before"])
    async def test_an_unknown_tenant_is_422_naming_the_cursor(self, gateway: Gateway, name: str) -> None:
        await gateway.create_tenant()
        resp = await gateway.client.get(f"/admin/tenants?{name}={UNKNOWN}", headers=admin_headers())
        body = await problem(resp, 422, "validation_error")
        assert body["errors"] == [{"field": name, "message": "no such object"}]

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("starting_after=nope", "starting_after"),
            ("ending_before=TEN_ABC", "ending_before"),
            ("starting_after=ten_%00", "starting_after"),
            ("starting_after=", "starting_after"),
            (f"starting_after=ten_{'a' * 41}", "starting_after"),
            (f"starting_after={UNKNOWN}&ending_before={UNKNOWN}", "ending_before"),
            (f"starting_after={UNKNOWN}&offset=5", "offset"),
        ],
    )
    async def test_malformed_cursors_and_combinations_are_422(self, gateway: Gateway, query: str, field: str) -> None:
        resp = await gateway.client.get(f"/admin/tenants?{query}", headers=admin_headers())
        body = await problem(resp, 422, "validation_error")
        assert body["errors"][0]["field"] == field

    async def test_a_cursor_still_needs_the_admin_token(self, gateway: Gateway) -> None:
        resp = await gateway.client.get(f"/admin/tenants?starting_after={UNKNOWN}")
        await problem(resp, 401, "unauthorized")


class TestDocumented:
    @pytest.mark.parametrize(
        ("path", "page"), [("/admin/tenants", "TenantList"), ("/admin/provider-accounts", "ProviderAccountList")]
    )
    async def test_the_served_document_describes_the_cursors_and_the_cap(
        self, gateway: Gateway, path: str, page: str
    ) -> None:
        doc = await (await gateway.client.get("/openapi.json")).json()
        params = {p["name"]: p["schema"] for p in doc["paths"][path]["get"]["parameters"]}
        assert params["offset"]["maximum"] == 10_000
        assert params["limit"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}
        for cursor in ("starting_after", "ending_before"):
            assert params[cursor]["pattern"] == "^[a-z]{2,8}_[0-9a-z]{1,40}$"
        assert set(doc["components"]["schemas"][page]["required"]) >= {"limit", "offset", "has_more"}
