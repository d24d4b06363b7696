import asyncio

import pytest
from payments_svc.db.models import Payment
from sqlalchemy import select, update


class TestCreatePayment:
    async def test_created_payment_matches_the_public_contract(self, client, auth, make_body) -> None:
        body = make_body(
            description="Two books",
            customer={"email": "a@b.example", "name": "Ann"},
            metadata={"cart": "42"},
            return_url="https://shop.example/thanks",
        )
        response = await client.post("/v1/payments", json=body, headers=auth(**{"Idempotency-Key": "k1"}))
        assert response.status == 201
        payment = await response.json()
        assert payment["id"].startswith("pay_")
        assert payment["object"] == "payment"
        assert payment["status"] == "CREATED"
        assert (payment["amount"], payment["currency"], payment["amount_refunded"]) == (5000, "USD", 0)
        assert payment["customer"] == {"email": "a@b.example", "name": "Ann", "phone": None}
        assert payment["metadata"] == {"cart": "42"}
        assert payment["checkout_url"] == f"http://127.0.0.1:8080/c/{payment['checkout_token']}"
        assert payment["provider"] is None and payment["failure_code"] is None
        assert payment["created_at"].endswith("Z") and payment["expires_at"] > payment["created_at"]
        assert "Idempotent-Replayed" not in response.headers

    async def test_creation_writes_history_event_log_and_outbox_together(self, client, auth, make_body, count) -> None:
        await client.post("/v1/payments", json=make_body(), headers=auth(**{"Idempotency-Key": "k1"}))
        assert await count("payments") == 1
        assert await count("payment_status_history") == 1
        assert await count("events") == 1
        # The relay may already have published it; either way exactly one event was produced.
        events = await (await client.get("/v1/events", headers=auth())).json()
        assert [e["type"] for e in events["data"]] == ["payment.created"]

    async def test_missing_idempotency_key_is_400_and_writes_nothing(self, client, auth, make_body, count) -> None:
        response = await client.post("/v1/payments", json=make_body(), headers=auth())
        assert response.status == 400
        assert (await response.json())["code"] == "idempotency_key_missing"
        assert await count("payments") == 0

    @pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "ünïcode"])
    async def test_bad_idempotency_key_is_400(self, client, auth, make_body, key) -> None:
        response = await client.post("/v1/payments", json=make_body(), headers=auth(**{"Idempotency-Key": key}))
        assert response.status == 400
        assert (await response.json())["code"] == "idempotency_key_invalid"


class TestIdempotency:
    async def test_retry_replays_the_first_response(self, client, auth, make_body, count) -> None:
        headers = auth(**{"Idempotency-Key": "same"})
        first = await client.post("/v1/payments", json=make_body(), headers=headers)
        second = await client.post("/v1/payments", json=make_body(), headers=headers)
        assert (first.status, second.status) == (201, 201)
        assert await first.json() == await second.json()
        assert second.headers["Idempotent-Replayed"] == "true"
        assert await count("payments") == 1

    async def test_same_key_different_body_is_422(self, client, auth, make_body, count) -> None:
        headers = auth(**{"Idempotency-Key": "same"})
        await client.post("/v1/payments", json=make_body(), headers=headers)
        response = await client.post("/v1/payments", json=make_body(amount=6000), headers=headers)
        assert response.status == 422
        assert (await response.json())["code"] == "idempotency_key_reused"
        assert await count("payments") == 1

    async def test_key_is_scoped_to_the_tenant(self, client, auth, make_body, count) -> None:
        a = await client.post("/v1/payments", json=make_body(), headers=auth("ten_a", **{"Idempotency-Key": "k"}))
        b = await client.post("/v1/payments", json=make_body(), headers=auth("ten_b", **{"Idempotency-Key": "k"}))
        assert (await a.json())["id"] != (await b.json())["id"]
        assert await count("payments") == 2

    async def test_validation_failure_is_not_stored(self, client, auth, make_body, count) -> None:
        headers = auth(**{"Idempotency-Key": "k"})
        bad = await client.post("/v1/payments", json=make_body(amount=1), headers=headers)
        assert bad.status == 422
        assert await count("idempotency_keys") == 0
        good = await client.post("/v1/payments", json=make_body(), headers=headers)
        assert good.status == 201

    async def test_concurrent_identical_requests_create_one_payment(self, client, auth, make_body, count) -> None:
        headers = auth(**{"Idempotency-Key": "race"})
        responses = await asyncio.gather(
            *(client.post("/v1/payments", json=make_body(), headers=headers) for _ in range(20))
        )
        statuses = sorted(r.status for r in responses)
        assert set(statuses) <= {201, 409}
        bodies = [await r.json() for r in responses]
        ids = {b["id"] for b, r in zip(bodies, responses, strict=True) if r.status == 201}
        assert len(ids) == 1
        assert all(
            b["code"] == "idempotency_key_in_use" for b, r in zip(bodies, responses, strict=True) if r.status == 409
        )
        assert await count("payments") == 1

    async def test_create_stores_the_key_completed_with_its_response(self, client, auth, make_body, clean_db) -> None:
        # IDEM-5: the key row is inserted already completed, in the payment's own commit: it is never
        # seen in flight, and its stored response is the one the client got.
        from payments_svc.db.models import IdempotencyKey

        response = await client.post("/v1/payments", json=make_body(), headers=auth(**{"Idempotency-Key": "one"}))
        assert response.status == 201
        async with clean_db.connect() as conn:
            row = (await conn.execute(select(IdempotencyKey.__table__))).one()
        assert (row.key, row.response_status, row.locked_until) == ("one", 201, None)
        assert row.completed_at is not None
        assert __import__("json").loads(row.response_body) == await response.json()

    async def test_concurrent_creates_with_one_key_all_get_the_one_payment(
        self, client, auth, make_body, count
    ) -> None:
        # The losers of the race wait for the winner's commit, then replay it: no 409 for a create.
        headers = auth(**{"Idempotency-Key": "race-all"})
        responses = await asyncio.gather(
            *(client.post("/v1/payments", json=make_body(), headers=headers) for _ in range(12))
        )
        assert [r.status for r in responses] == [201] * 12
        ids = {(await r.json())["id"] for r in responses}
        assert len(ids) == 1
        assert sum("Idempotent-Replayed" not in r.headers for r in responses) == 1
        assert await count("payments") == 1
        assert await count("idempotency_keys") == 1

    async def test_in_flight_key_gets_409_then_a_stale_lock_is_taken_over(
        self, client, auth, make_body, clean_db
    ) -> None:
        from datetime import timedelta

        from billing_contracts.envelope import utcnow
        from payments_svc.db.models import IdempotencyKey

        async with clean_db.begin() as conn:
            await conn.execute(
                IdempotencyKey.__table__.insert().values(
                    tenant_id="ten_a",
                    method="POST",
                    path="/v1/payments",
                    key="held",
                    fingerprint=__import__("hashlib")
                    .sha256(b'{"amount":5000,"currency":"USD","order_id":"order-1"}')
                    .hexdigest(),
                    locked_until=utcnow() + timedelta(seconds=60),
                    created_at=utcnow(),
                )
            )
        headers = auth(**{"Idempotency-Key": "held"})
        busy = await client.post("/v1/payments", json=make_body(), headers=headers)
        assert busy.status == 409
        assert (await busy.json())["code"] == "idempotency_key_in_use"
        async with clean_db.begin() as conn:
            await conn.execute(update(IdempotencyKey.__table__).values(locked_until=utcnow() - timedelta(seconds=1)))
        taken = await client.post("/v1/payments", json=make_body(), headers=headers)
        assert taken.status == 201


class TestGetAndList:
    async def test_get_own_payment(self, client, auth, new_payment) -> None:
        created = await new_payment()
        response = await client.get(f"/v1/payments/{created['id']}", headers=auth())
        assert response.status == 200
        assert await response.json() == created

    async def test_other_tenant_gets_404_everywhere(self, client, auth, new_payment) -> None:
        created = await new_payment("ten_a")
        pid = created["id"]
        for method, path in [
            ("GET", f"/v1/payments/{pid}"),
            ("POST", f"/v1/payments/{pid}/cancel"),
            ("GET", f"/v1/payments/{pid}/history"),
        ]:
            response = await client.request(method, path, headers=auth("ten_b"))
            assert response.status == 404, path
            assert (await response.json())["code"] == "not_found"
        listed = await (await client.get("/v1/payments", headers=auth("ten_b"))).json()
        assert listed["data"] == []
        events_a = await (await client.get("/v1/events", headers=auth("ten_a"))).json()
        foreign = await client.get(f"/v1/events?after={events_a['data'][0]['id']}", headers=auth("ten_b"))
        assert foreign.status == 404
        assert (await (await client.get("/v1/events", headers=auth("ten_b"))).json())["data"] == []

    async def test_list_is_newest_first_and_paginates(self, client, auth, new_payment) -> None:
        ids = [(await new_payment(order_id=f"o-{i}"))["id"] for i in range(5)]
        page = await (await client.get("/v1/payments?limit=2", headers=auth())).json()
        assert [p["id"] for p in page["data"]] == ids[::-1][:2]
        assert page["has_more"] is True and page["limit"] == 2 and page["offset"] == 0
        last = await (await client.get("/v1/payments?limit=2&offset=4", headers=auth())).json()
        assert [p["id"] for p in last["data"]] == [ids[0]]
        assert last["has_more"] is False

    async def test_list_filters(self, client, auth, new_payment) -> None:
        a = await new_payment(order_id="wanted")
        await new_payment(order_id="other")
        by_order = await (await client.get("/v1/payments?order_id=wanted", headers=auth())).json()
        assert [p["id"] for p in by_order["data"]] == [a["id"]]
        by_status = await (await client.get("/v1/payments?status=SUCCEEDED", headers=auth())).json()
        assert by_status["data"] == []

    @pytest.mark.parametrize(
        "query", ["limit=0", "limit=101", "limit=abc", "offset=-1", "status=PAID", "order_id=%00", "limit=1e3"]
    )
    async def test_bad_query_is_422(self, client, auth, query) -> None:
        response = await client.get(f"/v1/payments?{query}", headers=auth())
        assert response.status == 422
        assert (await response.json())["code"] == "validation_error"


class TestCancel:
    async def test_created_payment_is_cancelled(self, client, auth, new_payment) -> None:
        created = await new_payment()
        response = await client.post(f"/v1/payments/{created['id']}/cancel", headers=auth())
        assert response.status == 200
        assert (await response.json())["status"] == "CANCELLED"
        history = await (await client.get(f"/v1/payments/{created['id']}/history", headers=auth())).json()
        assert [(h["from_status"], h["to_status"], h["actor"]) for h in history["data"]] == [
            (None, "CREATED", "tenant"),
            ("CREATED", "CANCELLED", "tenant"),
        ]

    async def test_cancel_twice_is_409(self, client, auth, new_payment) -> None:
        created = await new_payment()
        await client.post(f"/v1/payments/{created['id']}/cancel", headers=auth())
        response = await client.post(f"/v1/payments/{created['id']}/cancel", headers=auth())
        assert response.status == 409
        assert (await response.json())["code"] == "invalid_state"

    async def test_pending_payment_the_provider_holds_is_not_cancelled(
        self, client, auth, new_payment, providers, clean_db
    ) -> None:
        created = await new_payment()
        pay = await client.post(
            f"/v1/checkout/{created['checkout_token']}/pay", json={"provider": "sandbox"}, headers=auth(None, None)
        )
        assert pay.status == 200
        providers.cancellable = False
        response = await client.post(f"/v1/payments/{created['id']}/cancel", headers=auth())
        assert response.status == 409
        async with clean_db.connect() as conn:
            status = (await conn.execute(select(Payment.status).where(Payment.id == created["id"]))).scalar_one()
        assert status == "PROVIDER_PENDING"
