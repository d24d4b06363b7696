"""The event log's cursor on real PostgreSQL: a poller paging with ``after`` from the last id it saw
never misses an event, whatever order concurrent writers commit in (API.md)."""

from __future__ import annotations

import asyncio
from typing import Any

from billing_contracts.envelope import new_event_id, utcnow
from payments_svc.db.models import TenantEvent
from payments_svc.keys import lifecycle_deps_key
from payments_svc.services.event_log import place_committed_events
from sqlalchemy import select


def _event_row(tenant: str = "ten_a") -> dict[str, Any]:
    return {
        "id": new_event_id(),
        "tenant_id": tenant,
        "type": "payment.created",
        "data": {"payment": {"id": "pay_x"}},
        "created_at": utcnow(),
        "livemode": False,
    }


async def _page(client, auth, after: str | None = None) -> list[str]:  # type: ignore[no-untyped-def]
    url = "/v1/events?limit=100" + (f"&after={after}" if after else "")
    response = await client.get(url, headers=auth())
    assert response.status == 200, await response.text()
    return [e["id"] for e in (await response.json())["data"]]


class TestCommitOrder:
    async def test_an_event_committed_after_a_later_one_is_still_paged_to(self, client, auth, clean_db) -> None:
        table = TenantEvent.__table__
        first, second = _event_row(), _event_row()
        async with clean_db.connect() as a, clean_db.connect() as b:
            await a.begin()
            await b.begin()
            seq_a = (await a.execute(table.insert().values(first).returning(table.c.seq))).scalar_one()
            seq_b = (await b.execute(table.insert().values(second).returning(table.c.seq))).scalar_one()
            assert seq_a < seq_b  # A took the lower id ...
            await b.commit()  # ... but B commits first.

            seen = await _page(client, auth)
            assert seen == [second["id"]]

            await a.commit()
        # Paging on from the last id seen finds A: it was placed after B, as it committed after B.
        assert await _page(client, auth, after=seen[-1]) == [first["id"]]
        assert await _page(client, auth) == [second["id"], first["id"]]

    async def test_positions_follow_the_emit_order_of_one_transaction(self, client, auth, clean_db) -> None:
        rows = [_event_row() for _ in range(5)]
        async with clean_db.begin() as conn:
            await conn.execute(TenantEvent.__table__.insert(), rows)
        assert await _page(client, auth) == [r["id"] for r in rows]

    async def test_the_worker_places_events_nobody_read(self, app, clean_db, new_payment) -> None:
        await new_payment()
        await new_payment(order_id="o2")
        positions: list[int | None] = []
        for _ in range(100):  # the worker's loop runs every event_log_interval (1 s)
            async with clean_db.connect() as conn:
                stmt = select(TenantEvent.position).order_by(TenantEvent.seq)
                positions = list((await conn.execute(stmt)).scalars())
            if None not in positions:
                break
            await asyncio.sleep(0.05)
        assert len(positions) == 2 and None not in positions
        assert positions == sorted(positions)
        assert await place_committed_events(app[lifecycle_deps_key].uow) == 0

    async def test_a_poller_misses_nothing_while_many_payments_are_created_concurrently(
        self, client, auth, new_payment
    ) -> None:
        created: list[str] = []
        seen: list[str] = []
        done = asyncio.Event()

        async def writer(i: int) -> None:
            created.append((await new_payment(order_id=f"o{i}"))["id"])

        async def poller() -> None:
            last: str | None = None
            while True:
                finished = done.is_set()
                response = await client.get("/v1/events?limit=100" + (f"&after={last}" if last else ""), headers=auth())
                page = (await response.json())["data"]
                seen.extend(e["data"]["payment"]["id"] for e in page)
                if page:
                    last = page[-1]["id"]
                elif finished:
                    return
                await asyncio.sleep(0)

        polling = asyncio.create_task(poller())
        await asyncio.gather(*(writer(i) for i in range(150)))
        done.set()
        await polling
        assert len(seen) == len(set(seen)) == 150
        assert set(seen) == set(created)
