"""``POST /billing/payme`` under pressure: concurrent deliveries, bad input, ChangePassword, several accounts
on one endpoint, and a database outage. Every answer is HTTP 200 in Payme's format."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from typing import Any

import pytest
from billing_contracts.envelope import utcnow
from billing_runtime.bus import MemoryBus
from billing_runtime.key_ring import KeyRing
from billing_runtime.uow import UnitOfWork
from providers_svc.app import create_app
from providers_svc.keys import key_ring_key, metrics_key, payme_merchant_key, uow_factory_key
from providers_svc.protocols.payme.states import TIMEOUT_MS
from providers_svc.services.accounts import AccountChanges, update_account

pytestmark = pytest.mark.postgres

AMOUNT = 500_000
CREDENTIALS_KEYS = "dGVzdC1jcmVkZW50aWFscy1rZXktMDEyMzQ1Njc4OWE="  # the conftest settings' key ring


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class TestConcurrency:
    async def test_twenty_concurrent_performs_move_the_money_once(
        self, new_shop: Any, new_payme_id: Any, db_read: Any
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        id_ = new_payme_id()
        await shop.payme.create(started["payment_id"], id_=id_)
        body = json.dumps({"id": 1, "method": "PerformTransaction", "params": {"id": id_}})
        answers = await asyncio.gather(*(shop.payme.raw(body) for _ in range(20)))
        assert len(set(answers)) == 1
        assert json.loads(answers[0])["result"]["state"] == 2
        outbox = [json.loads(r["body"]) for r in await db_read("outbox")]
        assert [e["event_type"] for e in outbox] == ["provider.payment.succeeded"]
        transaction = next(t for t in await db_read("transactions") if t["id"] == started["provider_transaction_id"])
        assert transaction["status"] == "succeeded"
        assert len([e for e in await db_read("events") if e["provider"] == "payme"]) == 1

    async def test_ten_racing_creates_for_one_order_leave_exactly_one_active(
        self, new_shop: Any, new_payme_id: Any, tables: Any
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        ids = [new_payme_id() for _ in range(10)]
        answers = await asyncio.gather(*(shop.payme.create(started["payment_id"], id_=i) for i in ids))
        created = [a for a in answers if "result" in a]
        assert len(created) == 1
        assert {a["error"]["code"] for a in answers if "error" in a} == {-31008}
        rows = await tables.payme()
        assert [r["state"] for r in rows] == [1]
        assert rows[0]["id"] == created[0]["result"]["transaction"]

    async def test_racing_creates_after_the_active_one_timed_out_leave_exactly_one_active(
        self, new_shop: Any, new_payme_id: Any, tables: Any
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        old = new_payme_id()
        # Payme's clock: created 12 hours ago less 300 ms, so it expires while we wait.
        await shop.payme.create(started["payment_id"], id_=old, time=now_ms() - TIMEOUT_MS + 300)
        await asyncio.sleep(0.4)
        ids = [new_payme_id() for _ in range(10)]
        account = {"order_id": started["payment_id"]}
        *answers, perform, check = await asyncio.gather(
            *(shop.payme.create(started["payment_id"], id_=i) for i in ids),
            shop.payme.call("PerformTransaction", id=old),
            shop.payme.call("CheckPerformTransaction", amount=AMOUNT, account=account),
        )
        created = [a for a in answers if "result" in a]
        assert len(created) == 1
        assert {a["error"]["code"] for a in answers if "error" in a} == {-31008}
        assert perform["error"]["code"] == -31008
        assert check.get("result") == {"allow": True} or check["error"]["code"] == -31052
        rows = {r["payme_id"]: r for r in await tables.payme()}
        assert (rows.pop(old)["state"], len(rows)) == (-1, 1)
        assert [(r["id"], r["state"]) for r in rows.values()] == [(created[0]["result"]["transaction"], 1)]

    async def test_the_same_create_delivered_concurrently_stores_one_and_answers_alike(
        self, new_shop: Any, new_payme_id: Any, tables: Any
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        params = {
            "id": new_payme_id(),
            "time": now_ms(),
            "amount": AMOUNT,
            "account": {"order_id": started["payment_id"]},
        }
        body = json.dumps({"id": 5, "method": "CreateTransaction", "params": params})
        answers = await asyncio.gather(*(shop.payme.raw(body) for _ in range(10)))
        assert len(set(answers)) == 1
        assert json.loads(answers[0])["result"]["state"] == 1
        assert len(await tables.payme()) == 1

    async def test_concurrent_cancel_and_perform_of_a_created_transaction_end_consistently(
        self, new_shop: Any, new_payme_id: Any, tables: Any, db_read: Any
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        id_ = new_payme_id()
        await shop.payme.create(started["payment_id"], id_=id_)
        perform, cancel = await asyncio.gather(
            shop.payme.call("PerformTransaction", id=id_), shop.payme.call("CancelTransaction", id=id_, reason=3)
        )
        row = (await tables.payme())[0]
        status = next(
            t["status"] for t in await db_read("transactions") if t["id"] == started["provider_transaction_id"]
        )
        if "result" in perform:
            # Performed first: the cancel refunded it.
            assert (row["state"], status, cancel["result"]["state"]) == (-2, "succeeded", -2)
            assert len(await tables.reversals()) == 1
        else:
            assert (row["state"], status, perform["error"]["code"]) == (-1, "pending", -31008)

    @pytest.mark.parametrize("round_", range(5))
    async def test_our_cancel_racing_payme_perform_never_both_win(
        self, new_shop: Any, new_payme_id: Any, internal_headers: Any, db_read: Any, round_: int
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        id_ = new_payme_id()
        await shop.payme.create(started["payment_id"], id_=id_)
        cancel_path = f"/internal/payments/{started['payment_id']}/cancel"
        perform, cancel = await asyncio.gather(
            shop.payme.call("PerformTransaction", id=id_),
            shop.client.post(cancel_path, headers=internal_headers(shop.tenant_id)),
        )
        status = next(
            t["status"] for t in await db_read("transactions") if t["id"] == started["provider_transaction_id"]
        )
        events = [r for r in await db_read("outbox") if r["routing_key"].endswith("payment.succeeded.v1")]
        if "result" in perform:
            assert (cancel.status, status, len(events)) == (409, "succeeded", 1)
        else:
            assert (perform["error"]["code"], cancel.status, status, events) == (-31008, 200, "cancelled", [])


class TestBadInput:
    @pytest.mark.parametrize(
        ("body", "code", "reason"),
        [
            (b"{not json", -32700, "bad_json"),
            (b"\xff\xfe", -32700, "bad_json"),
            (
                b'{"id": 1, "method": "CheckTransaction", "params": {"id": "x"}, "n": 1' + b"9" * 5000 + b"}",
                -32700,
                "bad_json",
            ),
            (b"[]", -32600, "bad_envelope"),
            (b'{"id": true, "method": "CheckTransaction", "params": {}}', -32600, "bad_envelope"),
            (b'{"id": 1, "method": 5, "params": {}}', -32600, "bad_envelope"),
            (b'{"id": 1, "method": "CheckTransaction", "params": []}', -32600, "bad_envelope"),
            (b'{"id": 1, "method": "Refund", "params": {}}', -32601, "unknown_method"),
            (b'{"id": 1, "method": "PerformTransaction", "params": {"id": 5}}', -32600, "bad_params"),
            (
                b'{"id": 1, "method": "PerformTransaction", "params": {"id": "' + b"a" * 65 + b'"}}',
                -32600,
                "bad_params",
            ),
            (b'{"id": 1, "method": "CancelTransaction", "params": {"id": "a", "reason": 6}}', -32600, "bad_params"),
            (b'{"id": 1, "method": "GetStatement", "params": {"from": "1", "to": 2}}', -32600, "bad_params"),
            (b'{"id": 1, "method": "ChangePassword", "params": {"password": ""}}', -32600, "bad_params"),
            (
                b'{"id": 1, "method": "CreateTransaction", "params": '
                b'{"id": "a", "time": 1, "amount": "5", "account": {}}}',
                -31001,
                "bad_amount",
            ),
            (
                b'{"id": 1, "method": "CheckPerformTransaction", "params": {"amount": 1e400, "account": {}}}',
                -31001,
                "bad_amount",
            ),
            (b'{"id": 1, "method": "CheckPerformTransaction", "params": {"amount": 5}}', -31050, "bad_account"),
        ],
    )
    async def test_malformed_requests_change_nothing_and_are_counted(
        self, new_shop: Any, tables: Any, db_read: Any, metric: Any, body: bytes, code: int, reason: str
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        await shop.payme.create(started["payment_id"])
        before = (await tables.payme(), await tables.accounts(), await db_read("transactions"))
        answer = json.loads(await shop.payme.raw(body))
        assert answer["error"]["code"] == code
        assert set(answer["error"]["message"]) == {"ru", "uz", "en"}
        assert "result" not in answer
        assert (await tables.payme(), await tables.accounts(), await db_read("transactions")) == before
        assert metric(shop.client, "provider_callbacks_rejected_total", reason=reason) == 1

    @pytest.mark.parametrize(
        "authorization",
        ["", "Bearer abc", "Basic !!!", "Basic " + "UGF5Y29t", "wrong-key", "Other:{key}"],
    )
    async def test_bad_credentials_are_32504_whatever_the_method(
        self, new_shop: Any, tables: Any, metric: Any, authorization: str, new_payme_id: Any
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        id_ = new_payme_id()
        await shop.payme.create(started["payment_id"], id_=id_)
        if authorization == "wrong-key":
            authorization = "Basic " + base64.b64encode(b"Paycom:not-the-key").decode()
        elif authorization.startswith("Other:"):
            authorization = "Basic " + base64.b64encode(f"Other:{shop.key}".encode()).decode()
        body = json.dumps({"id": 3, "method": "PerformTransaction", "params": {"id": id_}})
        if authorization == "":
            raw = await shop.client.post("/billing/payme", data=body)
            assert raw.status == 200
            answer = json.loads(await raw.read())
        else:
            answer = json.loads(await shop.payme.raw(body, authorization=authorization))
        assert (answer["error"]["code"], answer["id"]) == (-32504, 3)
        assert (await tables.payme())[0]["state"] == 1
        assert metric(shop.client, "provider_callbacks_rejected_total", reason="bad_auth") == 1

    async def test_a_get_is_32300_with_http_200(self, new_shop: Any, metric: Any) -> None:
        shop = await new_shop()
        answer = json.loads(await shop.payme.raw(b"", method="GET"))
        assert (answer["error"]["code"], answer["id"]) == (-32300, None)
        assert metric(shop.client, "provider_callbacks_rejected_total", reason="not_post") == 1

    async def test_the_key_never_appears_in_answers_or_logs(
        self, new_shop: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        shop = await new_shop()
        started = await shop.start()
        caplog.set_level("DEBUG")
        answers = [
            await shop.payme.raw(b'{"id": 1, "method": "Nope", "params": {}}'),
            await shop.payme.call_raw("ChangePassword", password="x\u0001y"),
            await shop.payme.call_raw(
                "CheckPerformTransaction", amount=AMOUNT, account={"order_id": started["payment_id"]}
            ),
        ]
        for text in [*(a.decode() for a in answers), caplog.text]:
            assert shop.key not in text


class TestChangePassword:
    async def test_the_new_key_authenticates_and_the_old_one_no_longer_does(
        self, new_shop: Any, tables: Any, authorization: Any
    ) -> None:
        shop = await new_shop()
        other = await new_shop(client=shop.client, tenant="ten_bbbbbbbbbbbbbbbb")
        new_key = "NEW-KEY-" + "k" * 28
        assert await shop.payme.result("ChangePassword", password=new_key) == {"success": True}
        old = json.loads(await shop.payme.call_raw("GetStatement", **{"from": 0, "to": 1}))
        assert old["error"]["code"] == -32504
        shop.payme.key = new_key
        assert await shop.payme.result("GetStatement", **{"from": 0, "to": 1}) == {"transactions": []}
        # Stored sealed with the key ring, like an admin update; the other account is untouched.
        rows = {r["id"]: r for r in await tables.accounts()}
        sealed = rows[shop.account_id]["credentials_ciphertext"]
        assert new_key not in sealed
        opened = json.loads(KeyRing(CREDENTIALS_KEYS).decrypt(sealed))
        assert opened["key"] == new_key
        assert set(opened) == {"merchant_id", "key"}
        assert (
            json.loads(KeyRing(CREDENTIALS_KEYS).decrypt(rows[other.account_id]["credentials_ciphertext"]))["key"]
            == other.key
        )
        assert await other.payme.result("GetStatement", **{"from": 0, "to": 1}) == {"transactions": []}

    async def test_another_accounts_key_is_refused(self, new_shop: Any, tables: Any) -> None:
        shop = await new_shop()
        other = await new_shop(client=shop.client, tenant="ten_bbbbbbbbbbbbbbbb")
        before = await tables.accounts()
        assert (await shop.payme.error("ChangePassword", password=other.key))["code"] == -32600
        assert await tables.accounts() == before
        assert await shop.payme.result("GetStatement", **{"from": 0, "to": 1}) == {"transactions": []}


class TestSharedEndpoint:
    async def test_a_key_changed_by_the_admin_api_is_seen_on_the_next_call(self, new_shop: Any) -> None:
        shop = await new_shop()
        assert await shop.payme.result("GetStatement", **{"from": 0, "to": 1}) == {"transactions": []}
        app = shop.client.app
        changes = AccountChanges(credentials={"key": "rotated-by-the-admin-0123456789"})
        await update_account(app[uow_factory_key], app[key_ring_key], shop.account_id, changes, utcnow())
        assert (await shop.payme.error("GetStatement", **{"from": 0, "to": 1}))["code"] == -32504
        shop.payme.key = "rotated-by-the-admin-0123456789"
        assert await shop.payme.result("GetStatement", **{"from": 0, "to": 1}) == {"transactions": []}

    async def test_each_key_reaches_only_its_own_accounts_orders(self, new_shop: Any, tables: Any) -> None:
        shop = await new_shop()
        other = await new_shop(client=shop.client, tenant="ten_bbbbbbbbbbbbbbbb")
        mine, theirs = await shop.start(), await other.start()
        assert "result" in await shop.payme.create(mine["payment_id"])
        assert (await shop.payme.create(theirs["payment_id"]))["error"]["code"] == -31050
        assert "result" in await other.payme.create(theirs["payment_id"])
        assert {r["account_id"] for r in await tables.payme()} == {shop.account_id, other.account_id}


async def test_a_database_outage_is_32400_in_http_200(aiohttp_client: Any, settings: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = settings.model_copy(
        update={
            "database_url": f"postgresql+asyncpg://postgres@127.0.0.1:{port}/providers",
            "enabled_providers": ["payme"],
        }
    )
    client = await aiohttp_client(create_app(down, bus=MemoryBus(), roles=("api",)))
    body = json.dumps({"id": 4, "method": "PerformTransaction", "params": {"id": "a" * 24}})
    response = await client.post("/billing/payme", data=body, headers={"Authorization": "Basic UGF5Y29tOmtleQ=="})
    assert response.status == 200
    answer = json.loads(await response.read())
    assert (answer["error"]["code"], answer["id"]) == (-32400, 4)
    value = client.app[metrics_key].registry.get_sample_value(
        "provider_callbacks_total", {"provider": "payme", "result": "unavailable"}
    )
    assert value == 1


class TestRoundTrips:
    async def test_a_new_create_and_its_perform_open_no_transaction(self, new_shop: Any, new_payme_id: Any) -> None:
        # Each is decided on rows read without locks and written in one guarded statement that commits
        # itself: no ORM session, so no BEGIN and COMMIT around them (the Create's order read went
        # through the unit's session once, which made it BEGIN, read, insert, COMMIT).
        shop = await new_shop()
        started = await shop.start()
        merchant = shop.client.app[payme_merchant_key]
        units: list[Any] = []
        real = merchant.uow

        def counted() -> Any:
            units.append(real())
            return units[-1]

        merchant.uow = counted
        id_ = new_payme_id()
        created = await shop.payme.create(started["payment_id"], id_=id_)
        assert created["result"]["state"] == 1
        performed = await shop.payme.call("PerformTransaction", id=id_)
        assert performed["result"]["state"] == 2
        assert units and all(unit._session is None for unit in units)

    async def test_a_new_create_is_decided_on_one_read(
        self, new_shop: Any, new_payme_id: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Whether Payme's id is stored and the order it names, in one statement and one snapshot (they
        # were two reads), then the guarded insert: two round trips for a new Create.
        shop = await new_shop()
        started = await shop.start()
        reads: list[dict[str, Any]] = []
        real = UnitOfWork.read_unlocked

        async def counted(self: UnitOfWork, query: Any, params: Any) -> Any:
            if "payme_id" in params or "payment_id" in params:  # not the accounts' list, read once and kept
                reads.append(dict(params))
            return await real(self, query, params)

        monkeypatch.setattr(UnitOfWork, "read_unlocked", counted)
        id_ = new_payme_id()
        created = await shop.payme.create(started["payment_id"], id_=id_)
        assert created["result"]["state"] == 1
        assert reads == [{"payme_id": id_, "payment_id": started["payment_id"], "provider": "payme"}]
        # A repeat finds the id in that same read and answers from the stored row.
        again = await shop.payme.create(started["payment_id"], id_=id_)
        assert again["result"] == created["result"]
        assert len(reads) == 2
