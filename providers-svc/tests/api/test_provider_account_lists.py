"""``GET /admin/provider-accounts`` does bounded work as every list does (API.md "Payments": "offset is
capped (10,000)", Stripe's cursors): a capped offset, and ``starting_after`` / ``ending_before`` paging
every account exactly once, newest first by (created_at, id), however many are created meanwhile."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from billing_contracts.envelope import utcnow
from providers_svc.db.models import ProviderAccountRow
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.postgres

UNKNOWN = "pac_" + "0" * 26


def _payme(name: str) -> dict[str, Any]:
    # Each its own kassa key: two accounts never share one (test_account_identity.py).
    return {
        "provider": "payme",
        "name": name,
        "environment": "test",
        "currencies": ["UZS"],
        "credentials": {"merchant_id": "5e730e8e0b852a417aa49ceb", "key": f"payme-key-{name}"},
    }


def _click(name: str, service_id: int) -> dict[str, Any]:
    return {
        "provider": "click",
        "name": name,
        "environment": "test",
        "currencies": ["UZS"],
        "credentials": {
            "service_id": str(service_id),
            "merchant_id": "202",
            "merchant_user_id": "303",
            "secret_key": f"click-{name}",
        },
    }


async def _create(client: Any, admin: dict[str, str], body: dict[str, Any]) -> str:
    resp = await client.post("/admin/provider-accounts", json=body, headers=admin)
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def _page(client: Any, admin: dict[str, str], **query: str) -> dict[str, Any]:
    resp = await client.get("/admin/provider-accounts", params=query, headers=admin)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def _ids(client: Any, admin: dict[str, str], **query: str) -> list[str]:
    return [a["id"] for a in (await _page(client, admin, **query))["data"]]


async def _problem(resp: Any) -> dict[str, Any]:
    assert resp.status == 422, await resp.text()
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    body = dict(await resp.json())
    assert body["code"] == "validation_error"
    return body


async def _set_created_at(engine: AsyncEngine, ids: list[str], when: datetime) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(ProviderAccountRow.__table__).where(ProviderAccountRow.id.in_(ids)).values(created_at=when)
        )


@pytest.fixture
async def seven(client: Any, admin: dict[str, str], engine: AsyncEngine) -> list[str]:
    """Seven accounts, four of them created in the same microsecond (only the id orders those), newest
    first as the list shows them."""
    ids = [await _create(client, admin, _payme(f"a{n}")) for n in range(7)]
    await _set_created_at(engine, ids[1:5], utcnow())
    newest_first = await _ids(client, admin, limit="100")
    assert sorted(newest_first) == sorted(ids)
    return newest_first


class TestOffsetCap:
    async def test_offset_up_to_ten_thousand_is_served(self, client: Any, admin: dict[str, str]) -> None:
        await _create(client, admin, _payme("only"))
        page = await _page(client, admin, offset="10000")
        assert (page["data"], page["limit"], page["offset"], page["has_more"]) == ([], 20, 10000, False)

    async def test_an_offset_skips_rows_in_the_lists_order(
        self, client: Any, admin: dict[str, str], seven: list[str]
    ) -> None:
        page = await _page(client, admin, limit="2", offset="3")
        assert ([a["id"] for a in page["data"]], page["offset"], page["has_more"]) == (seven[3:5], 3, True)

    @pytest.mark.parametrize("offset", ["10001", "2147483647"])
    async def test_offset_beyond_ten_thousand_is_422_naming_offset(
        self, client: Any, admin: dict[str, str], offset: str
    ) -> None:
        body = await _problem(await client.get(f"/admin/provider-accounts?offset={offset}", headers=admin))
        assert body["errors"] == [{"field": "offset", "message": "must be an integer from 0 to 10000"}]


class TestCursors:
    async def test_starting_after_walks_every_account_once(
        self, client: Any, admin: dict[str, str], seven: list[str]
    ) -> None:
        seen: list[str] = []
        query = {"limit": "2"}
        while True:
            page = await _page(client, admin, **query)
            seen += [a["id"] for a in page["data"]]
            if not page["has_more"]:
                break
            query = {"limit": "2", "starting_after": seen[-1]}
        assert seen == seven

    async def test_ending_before_walks_back_to_the_newest(
        self, client: Any, admin: dict[str, str], seven: list[str]
    ) -> None:
        page = await _page(client, admin, limit="2", ending_before=seven[4])
        assert ([a["id"] for a in page["data"]], page["has_more"]) == (seven[2:4], True)
        page = await _page(client, admin, limit="5", ending_before=seven[2])
        assert ([a["id"] for a in page["data"]], page["has_more"]) == (seven[:2], False)
        backward: list[str] = []
        cursor = seven[-1]
        while True:
            page = await _page(client, admin, limit="2", ending_before=cursor)
            backward = [a["id"] for a in page["data"]] + backward
            if not page["has_more"]:
                break
            cursor = page["data"][0]["id"]
        assert backward == seven[:-1]

    async def test_accounts_created_between_pages_neither_repeat_nor_hide_any(
        self, client: Any, admin: dict[str, str], seven: list[str], engine: AsyncEngine
    ) -> None:
        seen: list[str] = []
        page = await _page(client, admin, limit="2")
        late: list[str] = []
        created = 0
        while True:
            seen += [a["id"] for a in page["data"]]
            if not page["has_more"]:
                break
            # Between pages: an account created the usual way (newer than all of them), and once one
            # whose creation time is older than the cursor (a slow concurrent create committing late).
            await _create(client, admin, _payme(f"new{created}"))
            created += 1
            if not late:
                late.append(await _create(client, admin, _payme("late")))
                await _set_created_at(engine, late, datetime(2020, 1, 1, tzinfo=UTC))
            page = await _page(client, admin, limit="2", starting_after=seen[-1])
        # Every account of the start exactly once, in order; the newer ones are before the walk's first
        # page, the late one behind the cursor, so found once at the end.
        assert seen == [*seven, *late]
        assert len(await _ids(client, admin, limit="100")) == 7 + created + 1

    async def test_a_filter_narrows_the_page_not_where_it_starts(
        self, client: Any, admin: dict[str, str], engine: AsyncEngine
    ) -> None:
        older_payme = await _create(client, admin, _payme("p1"))
        click = await _create(client, admin, _click("c1", 101))
        newer_payme = await _create(client, admin, _payme("p2"))
        page = await _page(client, admin, provider="payme", starting_after=click)
        assert ([a["id"] for a in page["data"]], page["has_more"]) == ([older_payme], False)
        page = await _page(client, admin, provider="payme", ending_before=click)
        assert ([a["id"] for a in page["data"]], page["has_more"]) == ([newer_payme], False)
        page = await _page(client, admin, provider="click", limit="1", ending_before=older_payme)
        assert ([a["id"] for a in page["data"]], page["has_more"]) == ([click], False)


class TestBadCursors:
    @pytest.mark.parametrize("name", ["starting_after", "ending_before"])
    async def test_an_unknown_account_is_422_naming_the_cursor(
        self, client: Any, admin: dict[str, str], name: str
    ) -> None:
        await _create(client, admin, _payme("only"))
        body = await _problem(await client.get(f"/admin/provider-accounts?{name}={UNKNOWN}", headers=admin))
        assert body["errors"] == [{"field": name, "message": "no such object"}]

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("starting_after=pac_nope%20x", "starting_after"),
            ("ending_before=PAC_1", "ending_before"),
            ("starting_after=", "starting_after"),
            (f"starting_after={UNKNOWN}&ending_before={UNKNOWN}", "ending_before"),
            (f"ending_before={UNKNOWN}&offset=2", "offset"),
            ("limit=101", "limit"),
        ],
    )
    async def test_malformed_cursors_and_combinations_are_422(
        self, client: Any, admin: dict[str, str], query: str, field: str
    ) -> None:
        body = await _problem(await client.get(f"/admin/provider-accounts?{query}", headers=admin))
        assert body["errors"][0]["field"] == field

    async def test_a_cursor_still_needs_the_gateway(self, client: Any, internal_headers: Any) -> None:
        resp = await client.get(f"/admin/provider-accounts?starting_after={UNKNOWN}", headers=internal_headers())
        assert resp.status == 403
