"""``GET /v1/payments`` pages by Stripe's cursors, stably even when payments share a creation time,
and never scans without bound (offset capped)."""

from __future__ import annotations

from billing_contracts.envelope import utcnow
from payments_svc.db.models import Payment
from sqlalchemy import update


async def _list(client, auth, query: str = "", tenant: str = "ten_a"):  # type: ignore[no-untyped-def]
    response = await client.get(f"/v1/payments?{query}", headers=auth(tenant))
    return response.status, await response.json()


class TestCursors:
    async def test_starting_after_and_ending_before_walk_every_payment_once_under_equal_times(
        self, client, auth, new_payment, clean_db
    ) -> None:
        ids = [(await new_payment(order_id=f"o{i}"))["id"] for i in range(7)]
        async with clean_db.begin() as conn:
            # Four of them created in the same microsecond: only the id breaks the tie.
            same = utcnow()
            await conn.execute(update(Payment.__table__).where(Payment.id.in_(ids[1:5])).values(created_at=same))
        _, everything = await _list(client, auth, "limit=100")
        order = [p["id"] for p in everything["data"]]
        assert sorted(order) == sorted(ids)

        forward, cursor = [], None
        while True:
            _, page = await _list(client, auth, "limit=2" + (f"&starting_after={cursor}" if cursor else ""))
            forward += [p["id"] for p in page["data"]]
            if not page["has_more"]:
                break
            cursor = page["data"][-1]["id"]
        assert forward == order

        backward, cursor = [], order[-1]
        while True:
            _, page = await _list(client, auth, f"limit=2&ending_before={cursor}")
            backward = [p["id"] for p in page["data"]] + backward
            if not page["has_more"]:
                break
            cursor = page["data"][0]["id"]
        assert backward == order[:-1]

    async def test_cursors_respect_the_filters(self, client, auth, new_payment) -> None:
        a = await new_payment(order_id="same")
        await new_payment(order_id="other")
        b = await new_payment(order_id="same")
        _, page = await _list(client, auth, f"order_id=same&starting_after={b['id']}")
        assert [p["id"] for p in page["data"]] == [a["id"]] and page["has_more"] is False

    async def test_a_cursor_of_another_tenant_reads_as_unknown(self, client, auth, new_payment) -> None:
        theirs = await new_payment(tenant="ten_b")
        status, body = await _list(client, auth, f"starting_after={theirs['id']}")
        assert (status, body["code"], body["errors"][0]["field"]) == (422, "validation_error", "starting_after")
        unknown = "pay_" + "0" * 26
        assert (await _list(client, auth, f"ending_before={unknown}"))[1]["errors"] == [
            {"field": "ending_before", "message": "no such object"}
        ]

    async def test_bad_cursor_combinations_are_422(self, client, auth, new_payment) -> None:
        p = await new_payment()
        for query in (
            "starting_after=nope",
            f"starting_after={p['id']}&ending_before={p['id']}",
            f"starting_after={p['id']}&offset=5",
        ):
            status, body = await _list(client, auth, query)
            assert (status, body["code"]) == (422, "validation_error"), query


class TestOffsetCap:
    async def test_offset_up_to_ten_thousand_is_served(self, client, auth, new_payment) -> None:
        await new_payment()
        status, body = await _list(client, auth, "offset=10000")
        assert (status, body["data"]) == (200, [])

    async def test_offset_beyond_ten_thousand_is_422(self, client, auth) -> None:
        status, body = await _list(client, auth, "offset=10001")
        assert (status, body["code"]) == (422, "validation_error")
