"""Bounded work (API.md): a limit on endpoints per tenant, Stripe's cursors on the lists with the
offset capped, and replay in bounded batches."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text


async def _create(client: Any, auth: Any, tenant: str = "ten_a", **body: Any) -> Any:
    return await client.post(
        "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/none", **body}, headers=auth(tenant)
    )


class TestEndpointLimit:
    async def test_beyond_the_limit_is_409_and_a_deleted_one_frees_a_place(self, start_app, auth) -> None:
        client = await start_app(max_endpoints_per_tenant=3)
        made = []
        for _ in range(3):
            response = await _create(client, auth)
            assert response.status == 201
            made.append(await response.json())
        refused = await _create(client, auth)
        assert refused.status == 409
        problem = await refused.json()
        assert problem["code"] == "endpoint_limit_reached"
        assert "3" in problem["detail"]
        # Another tenant has its own allowance; a disabled endpoint still counts.
        assert (await _create(client, auth, "ten_b")).status == 201
        patched = await client.patch(f"/v1/webhook-endpoints/{made[0]['id']}", json={"enabled": False}, headers=auth())
        assert patched.status == 200
        assert (await _create(client, auth)).status == 409
        deleted = await client.delete(f"/v1/webhook-endpoints/{made[1]['id']}", headers=auth())
        assert deleted.status == 200
        assert (await _create(client, auth)).status == 201

    async def test_concurrent_creations_never_pass_the_limit(self, start_app, auth, count) -> None:
        client = await start_app(max_endpoints_per_tenant=3)
        responses = await asyncio.gather(*(_create(client, auth) for _ in range(8)))
        assert sorted(r.status for r in responses) == [201] * 3 + [409] * 5
        assert await count("webhook_endpoints") == 3

    async def test_the_default_is_20(self, start_app, auth) -> None:
        client = await start_app()
        for _ in range(20):
            assert (await _create(client, auth)).status == 201
        assert (await _create(client, auth)).status == 409


async def _list(client: Any, auth: Any, path: str, **query: str) -> dict[str, Any]:
    response = await client.get(path, params=query, headers=auth())
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def _rows(client: Any, auth: Any, **query: str) -> list[dict[str, Any]]:
    # Through this test's own app: the ``client`` fixture would start a second worker.
    return list((await _list(client, auth, "/v1/webhook-deliveries", limit="100", **query))["data"])


class TestCursors:
    @pytest.fixture
    async def seven(self, start_app, auth) -> tuple[Any, list[str]]:  # type: ignore[no-untyped-def]
        client = await start_app(roles=("api",))
        ids = []
        for n in range(7):
            response = await _create(client, auth, description=f"e{n}")
            ids.append((await response.json())["id"])
        return client, list(reversed(ids))  # newest first, as the list is

    async def test_starting_after_walks_the_whole_list_once(self, seven, auth) -> None:
        client, newest_first = seven
        seen: list[str] = []
        query: dict[str, str] = {"limit": "3"}
        while True:
            page = await _list(client, auth, "/v1/webhook-endpoints", **query)
            seen += [e["id"] for e in page["data"]]
            if not page["has_more"]:
                break
            query = {"limit": "3", "starting_after": seen[-1]}
        assert seen == newest_first

    async def test_ending_before_walks_back(self, seven, auth) -> None:
        client, newest_first = seven
        page = await _list(client, auth, "/v1/webhook-endpoints", limit="2", ending_before=newest_first[4])
        assert [e["id"] for e in page["data"]] == newest_first[2:4]
        assert page["has_more"] is True
        page = await _list(client, auth, "/v1/webhook-endpoints", limit="5", ending_before=newest_first[2])
        assert [e["id"] for e in page["data"]] == newest_first[:2]
        assert page["has_more"] is False

    async def test_a_cursor_of_another_tenant_or_none_is_422(self, seven, auth) -> None:
        client, _ = seven
        other = await (await _create(client, auth, "ten_b")).json()
        for cursor in (other["id"], "we_doesnotexist"):
            response = await client.get(f"/v1/webhook-endpoints?starting_after={cursor}", headers=auth())
            assert response.status == 422
            problem = await response.json()
            assert (problem["code"], problem["errors"][0]["field"]) == ("validation_error", "starting_after")

    @pytest.mark.parametrize(
        "query",
        [
            "offset=10001",
            "starting_after=we_a&ending_before=we_b",
            "starting_after=we_a&offset=1",
            "ending_before=not%20an%20id",
        ],
    )
    async def test_bad_list_queries_are_422(self, client, auth, query: str) -> None:
        for path in ("/v1/webhook-endpoints", "/v1/webhook-deliveries"):
            response = await client.get(f"{path}?{query}", headers=auth())
            assert response.status == 422, (path, query)

    async def test_the_offset_cap_itself_is_allowed(self, client, auth) -> None:
        page = await _list(client, auth, "/v1/webhook-deliveries", offset="10000")
        assert page["data"] == []

    async def test_deliveries_page_by_cursor_with_a_filter(
        self, start_app, auth, receiver, endpoint_at, publish
    ) -> None:
        client = await start_app(retry_schedule="0")
        hook = await receiver(default=200)
        await endpoint_at(client, hook)
        for _ in range(5):
            await publish()
        async with asyncio.timeout(10):
            while len(rows := await _rows(client, auth, status="succeeded")) < 5:
                await asyncio.sleep(0.05)
        newest_first = [d["id"] for d in rows]
        page = await _list(
            client, auth, "/v1/webhook-deliveries", limit="2", status="succeeded", starting_after=newest_first[1]
        )
        assert [d["id"] for d in page["data"]] == newest_first[2:4]
        assert page["has_more"] is True
        page = await _list(client, auth, "/v1/webhook-deliveries", limit="10", ending_before=newest_first[3])
        assert [d["id"] for d in page["data"]] == newest_first[:3]


class TestReplayInBatches:
    async def test_every_matching_delivery_is_replayed_across_batches(
        self, start_app, auth, receiver, endpoint_at, publish, clean_db
    ) -> None:
        client = await start_app(retry_schedule="0", replay_batch_size=2)
        hook = await receiver(default=500)
        endpoint = await endpoint_at(client, hook)
        for _ in range(7):
            await publish()
        async with asyncio.timeout(10):
            while len(await _rows(client, auth, status="failed")) < 7:
                await asyncio.sleep(0.05)
        # Two of them succeeded meanwhile (as if retried by hand), interleaved with the failed ones.
        ids = sorted(d["id"] for d in await _rows(client, auth))
        async with clean_db.begin() as conn:
            await conn.execute(
                text("UPDATE webhook_deliveries SET status = 'succeeded' WHERE id = ANY(:ids)"),
                {"ids": [ids[1], ids[4]]},
            )
        hook.default = 200

        response = await client.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/replay", json={"since": "2020-01-01T00:00:00Z"}, headers=auth()
        )
        assert response.status == 202
        assert (await response.json())["replayed"] == 5
        async with asyncio.timeout(10):
            while len(await _rows(client, auth, status="succeeded")) < 7:
                await asyncio.sleep(0.05)
        # Only the failed ones got an attempt more: 7 first attempts, 5 replays.
        assert len(hook.hits) == 12

        again = await client.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/replay",
            json={"since": "2020-01-01T00:00:00Z", "status": "all"},
            headers=auth(),
        )
        assert (await again.json())["replayed"] == 7
