"""``GET /v1/events?payment_id=`` (an extension beyond API.md): one payment's events in log order, its
status history, with the refund events that carry it; another tenant's payment shows nothing."""

from typing import Any


async def _events(client, auth, query: str, tenant: str = "ten_a") -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = await client.get(f"/v1/events?{query}", headers=auth(tenant))
    assert response.status == 200, await response.text()
    return await response.json()  # type: ignore[no-any-return]


class TestEventsOfOnePayment:
    async def test_lists_only_that_payments_events_in_order(
        self, client, auth, paid_payment, new_payment, refund
    ) -> None:
        paid = await paid_payment()
        other = await new_payment()
        assert (await refund(paid, {"amount": 100})).status == 201

        page = await _events(client, auth, f"payment_id={paid['id']}")

        types = [e["type"] for e in page["data"]]
        assert types == ["payment.created", "payment.pending", "payment.succeeded", "refund.created"]
        assert all(e["data"]["payment"]["id"] == paid["id"] for e in page["data"])
        assert [e["type"] for e in (await _events(client, auth, f"payment_id={other['id']}"))["data"]] == [
            "payment.created"
        ]

    async def test_pages_with_after_and_type(self, client, auth, paid_payment) -> None:
        paid = await paid_payment()
        first = await _events(client, auth, f"payment_id={paid['id']}&limit=1")
        assert first["has_more"] is True
        rest = await _events(client, auth, f"payment_id={paid['id']}&after={first['data'][0]['id']}")
        assert [e["type"] for e in rest["data"]] == ["payment.pending", "payment.succeeded"]
        only = await _events(client, auth, f"payment_id={paid['id']}&type=payment.succeeded")
        assert [e["type"] for e in only["data"]] == ["payment.succeeded"]

    async def test_another_tenants_payment_shows_nothing(self, client, auth, new_payment) -> None:
        theirs = await new_payment("ten_b")
        assert (await _events(client, auth, f"payment_id={theirs['id']}"))["data"] == []

    async def test_malformed_payment_id_is_422(self, client, auth) -> None:
        response = await client.get("/v1/events?payment_id=nope'--", headers=auth())
        assert response.status == 422
        body = await response.json()
        assert body["code"] == "validation_error"
