import asyncio
from datetime import timedelta

from billing_contracts.envelope import utcnow
from payments_svc.db.models import Payment
from sqlalchemy import text, update


async def _expire(engine, payment_id: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(Payment.__table__).where(Payment.id == payment_id).values(expires_at=utcnow() - timedelta(seconds=1))
        )


class TestCheckoutView:
    async def test_public_view_shows_what_the_payer_needs_and_nothing_secret(self, client, auth, new_payment) -> None:
        created = await new_payment(description="<b>Books</b>", return_url="https://shop.example/done")
        response = await client.get(f"/v1/checkout/{created['checkout_token']}", headers=auth(None, None))
        assert response.status == 200
        view = await response.json()
        assert view["amount"] == 5000 and view["currency"] == "USD" and view["currency_exponent"] == 2
        assert view["merchant"] == {"display_name": "Shop A"}
        assert view["description"] == "<b>Books</b>"
        assert [p["name"] for p in view["providers"]] == ["sandbox", "other"]
        text = await response.text()
        assert created["id"] not in text and "ten_a" not in text
        # For the gateway alone, which adds the tenant's allowed origins and drops the header.
        assert response.headers["X-Checkout-Tenant"] == "ten_a"

    async def test_allowed_providers_narrow_the_choice(self, client, auth, new_payment) -> None:
        created = await new_payment(providers=["other"])
        view = await (await client.get(f"/v1/checkout/{created['checkout_token']}", headers=auth(None, None))).json()
        assert [p["name"] for p in view["providers"]] == ["other"]

    async def test_unknown_or_malformed_token_is_404(self, client, auth) -> None:
        for token in ["A" * 32, "short", "bad%20token" + "x" * 20]:
            response = await client.get(f"/v1/checkout/{token}", headers=auth(None, None))
            assert response.status == 404

    async def test_checkout_needs_internal_credentials(self, client, new_payment) -> None:
        created = await new_payment()
        response = await client.get(f"/v1/checkout/{created['checkout_token']}")
        assert response.status == 401


class TestPay:
    async def test_pay_moves_to_provider_pending_and_returns_redirect(
        self, client, auth, new_payment, providers
    ) -> None:
        created = await new_payment()
        token = created["checkout_token"]
        response = await client.post(
            f"/v1/checkout/{token}/pay", json={"provider": "sandbox"}, headers=auth(None, None)
        )
        assert response.status == 200
        redirect = (await response.json())["redirect_url"]
        assert redirect.startswith("http://127.0.0.1:9/sandbox/")
        tenant, start = providers.started[0]
        assert tenant == "ten_a" and start.amount == 5000 and start.currency == "USD"
        assert start.return_url == f"http://127.0.0.1:8080/c/{token}/return"
        payment = await (await client.get(f"/v1/payments/{created['id']}", headers=auth())).json()
        assert payment["status"] == "PROVIDER_PENDING" and payment["provider"] == "sandbox"
        events = await (await client.get("/v1/events", headers=auth())).json()
        assert [e["type"] for e in events["data"]] == ["payment.created", "payment.pending"]

    async def test_paying_again_with_the_same_provider_resumes(self, client, auth, new_payment) -> None:
        token = (await new_payment())["checkout_token"]
        first = await client.post(f"/v1/checkout/{token}/pay", json={"provider": "sandbox"}, headers=auth(None, None))
        again = await client.post(f"/v1/checkout/{token}/pay", json={"provider": "sandbox"}, headers=auth(None, None))
        assert (first.status, again.status) == (200, 200)
        events = await (await client.get("/v1/events", headers=auth())).json()
        assert [e["type"] for e in events["data"]].count("payment.pending") == 1

    async def test_concurrent_clicks_start_one_attempt(self, client, auth, new_payment, clean_db) -> None:
        # The click's write is one statement guarded by "the payment is as read": of ten clicks read
        # while CREATED, one starts the attempt; the others find it started and resume it.
        created = await new_payment()
        token = created["checkout_token"]
        answers = await asyncio.gather(
            *(
                client.post(f"/v1/checkout/{token}/pay", json={"provider": "sandbox"}, headers=auth(None, None))
                for _ in range(10)
            )
        )
        assert [a.status for a in answers] == [200] * 10
        async with clean_db.connect() as conn:
            attempts = (await conn.execute(text("select count(*) from payment_attempts"))).scalar_one()
            history = (await conn.execute(text("select count(*) from payment_status_history"))).scalar_one()
        assert (attempts, history) == (1, 2)
        events = await (await client.get("/v1/events", headers=auth())).json()
        assert [e["type"] for e in events["data"]].count("payment.pending") == 1
        payment = await (await client.get(f"/v1/payments/{created['id']}", headers=auth())).json()
        assert (payment["status"], payment["attempt_count"], payment["sequence"]) == ("PROVIDER_PENDING", 1, 2)

    async def test_concurrent_clicks_for_two_providers_start_one(self, client, auth, new_payment, clean_db) -> None:
        created = await new_payment()
        token = created["checkout_token"]
        answers = await asyncio.gather(
            *(
                client.post(f"/v1/checkout/{token}/pay", json={"provider": name}, headers=auth(None, None))
                for name in ("sandbox", "other") * 4
            )
        )
        # Each click either started or resumed an attempt, switched to its provider (the fake lets every
        # attempt be voided), or was refused; whatever the order, one attempt is left pending, the
        # payment's own, and the payment counts every attempt.
        assert {a.status for a in answers} <= {200, 409}
        payment = await (await client.get(f"/v1/payments/{created['id']}", headers=auth())).json()
        async with clean_db.connect() as conn:
            rows = (
                await conn.execute(text("select provider, provider_transaction_id, status from payment_attempts"))
            ).all()
        pending = [r for r in rows if r.status == "pending"]
        assert len(pending) == 1, rows
        assert payment["status"] == "PROVIDER_PENDING" and payment["provider"] == pending[0].provider
        assert payment["attempt_count"] == len(rows)

    async def test_switching_provider_the_void_refuses_is_409(self, client, auth, new_payment, providers) -> None:
        token = (await new_payment())["checkout_token"]
        providers.voidable = False  # the first provider took (or is taking) the money
        await client.post(f"/v1/checkout/{token}/pay", json={"provider": "sandbox"}, headers=auth(None, None))
        response = await client.post(f"/v1/checkout/{token}/pay", json={"provider": "other"}, headers=auth(None, None))
        assert response.status == 409
        assert (await response.json())["code"] == "invalid_state"

    async def test_provider_not_allowed_is_422(self, client, auth, new_payment) -> None:
        token = (await new_payment(providers=["other"]))["checkout_token"]
        response = await client.post(
            f"/v1/checkout/{token}/pay", json={"provider": "sandbox"}, headers=auth(None, None)
        )
        assert response.status == 422
        assert (await response.json())["code"] == "provider_not_allowed"

    async def test_expired_payment_cannot_be_paid(self, client, auth, new_payment, clean_db, providers) -> None:
        created = await new_payment()
        await _expire(clean_db, created["id"])
        response = await client.post(
            f"/v1/checkout/{created['checkout_token']}/pay", json={"provider": "sandbox"}, headers=auth(None, None)
        )
        assert response.status == 409
        assert providers.started == []

    async def test_cancelled_payment_cannot_be_paid(self, client, auth, new_payment) -> None:
        created = await new_payment()
        await client.post(f"/v1/payments/{created['id']}/cancel", headers=auth())
        response = await client.post(
            f"/v1/checkout/{created['checkout_token']}/pay", json={"provider": "sandbox"}, headers=auth(None, None)
        )
        assert response.status == 409

    async def test_provider_service_down_is_503_and_nothing_changes(self, client, auth, new_payment, providers) -> None:
        created = await new_payment()
        providers.unavailable = True
        response = await client.post(
            f"/v1/checkout/{created['checkout_token']}/pay", json={"provider": "sandbox"}, headers=auth(None, None)
        )
        assert response.status == 503
        assert response.headers["Retry-After"]
        payment = await (await client.get(f"/v1/payments/{created['id']}", headers=auth())).json()
        assert payment["status"] == "CREATED"

    async def test_bad_pay_bodies(self, client, auth, new_payment) -> None:
        token = (await new_payment())["checkout_token"]
        for body, status in [({}, 422), ({"provider": 1}, 422), ({"provider": "sandbox", "x": 1}, 422)]:
            response = await client.post(f"/v1/checkout/{token}/pay", json=body, headers=auth(None, None))
            assert response.status == status, body
        raw = await client.post(
            f"/v1/checkout/{token}/pay", data="{", headers=auth(None, None, **{"Content-Type": "application/json"})
        )
        assert raw.status == 400
