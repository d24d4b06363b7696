import asyncio
from datetime import timedelta

from billing_contracts.envelope import utcnow
from billing_contracts.events import parse_event
from payments_svc.db.models import Payment
from payments_svc.keys import lifecycle_deps_key
from payments_svc.services.lifecycle import ExpiryPass, expire_due, sweep_overdue
from sqlalchemy import select, update


async def _make_overdue(engine, payment_id: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(Payment.__table__)
            .where(Payment.id == payment_id)
            .values(expires_at=utcnow() - timedelta(seconds=1), sweep_at=utcnow() - timedelta(seconds=1))
        )


class TestExpiry:
    async def test_overdue_created_payment_expires_with_an_event(
        self, app, client, auth, new_payment, clean_db
    ) -> None:
        payment = await new_payment()
        fresh = await new_payment(order_id="fresh")
        await _make_overdue(clean_db, payment["id"])
        assert (await expire_due(app[lifecycle_deps_key])).expired == 1
        got = await (await client.get(f"/v1/payments/{payment['id']}", headers=auth())).json()
        assert got["status"] == "EXPIRED"
        assert (await (await client.get(f"/v1/payments/{fresh['id']}", headers=auth())).json())["status"] == "CREATED"
        events = await (await client.get("/v1/events?type=payment.expired", headers=auth())).json()
        assert [e["data"]["payment"]["id"] for e in events["data"]] == [payment["id"]]
        assert (await expire_due(app[lifecycle_deps_key])).expired == 0

    async def test_pending_payment_expires_only_if_the_provider_lets_go(
        self, app, client, auth, new_payment, clean_db, providers
    ) -> None:
        payment = await new_payment()
        await client.post(
            f"/v1/checkout/{payment['checkout_token']}/pay", json={"provider": "sandbox"}, headers=auth(None, None)
        )
        await _make_overdue(clean_db, payment["id"])
        providers.cancellable = False
        assert (await expire_due(app[lifecycle_deps_key])).expired == 0
        providers.cancellable = True
        # Backed off: not asked again until its next attempt is due.
        assert await expire_due(app[lifecycle_deps_key]) == ExpiryPass(claimed=0, expired=0)
        await _make_overdue(clean_db, payment["id"])
        assert (await expire_due(app[lifecycle_deps_key])).expired == 1
        assert providers.cancelled == [payment["id"], payment["id"]]


class TestEventLog:
    async def test_after_cursor_and_type_filter(self, client, auth, new_payment) -> None:
        for i in range(3):
            await new_payment(order_id=f"o{i}")
        everything = await (await client.get("/v1/events?limit=2", headers=auth())).json()
        assert everything["has_more"] is True
        rest = await (await client.get(f"/v1/events?after={everything['data'][-1]['id']}", headers=auth())).json()
        assert len(rest["data"]) == 1 and rest["has_more"] is False
        assert all(e["object"] == "event" for e in everything["data"] + rest["data"])
        none = await (await client.get("/v1/events?type=payment.succeeded", headers=auth())).json()
        assert none["data"] == []

    async def test_bad_cursor_is_422(self, client, auth) -> None:
        response = await client.get("/v1/events?after=pay_123", headers=auth())
        assert response.status == 422


class TestOutboxRelay:
    async def test_relay_publishes_each_event_once_and_empties_the_outbox(
        self, client, auth, new_payment, bus, count
    ) -> None:
        received = []

        async def collect(message) -> None:
            received.append(parse_event(message.body))

        await bus.subscribe("test.collector", ["payments.#"], collect)
        payment = await new_payment()
        for _ in range(500):  # the relay's pass: up to 10 s on a loaded machine
            if received and await count("outbox") == 0:
                break
            await asyncio.sleep(0.02)
        assert [(e.event_type, e.data.payment.id) for e in received] == [("payment.created", payment["id"])]
        assert await count("outbox") == 0
        assert await count("events") == 1


class TestExpiryFairness:
    async def test_payments_a_provider_will_not_release_never_starve_the_ones_behind_them(
        self, app, new_payment, clean_db, providers, client, auth
    ) -> None:
        stuck = [(await new_payment(order_id=f"stuck-{i}"))["id"] for i in range(120)]
        behind = [(await new_payment(order_id=f"behind-{i}"))["id"] for i in range(5)]
        now = utcnow()
        table = Payment.__table__
        async with clean_db.begin() as conn:
            # Overdue the longest, and held by a provider that will not let go.
            for i, payment_id in enumerate(stuck):
                overdue = now - timedelta(hours=1, seconds=-i)
                await conn.execute(
                    update(table)
                    .where(table.c.id == payment_id)
                    .values(
                        status="PROVIDER_PENDING",
                        provider="sandbox",
                        provider_transaction_id=f"ptx_{i}",
                        expires_at=overdue,
                        sweep_at=overdue,
                    )
                )
            await conn.execute(update(table).where(table.c.id.in_(behind)).values(expires_at=now, sweep_at=now))
        providers.cancellable = False
        deps = app[lifecycle_deps_key]

        assert await sweep_overdue(deps) == 5
        for payment_id in behind:
            assert (await (await client.get(f"/v1/payments/{payment_id}", headers=auth())).json())[
                "status"
            ] == "EXPIRED"
        # Every stuck payment was asked once, and is not asked again before its next attempt is due.
        assert sorted(providers.cancelled) == sorted(stuck)
        assert await sweep_overdue(deps) == 0
        assert len(providers.cancelled) == 120
        async with clean_db.connect() as conn:
            rows = (
                await conn.execute(select(table.c.sweep_at, table.c.sweep_attempts).where(table.c.id.in_(stuck)))
            ).all()
        assert all(attempts == 1 and sweep_at > utcnow() for sweep_at, attempts in rows)

    async def test_the_next_attempt_backs_off_further_each_time(self, app, new_payment, clean_db, providers) -> None:
        payment_id = (await new_payment())["id"]
        table = Payment.__table__
        async with clean_db.begin() as conn:
            await conn.execute(
                update(table)
                .where(table.c.id == payment_id)
                .values(status="PROVIDER_PENDING", provider="sandbox", provider_transaction_id="ptx_1")
            )
        providers.cancellable = False
        delays = []
        for _ in range(4):
            await _make_overdue(clean_db, payment_id)
            started = utcnow()
            assert (await expire_due(app[lifecycle_deps_key])).claimed == 1
            async with clean_db.connect() as conn:
                sweep_at = (await conn.execute(select(table.c.sweep_at).where(table.c.id == payment_id))).scalar_one()
            delays.append(round((sweep_at - started).total_seconds() / 30))
        assert delays == [1, 2, 4, 8]
