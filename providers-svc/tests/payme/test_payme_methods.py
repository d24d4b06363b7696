"""``POST /billing/payme`` method by method on real PostgreSQL (PROTOCOLS.md §2.2-§2.5): every answer and
error code, byte-identical repeats of Create/Perform/Cancel, the 12-hour timeout, what each move does to
our provider transaction and its events."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from providers_svc.protocols.payme.states import TIMEOUT_MS

pytestmark = pytest.mark.postgres

AMOUNT = 500_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def ptx_status(db_read: Any, ptx: str) -> str:
    return next(t["status"] for t in await db_read("transactions") if t["id"] == ptx)


async def succeeded_events(db_read: Any) -> list[Any]:
    return [json.loads(r["body"]) for r in await db_read("outbox") if r["routing_key"].endswith("payment.succeeded.v1")]


class TestCheckPerformTransaction:
    async def test_a_payable_order_is_allowed(self, new_shop: Any) -> None:
        shop = await new_shop()
        started = await shop.start()
        result = await shop.payme.result(
            "CheckPerformTransaction", amount=AMOUNT, account={"order_id": started["payment_id"]}
        )
        assert result == {"allow": True}

    @pytest.mark.parametrize(
        ("case", "code"),
        [
            ("wrong_amount", -31001),
            ("unknown_order", -31050),
            ("another_accounts_order", -31050),
            ("cancelled", -31051),
            ("expired", -31051),
            ("awaiting_payment", -31052),
            ("paid", -31051),
        ],
    )
    async def test_refusals(
        self, new_shop: Any, internal_headers: Any, new_payme_id: Any, case: str, code: int
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        order, amount = started["payment_id"], AMOUNT
        if case == "wrong_amount":
            amount = AMOUNT + 100
        elif case == "unknown_order":
            order = "pay_nobody"
        elif case == "another_accounts_order":
            other = await new_shop(client=shop.client, tenant="ten_bbbbbbbbbbbbbbbb")
            order = (await other.start())["payment_id"]
        elif case == "cancelled":
            response = await shop.client.post(
                f"/internal/payments/{order}/cancel", headers=internal_headers(shop.tenant_id)
            )
            assert response.status == 200
        elif case == "expired":
            order = (await shop.start(expires_at="2020-01-01T00:00:00+00:00"))["payment_id"]
        elif case == "awaiting_payment":
            assert "result" in await shop.payme.create(order)
        elif case == "paid":
            id_ = new_payme_id()
            await shop.payme.create(order, id_=id_)
            await shop.payme.result("PerformTransaction", id=id_)
        error = await shop.payme.error("CheckPerformTransaction", amount=amount, account={"order_id": order})
        assert error["code"] == code
        assert set(error["message"]) == {"ru", "uz", "en"}
        if code <= -31050:
            assert error["data"] == "order_id"

    async def test_the_accounts_own_field_carries_the_order(self, new_shop: Any) -> None:
        shop = await new_shop(account_field="pay_id")
        started = await shop.start()
        allowed = await shop.payme.result(
            "CheckPerformTransaction", amount=AMOUNT, account={"pay_id": started["payment_id"]}
        )
        assert allowed == {"allow": True}
        error = await shop.payme.error(
            "CheckPerformTransaction", amount=AMOUNT, account={"order_id": started["payment_id"]}
        )
        assert (error["code"], error["data"]) == (-31050, "pay_id")

    async def test_a_live_order_is_unknown_to_a_test_account(
        self, new_shop: Any, payme_client: Any, engine: Any
    ) -> None:
        # A test account whose key matches a live transaction's binding cannot exist through the API; make the
        # transaction live by hand to see the guard itself hold.
        shop = await new_shop()
        started = await shop.start()
        async with engine.begin() as conn:
            await conn.exec_driver_sql(
                "UPDATE provider_transactions SET livemode = true WHERE id = $1", (started["provider_transaction_id"],)
            )
        error = await shop.payme.error(
            "CheckPerformTransaction", amount=AMOUNT, account={"order_id": started["payment_id"]}
        )
        assert error["code"] == -31050
        assert "result" not in await shop.payme.create(started["payment_id"])


class TestCreateTransaction:
    async def test_creates_once_and_repeats_byte_identically(
        self, new_shop: Any, new_payme_id: Any, tables: Any, db_read: Any
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        params = {
            "id": new_payme_id(),
            "time": now_ms(),
            "amount": AMOUNT,
            "account": {"order_id": started["payment_id"]},
        }
        body = json.dumps({"jsonrpc": "2.0", "id": 3, "method": "CreateTransaction", "params": params})
        first = await shop.payme.raw(body)
        await asyncio.sleep(0.01)
        again = await shop.payme.raw(body)
        assert json.loads(first)["result"]["state"] == 1
        assert first == again
        rows = await tables.payme()
        assert len(rows) == 1
        row = rows[0]
        assert json.loads(first)["result"] == {"create_time": row["create_time"], "transaction": row["id"], "state": 1}
        assert (row["payment_id"], row["provider_transaction_id"], row["account_id"]) == (
            started["payment_id"],
            started["provider_transaction_id"],
            shop.account_id,
        )
        assert (row["amount"], row["time"], row["state"]) == (AMOUNT, params["time"], 1)
        # Reserved for Payme, not paid: our transaction waits.
        assert await ptx_status(db_read, started["provider_transaction_id"]) == "pending"
        assert await succeeded_events(db_read) == []

    async def test_a_second_transaction_for_an_order_awaiting_payment_is_refused(
        self, new_shop: Any, tables: Any
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        assert "result" in await shop.payme.create(started["payment_id"])
        error = (await shop.payme.create(started["payment_id"]))["error"]
        assert error["code"] == -31008
        assert len(await tables.payme()) == 1

    @pytest.mark.parametrize(
        ("change", "code"),
        [({"amount": AMOUNT - 1}, -31001), ({"account": {"order_id": "pay_unknown"}}, -31050)],
    )
    async def test_order_errors(self, new_shop: Any, tables: Any, change: dict[str, Any], code: int) -> None:
        shop = await new_shop()
        started = await shop.start()
        assert (await shop.payme.create(started["payment_id"], **change))["error"]["code"] == code
        assert await tables.payme() == []

    async def test_payme_time_older_than_12_hours_is_refused_and_nothing_stored(
        self, new_shop: Any, tables: Any
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        stale = now_ms() - TIMEOUT_MS - 1000
        assert (await shop.payme.create(started["payment_id"], time=stale))["error"]["code"] == -31008
        assert await tables.payme() == []

    async def test_another_attempt_after_a_cancel_is_allowed(self, new_shop: Any, new_payme_id: Any) -> None:
        shop = await new_shop()
        started = await shop.start()
        first = new_payme_id()
        await shop.payme.create(started["payment_id"], id_=first)
        cancelled = await shop.payme.result("CancelTransaction", id=first, reason=3)
        assert cancelled["state"] == -1
        second = new_payme_id()
        created = await shop.payme.create(started["payment_id"], id_=second)
        assert created["result"]["state"] == 1
        assert (await shop.payme.result("PerformTransaction", id=second))["state"] == 2


class TestPerformTransaction:
    async def test_pays_once_and_repeats_byte_identically(
        self, new_shop: Any, new_payme_id: Any, db_read: Any, tables: Any
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        id_ = new_payme_id()
        await shop.payme.create(started["payment_id"], id_=id_)
        first = await shop.payme.raw(json.dumps({"id": 7, "method": "PerformTransaction", "params": {"id": id_}}))
        await asyncio.sleep(0.01)
        again = await shop.payme.raw(json.dumps({"id": 7, "method": "PerformTransaction", "params": {"id": id_}}))
        assert first == again
        row = (await tables.payme())[0]
        assert json.loads(first)["result"] == {
            "transaction": row["id"],
            "perform_time": row["perform_time"],
            "state": 2,
        }
        assert row["perform_time"] >= row["create_time"]
        ptx = started["provider_transaction_id"]
        assert await ptx_status(db_read, ptx) == "succeeded"
        transaction = next(t for t in await db_read("transactions") if t["id"] == ptx)
        assert transaction["provider_reference"] == id_
        events = await succeeded_events(db_read)
        assert len(events) == 1
        data = events[0]["data"]
        assert (data["provider_transaction_id"], data["provider_reference"], data["amount"]) == (ptx, id_, AMOUNT)
        recorded = [e for e in await db_read("events") if e["provider"] == "payme"]
        assert [(e["external_id"], e["result"], e["transaction_id"]) for e in recorded] == [
            (f"{id_}:perform", "applied", ptx)
        ]

    async def test_unknown_and_another_accounts_transaction_are_not_found(
        self, new_shop: Any, new_payme_id: Any
    ) -> None:
        shop = await new_shop()
        other = await new_shop(client=shop.client, tenant="ten_bbbbbbbbbbbbbbbb")
        started = await other.start()
        id_ = new_payme_id()
        await other.payme.create(started["payment_id"], id_=id_)
        assert (await shop.payme.error("PerformTransaction", id=id_))["code"] == -31003
        assert (await shop.payme.error("PerformTransaction", id=new_payme_id()))["code"] == -31003
        assert (await shop.payme.error("CancelTransaction", id=id_, reason=3))["code"] == -31003
        assert (await shop.payme.error("CheckTransaction", id=id_))["code"] == -31003
        # And its id cannot be taken over by a Create of this account.
        own = await shop.start()
        assert (await shop.payme.create(own["payment_id"], id_=id_))["error"]["code"] == -31008

    async def test_a_payment_cancelled_meanwhile_is_not_performed(
        self, new_shop: Any, new_payme_id: Any, internal_headers: Any, db_read: Any, tables: Any
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        id_ = new_payme_id()
        await shop.payme.create(started["payment_id"], id_=id_)
        # Our side cancels: Payme's transaction is only created, so the adapter lets it go.
        response = await shop.client.post(
            f"/internal/payments/{started['payment_id']}/cancel", headers=internal_headers(shop.tenant_id)
        )
        assert response.status == 200
        assert (await shop.payme.error("PerformTransaction", id=id_))["code"] == -31008
        assert await ptx_status(db_read, started["provider_transaction_id"]) == "cancelled"
        assert (await tables.payme())[0]["state"] == 1
        assert (await shop.payme.result("CancelTransaction", id=id_, reason=3))["state"] == -1
        assert await succeeded_events(db_read) == []

    async def test_a_cancelled_transaction_is_not_performed(self, new_shop: Any, new_payme_id: Any) -> None:
        shop = await new_shop()
        started = await shop.start()
        id_ = new_payme_id()
        await shop.payme.create(started["payment_id"], id_=id_)
        await shop.payme.result("CancelTransaction", id=id_, reason=2)
        assert (await shop.payme.error("PerformTransaction", id=id_))["code"] == -31008


class TestCancelTransaction:
    async def test_cancel_of_a_created_transaction_releases_the_order(
        self, new_shop: Any, new_payme_id: Any, db_read: Any, tables: Any
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        id_ = new_payme_id()
        await shop.payme.create(started["payment_id"], id_=id_)
        body = json.dumps({"id": 9, "method": "CancelTransaction", "params": {"id": id_, "reason": 2}})
        first = await shop.payme.raw(body)
        await asyncio.sleep(0.01)
        again = await shop.payme.raw(body.replace('"reason": 2', '"reason": 10'))
        assert first == again
        row = (await tables.payme())[0]
        assert json.loads(first)["result"] == {"transaction": row["id"], "cancel_time": row["cancel_time"], "state": -1}
        assert (row["state"], row["reason"], row["perform_time"]) == (-1, 2, 0)
        # The payment goes back to payable: our transaction stays pending, nothing is published.
        assert await ptx_status(db_read, started["provider_transaction_id"]) == "pending"
        assert await db_read("outbox") == []
        assert await tables.reversals() == []
        allowed = await shop.payme.result(
            "CheckPerformTransaction", amount=AMOUNT, account={"order_id": started["payment_id"]}
        )
        assert allowed == {"allow": True}

    async def test_cancel_after_perform_records_a_reversal(
        self, new_shop: Any, new_payme_id: Any, db_read: Any, tables: Any, internal_headers: Any
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        id_ = new_payme_id()
        await shop.payme.create(started["payment_id"], id_=id_)
        await shop.payme.result("PerformTransaction", id=id_)
        first = await shop.payme.result("CancelTransaction", id=id_, reason=5)
        again = await shop.payme.result("CancelTransaction", id=id_, reason=5)
        assert first == again
        assert first["state"] == -2
        row = (await tables.payme())[0]
        assert (row["state"], row["reason"]) == (-2, 5)
        reversals = await tables.reversals()
        assert len(reversals) == 1
        reversal = reversals[0]
        assert (reversal["payme_id"], reversal["payment_id"], reversal["amount"], reversal["currency"]) == (
            id_,
            started["payment_id"],
            AMOUNT,
            "UZS",
        )
        assert (reversal["tenant_id"], reversal["reason"], reversal["cancel_time"]) == (
            shop.tenant_id,
            5,
            row["cancel_time"],
        )
        # The payment stays paid (the reversal waits for refunds); it cannot be paid again.
        assert await ptx_status(db_read, started["provider_transaction_id"]) == "succeeded"
        assert (await shop.payme.create(started["payment_id"]))["error"]["code"] == -31051
        assert (await shop.payme.error("PerformTransaction", id=id_))["code"] == -31008

    async def test_a_performed_transaction_of_an_account_that_refuses_is_not_cancelled(
        self, new_shop: Any, new_payme_id: Any, tables: Any
    ) -> None:
        shop = await new_shop(cancel_after_perform="refuse")
        started = await shop.start()
        id_ = new_payme_id()
        await shop.payme.create(started["payment_id"], id_=id_)
        await shop.payme.result("PerformTransaction", id=id_)
        assert (await shop.payme.error("CancelTransaction", id=id_, reason=5))["code"] == -31007
        assert (await tables.payme())[0]["state"] == 2
        assert await tables.reversals() == []
        # A created one still cancels.
        other = await shop.start()
        created = new_payme_id()
        await shop.payme.create(other["payment_id"], id_=created)
        assert (await shop.payme.result("CancelTransaction", id=created, reason=3))["state"] == -1


class TestTimeout:
    async def test_a_transaction_past_12_hours_is_cancelled_with_reason_4_and_answered_31008(
        self, new_shop: Any, new_payme_id: Any, tables: Any, db_read: Any
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        id_ = new_payme_id()
        # Payme's clock: created 12 hours ago less 300 ms, so it expires while we wait.
        created = await shop.payme.create(started["payment_id"], id_=id_, time=now_ms() - TIMEOUT_MS + 300)
        assert created["result"]["state"] == 1
        await asyncio.sleep(0.4)
        assert (await shop.payme.error("PerformTransaction", id=id_))["code"] == -31008
        row = (await tables.payme())[0]
        assert (row["state"], row["reason"], row["perform_time"]) == (-1, 4, 0)
        assert row["cancel_time"] > 0
        checked = await shop.payme.result("CheckTransaction", id=id_)
        assert (checked["state"], checked["reason"], checked["cancel_time"]) == (-1, 4, row["cancel_time"])
        # Every later call is answered from the stored cancel, never re-decided.
        assert (await shop.payme.create(started["payment_id"], id_=id_))["error"]["code"] == -31008
        assert (await shop.payme.result("CancelTransaction", id=id_, reason=3))["cancel_time"] == row["cancel_time"]
        assert await ptx_status(db_read, started["provider_transaction_id"]) == "pending"
        assert await succeeded_events(db_read) == []

    async def test_a_repeated_create_past_12_hours_cancels_too(
        self, new_shop: Any, new_payme_id: Any, tables: Any
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        id_ = new_payme_id()
        time_ = now_ms() - TIMEOUT_MS + 300
        await shop.payme.create(started["payment_id"], id_=id_, time=time_)
        await asyncio.sleep(0.4)
        assert (await shop.payme.create(started["payment_id"], id_=id_, time=time_))["error"]["code"] == -31008
        row = (await tables.payme())[0]
        assert (row["state"], row["reason"]) == (-1, 4)


class TestTimeoutOnTheOrder:
    """A created transaction past its 12 hours that Payme never calls about again no longer holds the
    order: CheckPerform and a Create with a new id for the order cancel it with reason 4 (stored, as
    when Payme calls about it) and are decided as for a free order."""

    async def expired(self, shop: Any, payment_id: str, id_: str) -> None:
        # Payme's clock: created 12 hours ago less 300 ms, so it expires while we wait.
        created = await shop.payme.create(payment_id, id_=id_, time=now_ms() - TIMEOUT_MS + 300)
        assert created["result"]["state"] == 1
        await asyncio.sleep(0.4)

    async def test_a_create_with_a_new_id_cancels_it_and_is_created(
        self, new_shop: Any, new_payme_id: Any, tables: Any, db_read: Any
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        old, new = new_payme_id(), new_payme_id()
        await self.expired(shop, started["payment_id"], old)
        params = {"id": new, "time": now_ms(), "amount": AMOUNT, "account": {"order_id": started["payment_id"]}}
        body = json.dumps({"jsonrpc": "2.0", "id": 4, "method": "CreateTransaction", "params": params})
        created = await shop.payme.raw(body)
        assert json.loads(created)["result"]["state"] == 1
        rows = {r["payme_id"]: r for r in await tables.payme()}
        assert (rows[old]["state"], rows[old]["reason"], rows[old]["perform_time"]) == (-1, 4, 0)
        cancel_time = rows[old]["cancel_time"]
        assert cancel_time > rows[old]["create_time"]
        assert (rows[new]["state"], rows[new]["reason"]) == (1, None)
        check = json.dumps({"jsonrpc": "2.0", "id": 5, "method": "CheckTransaction", "params": {"id": old}})
        checked = await shop.payme.raw(check)
        assert json.loads(checked)["result"] == {
            "create_time": rows[old]["create_time"],
            "perform_time": 0,
            "cancel_time": cancel_time,
            "transaction": rows[old]["id"],
            "state": -1,
            "reason": 4,
        }
        # Every later answer about either comes from what was stored.
        await asyncio.sleep(0.01)
        assert await shop.payme.raw(check) == checked
        assert await shop.payme.raw(body) == created
        assert (await shop.payme.result("CancelTransaction", id=old, reason=3))["cancel_time"] == cancel_time
        assert (await shop.payme.error("PerformTransaction", id=old))["code"] == -31008
        assert (await shop.payme.create(started["payment_id"], id_=old))["error"]["code"] == -31008
        assert (await tables.payme())[0]["cancel_time"] == cancel_time
        # As the timeout does on Perform: our transaction waits, nothing is published; the new one pays.
        assert await ptx_status(db_read, started["provider_transaction_id"]) == "pending"
        assert await db_read("outbox") == []
        assert (await shop.payme.result("PerformTransaction", id=new))["state"] == 2
        assert await ptx_status(db_read, started["provider_transaction_id"]) == "succeeded"
        assert [e["data"]["provider_reference"] for e in await succeeded_events(db_read)] == [new]

    async def test_check_perform_cancels_it_and_allows(self, new_shop: Any, new_payme_id: Any, tables: Any) -> None:
        shop = await new_shop()
        started = await shop.start()
        old = new_payme_id()
        await self.expired(shop, started["payment_id"], old)
        account = {"order_id": started["payment_id"]}
        assert await shop.payme.result("CheckPerformTransaction", amount=AMOUNT, account=account) == {"allow": True}
        row = (await tables.payme())[0]
        assert (row["state"], row["reason"]) == (-1, 4)
        checked = await shop.payme.result("CheckTransaction", id=old)
        assert (checked["state"], checked["reason"], checked["cancel_time"]) == (-1, 4, row["cancel_time"])
        assert await shop.payme.result("CheckPerformTransaction", amount=AMOUNT, account=account) == {"allow": True}
        assert (await tables.payme())[0]["cancel_time"] == row["cancel_time"]

    async def test_a_refused_call_cancels_it_all_the_same(self, new_shop: Any, new_payme_id: Any, tables: Any) -> None:
        shop = await new_shop()
        started = await shop.start()
        await self.expired(shop, started["payment_id"], new_payme_id())
        account = {"order_id": started["payment_id"]}
        assert (await shop.payme.error("CheckPerformTransaction", amount=AMOUNT - 1, account=account))["code"] == (
            -31001
        )
        assert [(r["state"], r["reason"]) for r in await tables.payme()] == [(-1, 4)]

    async def test_inside_the_12_hours_it_still_holds_the_order(
        self, new_shop: Any, new_payme_id: Any, tables: Any
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        old = new_payme_id()
        # A minute before its timeout.
        await shop.payme.create(started["payment_id"], id_=old, time=now_ms() - TIMEOUT_MS + 60_000)
        account = {"order_id": started["payment_id"]}
        assert (await shop.payme.error("CheckPerformTransaction", amount=AMOUNT, account=account))["code"] == -31052
        assert (await shop.payme.create(started["payment_id"]))["error"]["code"] == -31008
        assert [(r["payme_id"], r["state"], r["cancel_time"]) for r in await tables.payme()] == [(old, 1, 0)]
        assert (await shop.payme.result("CheckTransaction", id=old))["state"] == 1

    async def test_a_performed_transaction_is_never_cancelled_by_it(
        self, new_shop: Any, new_payme_id: Any, tables: Any, db_read: Any
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        old = new_payme_id()
        await shop.payme.create(started["payment_id"], id_=old, time=now_ms() - TIMEOUT_MS + 300)
        performed = await shop.payme.result("PerformTransaction", id=old)
        await asyncio.sleep(0.4)
        account = {"order_id": started["payment_id"]}
        assert (await shop.payme.error("CheckPerformTransaction", amount=AMOUNT, account=account))["code"] == -31051
        assert (await shop.payme.create(started["payment_id"]))["error"]["code"] == -31051
        rows = await tables.payme()
        assert [(r["state"], r["perform_time"], r["cancel_time"], r["reason"]) for r in rows] == [
            (2, performed["perform_time"], 0, None)
        ]
        assert (await shop.payme.result("CheckTransaction", id=old))["state"] == 2
        assert await ptx_status(db_read, started["provider_transaction_id"]) == "succeeded"


class TestCheckTransactionAndStatement:
    async def test_check_transaction_follows_every_state(self, new_shop: Any, new_payme_id: Any) -> None:
        shop = await new_shop()
        started = await shop.start()
        id_ = new_payme_id()
        created = (await shop.payme.create(started["payment_id"], id_=id_))["result"]
        checked = await shop.payme.result("CheckTransaction", id=id_)
        assert checked == {
            "create_time": created["create_time"],
            "perform_time": 0,
            "cancel_time": 0,
            "transaction": created["transaction"],
            "state": 1,
            "reason": None,
        }
        performed = await shop.payme.result("PerformTransaction", id=id_)
        checked = await shop.payme.result("CheckTransaction", id=id_)
        assert (checked["state"], checked["perform_time"]) == (2, performed["perform_time"])
        cancelled = await shop.payme.result("CancelTransaction", id=id_, reason=5)
        checked = await shop.payme.result("CheckTransaction", id=id_)
        assert (checked["state"], checked["cancel_time"], checked["reason"]) == (-2, cancelled["cancel_time"], 5)

    async def test_get_statement_lists_the_accounts_transactions_in_the_range_oldest_first(
        self, new_shop: Any, new_payme_id: Any
    ) -> None:
        shop = await new_shop()
        other = await new_shop(client=shop.client, tenant="ten_bbbbbbbbbbbbbbbb")
        base = now_ms() - 10_000
        ids = [new_payme_id() for _ in range(3)]
        for offset, id_ in zip((2000, 0, 1000), ids, strict=True):
            started = await shop.start()
            await shop.payme.create(started["payment_id"], id_=id_, time=base + offset)
        foreign = await other.start()
        await other.payme.create(foreign["payment_id"], time=base + 500)
        await shop.payme.result("PerformTransaction", id=ids[1])
        statement = await shop.payme.result("GetStatement", **{"from": base, "to": base + 1000})
        rows = statement["transactions"]
        assert [r["id"] for r in rows] == [ids[1], ids[2]]
        assert [r["time"] for r in rows] == [base, base + 1000]
        assert set(rows[0]) == {
            "id",
            "time",
            "amount",
            "account",
            "create_time",
            "perform_time",
            "cancel_time",
            "transaction",
            "state",
            "reason",
            "receivers",
        }
        assert (rows[0]["state"], rows[0]["amount"]) == (2, AMOUNT)
        assert rows[0]["account"]["order_id"].startswith("pay_")
        empty = await shop.payme.result("GetStatement", **{"from": base + 5000, "to": base + 6000})
        assert empty == {"transactions": []}


class TestSetFiscalData:
    async def test_stores_the_receipt_of_a_performed_transaction(
        self, new_shop: Any, new_payme_id: Any, tables: Any
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        id_ = new_payme_id()
        await shop.payme.create(started["payment_id"], id_=id_)
        receipt = {
            "receipt_id": 43,
            "status_code": 0,
            "message": "accepted",
            "terminal_id": "EP000000000025",
            "fiscal_sign": "160453753571",
            "qr_code_url": "https://ofd.soliq.uz/check?t=1",
            "date": "20231012",
        }
        # Nothing performed yet: no receipt can be for it.
        error = await shop.payme.error("SetFiscalData", id=id_, type="PERFORM", fiscal_data=receipt)
        assert error["code"] == -32001
        await shop.payme.result("PerformTransaction", id=id_)
        ok = await shop.payme.result("SetFiscalData", id=id_, type="PERFORM", fiscal_data=receipt)
        assert ok == {"success": True}
        assert (await tables.payme())[0]["fiscal_perform"] == receipt
        assert (await shop.payme.error("SetFiscalData", id=id_, type="CANCEL", fiscal_data=receipt))["code"] == -32001
        unknown = await shop.payme.error("SetFiscalData", id=new_payme_id(), type="PERFORM", fiscal_data=receipt)
        assert unknown["code"] == -32001
        await shop.payme.result("CancelTransaction", id=id_, reason=5)
        cancel_receipt = {**receipt, "receipt_id": 44}
        assert await shop.payme.result("SetFiscalData", id=id_, type="CANCEL", fiscal_data=cancel_receipt) == {
            "success": True
        }
        row = (await tables.payme())[0]
        assert (row["fiscal_perform"], row["fiscal_cancel"]) == (receipt, cancel_receipt)
