"""Payme's sandbox test cases (PROTOCOLS.md §2.1, §2.5), played against our real ``POST /billing/payme`` on
PostgreSQL: each case checks the answer the endpoint actually gives, byte for byte where Payme compares
bytes (a repeated call), and what it stored.

Time is Payme's and ours at once: the endpoint's clock (``PaymeMerchant.clock_ms``) is the table's
``now_ms``, so create, perform and cancel times are exact and the 12-hour boundary is tested to the
millisecond. The orders are payments started through the internal API with the ids the table names
(``pay_1``, ``pay_2``), due in three days so that a clock 12 hours ahead still finds them payable.

This table used to run against an in-memory merchant wired from the protocol core in the test itself;
that wiring was the test's own, so it proved nothing about the endpoint, and the core's decisions keep
their unit tests (``tests/protocols/payme/test_transactions.py``)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from providers_svc.keys import payme_merchant_key
from providers_svc.protocols.payme.states import TIMEOUT_MS

from .conftest import Shop, Tables

pytestmark = pytest.mark.postgres

ID_A = "65a1b2c3d4e5f60718293a4b"
ID_B = "65a1b2c3d4e5f60718293a4c"


def basic(key: str, login: str = "Paycom") -> str:
    return "Basic " + base64.b64encode(f"{login}:{key}".encode()).decode()


@dataclass
class Sandbox:
    """Payme's sandbox for one kassa (the shop's account), on the endpoint's clock."""

    shop: Shop
    tables: Tables
    internal_headers: Callable[..., dict[str, str]]
    sandbox_callback: Callable[..., Any]
    t0: int
    now_ms: int = 0
    request_ids: Any = field(default_factory=lambda: iter(range(1000, 10**6)))

    def __post_init__(self) -> None:
        self.now_ms = self.t0 + 700
        self.shop.client.app[payme_merchant_key].clock_ms = lambda: self.now_ms

    @property
    def key(self) -> str:
        return self.shop.key

    async def order(self, payment_id: str, amount: int) -> dict[str, Any]:
        expires = (datetime.now(UTC) + timedelta(days=3)).isoformat()
        return await self.shop.start(amount, payment_id=payment_id, expires_at=expires)

    def body(self, method: str, **params: Any) -> bytes:
        return json.dumps({"method": method, "params": params, "id": next(self.request_ids)}).encode()

    async def handle(self, body: bytes, authorization: str | None) -> bytes:
        return await self.shop.payme.raw(body, authorization if authorization is not None else "")

    async def call(self, method: str, authorization: str | None = None, **params: Any) -> bytes:
        auth = basic(self.key) if authorization is None else authorization
        return await self.handle(self.body(method, **params), auth)

    async def twice(self, method: str, **params: Any) -> dict[str, Any]:
        """The sandbox sends Create/Perform/Cancel twice, and Payme repeats one whose reply was lost: the
        repeat, seconds later, must get the same bytes."""
        body = self.body(method, **params)
        first = await self.handle(body, basic(self.key))
        self.now_ms += 3_000
        assert await self.handle(body, basic(self.key)) == first
        document: dict[str, Any] = json.loads(first)
        return document

    async def create(
        self, payme_id: str, payment_id: str = "pay_1", amount: int = 500_000, time: int | None = None
    ) -> bytes:
        time = self.t0 if time is None else time
        return await self.call(
            "CreateTransaction", id=payme_id, time=time, amount=amount, account={"order_id": payment_id}
        )

    async def stored(self) -> dict[str, dict[str, Any]]:
        return {row["payme_id"]: row for row in await self.tables.payme()}

    async def our_status(self, payment_id: str) -> str:
        """Our Payme transaction of the order: pending, succeeded (paid), or cancelled."""
        async with self.tables.engine.connect() as conn:
            result = await conn.exec_driver_sql(
                "SELECT status FROM provider_transactions WHERE payment_id = $1 AND provider = 'payme'",
                (payment_id,),
            )
            return str(result.scalar_one())

    async def refunded(self, payment_id: str) -> bool:
        return any(r["payment_id"] == payment_id for r in await self.tables.reversals())


def error_code(body: bytes) -> int:
    document = json.loads(body)
    assert "result" not in document, document
    code: int = document["error"]["code"]
    return code


def result(body: bytes) -> dict[str, Any]:
    document = json.loads(body)
    assert "error" not in document, document
    payload: dict[str, Any] = document["result"]
    return payload


@pytest.fixture
def sandbox_for(new_shop: Any, tables: Tables, internal_headers: Any, sandbox_callback: Any) -> Callable[..., Any]:
    """``await sandbox_for(**account_settings)``: a kassa with orders pay_1 (5 000 so'm) and pay_2 (2 500)."""

    async def make(**settings: str) -> Sandbox:
        shop = await new_shop(**settings)
        sandbox = Sandbox(shop, tables, internal_headers, sandbox_callback, t0=time.time_ns() // 1_000_000)
        await sandbox.order("pay_1", 500_000)
        await sandbox.order("pay_2", 250_000)
        return sandbox

    return make


@pytest.fixture
async def merchant(sandbox_for: Callable[..., Any]) -> Sandbox:
    sandbox: Sandbox = await sandbox_for()
    return sandbox


class TestSandboxPayment:
    async def test_pay_then_refund_with_every_call_sent_twice(self, merchant: Sandbox) -> None:
        account = {"order_id": "pay_1"}
        assert result(await merchant.call("CheckPerformTransaction", amount=500_000, account=account)) == {
            "allow": True
        }
        created_at = merchant.now_ms
        create = dict(id=ID_A, time=merchant.t0, amount=500_000, account=account)
        created = (await merchant.twice("CreateTransaction", **create))["result"]
        ours = (await merchant.stored())[ID_A]["id"]
        assert created == {"create_time": created_at, "transaction": ours, "state": 1}
        performed_at = merchant.now_ms
        assert (await merchant.twice("PerformTransaction", id=ID_A))["result"] == {
            "transaction": ours,
            "perform_time": performed_at,
            "state": 2,
        }
        assert await merchant.our_status("pay_1") == "succeeded"
        cancelled_at = merchant.now_ms
        assert (await merchant.twice("CancelTransaction", id=ID_A, reason=5))["result"] == {
            "transaction": ours,
            "cancel_time": cancelled_at,
            "state": -2,
        }
        assert await merchant.refunded("pay_1")
        assert result(await merchant.call("CheckTransaction", id=ID_A)) == {
            "create_time": created_at,
            "perform_time": performed_at,
            "cancel_time": cancelled_at,
            "transaction": ours,
            "state": -2,
            "reason": 5,
        }

    async def test_cancelled_before_perform_cannot_be_performed_and_frees_the_order(self, merchant: Sandbox) -> None:
        assert result(await merchant.create(ID_A))["state"] == 1
        assert (await merchant.twice("CancelTransaction", id=ID_A, reason=3))["result"]["state"] == -1
        assert error_code(await merchant.call("PerformTransaction", id=ID_A)) == -31008
        assert await merchant.our_status("pay_1") == "pending"
        second = result(await merchant.create(ID_B))
        assert second["state"] == 1
        assert second["transaction"] == (await merchant.stored())[ID_B]["id"] != (await merchant.stored())[ID_A]["id"]

    async def test_second_transaction_for_the_same_order_is_refused(self, merchant: Sandbox) -> None:
        await merchant.create(ID_A)
        check = await merchant.call("CheckPerformTransaction", amount=500_000, account={"order_id": "pay_1"})
        assert error_code(check) == -31052
        assert json.loads(check)["error"]["data"] == "order_id"
        assert error_code(await merchant.create(ID_B)) == -31008
        await merchant.call("PerformTransaction", id=ID_A)
        assert error_code(await merchant.create(ID_B)) == -31051  # paid now
        assert set(await merchant.stored()) == {ID_A}

    async def test_delivered_order_cannot_be_refunded(self, sandbox_for: Callable[..., Any]) -> None:
        # "Delivered for good" is the account's cancel_after_perform=refuse with us.
        merchant: Sandbox = await sandbox_for(cancel_after_perform="refuse")
        await merchant.create(ID_A)
        await merchant.call("PerformTransaction", id=ID_A)
        assert error_code(await merchant.call("CancelTransaction", id=ID_A, reason=5)) == -31007
        assert result(await merchant.call("CheckTransaction", id=ID_A))["state"] == 2
        assert not await merchant.refunded("pay_1")

    async def test_paid_through_another_provider_meanwhile_cannot_be_performed(self, merchant: Sandbox) -> None:
        await merchant.create(ID_A)
        body = {"payment_id": "pay_1", "provider": "sandbox", "amount": 500_000, "currency": "UZS"}
        client, tenant = merchant.shop.client, merchant.shop.tenant_id
        started = await client.post("/internal/payments/start", json=body, headers=merchant.internal_headers(tenant))
        assert started.status == 200, await started.text()
        ptx = (await started.json())["provider_transaction_id"]
        paid = merchant.sandbox_callback(ptx, amount=500_000, currency="UZS")
        assert (await client.post("/billing/sandbox", data=paid.body, headers=paid.headers)).status == 200
        assert error_code(await merchant.call("PerformTransaction", id=ID_A)) == -31008
        assert result(await merchant.call("CheckTransaction", id=ID_A))["state"] == 1
        assert await merchant.our_status("pay_1") == "cancelled"

    async def test_statement_lists_created_transactions_in_payme_time_order(self, merchant: Sandbox) -> None:
        t0 = merchant.t0
        await merchant.create(ID_B, "pay_2", 250_000, time=t0 + 10)
        await merchant.create(ID_A, "pay_1", 500_000, time=t0)
        assert error_code(await merchant.create("65a1b2c3d4e5f60718293a4d", "pay_3", 1)) == -31050  # never stored
        rows = result(await merchant.call("GetStatement", **{"from": t0, "to": t0 + 10}))["transactions"]
        assert [(row["id"], row["account"], row["amount"]) for row in rows] == [
            (ID_A, {"order_id": "pay_1"}, 500_000),
            (ID_B, {"order_id": "pay_2"}, 250_000),
        ]
        assert result(await merchant.call("GetStatement", **{"from": 0, "to": t0 - 1})) == {"transactions": []}


class TestSandboxTimeout:
    @pytest.mark.parametrize(("age", "expired"), [(TIMEOUT_MS - 1, False), (TIMEOUT_MS, True), (TIMEOUT_MS + 1, True)])
    async def test_perform_at_the_12_hour_boundary(self, merchant: Sandbox, age: int, expired: bool) -> None:
        await merchant.create(ID_A)
        merchant.now_ms = merchant.t0 + age
        answer = await merchant.call("PerformTransaction", id=ID_A)
        if not expired:
            assert result(answer)["state"] == 2
            return
        assert error_code(answer) == -31008
        check = result(await merchant.call("CheckTransaction", id=ID_A))
        assert (check["state"], check["reason"], check["cancel_time"]) == (-1, 4, merchant.t0 + age)
        assert await merchant.our_status("pay_1") == "pending"
        merchant.now_ms += 5_000
        # Payme then cancels it itself: the stored cancel is the answer.
        cancel = result(await merchant.call("CancelTransaction", id=ID_A, reason=4))
        assert (cancel["state"], cancel["cancel_time"]) == (-1, merchant.t0 + age)

    @pytest.mark.parametrize(("age", "expired"), [(TIMEOUT_MS - 1, False), (TIMEOUT_MS, True), (TIMEOUT_MS + 1, True)])
    async def test_repeated_create_at_the_12_hour_boundary(self, merchant: Sandbox, age: int, expired: bool) -> None:
        first = await merchant.create(ID_A)
        merchant.now_ms = merchant.t0 + age
        repeat = await merchant.create(ID_A)
        if expired:
            assert error_code(repeat) == -31008
            assert (await merchant.stored())[ID_A]["reason"] == 4
        else:
            assert json.loads(repeat)["result"] == json.loads(first)["result"]

    async def test_new_create_with_an_old_time_is_refused(self, merchant: Sandbox) -> None:
        merchant.now_ms = merchant.t0 + TIMEOUT_MS
        assert error_code(await merchant.create(ID_A)) == -31008
        assert await merchant.stored() == {}


class TestSandboxErrors:
    @pytest.mark.parametrize("method", ["PerformTransaction", "CheckTransaction"])
    async def test_unknown_transaction_is_31003(self, merchant: Sandbox, method: str) -> None:
        assert error_code(await merchant.call(method, id=ID_A)) == -31003

    async def test_unknown_transaction_cancel_is_31003(self, merchant: Sandbox) -> None:
        assert error_code(await merchant.call("CancelTransaction", id=ID_A, reason=1)) == -31003

    @pytest.mark.parametrize("method", ["CheckPerformTransaction", "CreateTransaction"])
    async def test_wrong_amount_is_31001(self, merchant: Sandbox, method: str) -> None:
        answer = await merchant.call(method, id=ID_A, time=merchant.t0, amount=499_999, account={"order_id": "pay_1"})
        assert error_code(answer) == -31001
        assert await merchant.stored() == {}

    @pytest.mark.parametrize("method", ["CheckPerformTransaction", "CreateTransaction"])
    async def test_unknown_order_is_31050_naming_the_field(self, merchant: Sandbox, method: str) -> None:
        answer = await merchant.call(method, id=ID_A, time=merchant.t0, amount=500_000, account={"order_id": "pay_404"})
        error = json.loads(answer)["error"]
        assert (error["code"], error["data"]) == (-31050, "order_id")
        assert set(error["message"]) == {"ru", "uz", "en"}

    @pytest.mark.parametrize("body", [b"{", b"", b"\x00", b'{"method": "CheckTransaction", "params": {}, "id": 1'])
    async def test_malformed_json_is_32700_even_before_auth(self, merchant: Sandbox, body: bytes) -> None:
        answer = await merchant.handle(body, None)
        assert error_code(answer) == -32700
        assert json.loads(answer)["id"] is None

    @pytest.mark.parametrize(
        "authorization",
        [
            lambda key: "",
            lambda key: basic("wrong-key"),
            lambda key: basic(key, login="Payme"),
            lambda key: "Basic " + key,
            lambda key: "Bearer " + key,
        ],
        ids=["none", "wrong_key", "wrong_login", "not_base64", "bearer"],
    )
    @pytest.mark.parametrize("method", ["CheckPerformTransaction", "CreateTransaction", "NoSuchMethod"])
    async def test_bad_credentials_are_32504_whatever_the_method(
        self, merchant: Sandbox, authorization: Callable[[str], str], method: str
    ) -> None:
        answer = await merchant.call(method, authorization(merchant.key), amount=1)
        assert error_code(answer) == -32504
        assert json.loads(answer)["id"] == 1000
        assert merchant.key.encode() not in answer

    async def test_unknown_method_is_32601_naming_it(self, merchant: Sandbox) -> None:
        error = json.loads(await merchant.call("SetFiscalDatum", id=ID_A))["error"]
        assert (error["code"], error["data"]) == (-32601, "SetFiscalDatum")

    async def test_change_password_replaces_the_key(self, merchant: Sandbox) -> None:
        old = basic(merchant.key)
        new_key = "NEW_KEY_0123456789abcdefghijklmnop"
        assert result(await merchant.call("ChangePassword", password=new_key)) == {"success": True}
        assert error_code(await merchant.call("CheckTransaction", old, id=ID_A)) == -32504
        assert error_code(await merchant.call("CheckTransaction", basic(new_key), id=ID_A)) == -31003
