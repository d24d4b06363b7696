"""The protocol core driven through bytes, as Payme's sandbox drives a merchant (PROTOCOLS.md §2.1, §2.5).

``InMemoryMerchant`` does in dicts what the wiring step will do with the database, in the same order: parse
the envelope, authenticate, parse the params, decide, store the record and apply the effect, answer.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import pytest
from providers_svc.protocols.payme.auth import authenticate
from providers_svc.protocols.payme.errors import PaymeError
from providers_svc.protocols.payme.jsonrpc import MalformedRequestError, error_response, parse_request, result_response
from providers_svc.protocols.payme.params import (
    CancelTransactionParams,
    ChangePasswordParams,
    CheckPerformTransactionParams,
    CheckTransactionParams,
    CreateTransactionParams,
    GetStatementParams,
    Params,
    PerformTransactionParams,
    parse_params,
)
from providers_svc.protocols.payme.states import TIMEOUT_MS, TransactionState
from providers_svc.protocols.payme.transactions import (
    Decision,
    OrderEffect,
    PaymeOrder,
    PaymeTransaction,
    cancel_transaction,
    check_perform_transaction,
    check_transaction,
    create_transaction,
    get_statement,
    perform_transaction,
)

KEY = "TEST_KEY_0123456789abcdefghijklmnopq"
PAYME_TIME = 1_700_000_000_000
ID_A = "65a1b2c3d4e5f60718293a4b"
ID_B = "65a1b2c3d4e5f60718293a4c"


def basic(key: str, login: str = "Paycom") -> str:
    return "Basic " + base64.b64encode(f"{login}:{key}".encode()).decode()


@dataclass
class Payment:
    amount: int
    status: str = "pending"  # pending | paid | refunded
    delivered: bool = False


class InMemoryMerchant:
    def __init__(self, payments: dict[str, Payment]) -> None:
        self.payments = payments
        self.transactions: dict[str, PaymeTransaction] = {}
        self.key = KEY
        self.now_ms = PAYME_TIME + 700
        self.request_ids = iter(range(1000, 10**6))

    def handle(self, body: bytes, authorization: str | None) -> bytes:
        try:
            request = parse_request(body)
        except MalformedRequestError as exc:
            return error_response(exc.request_id, exc)
        try:
            authenticate(authorization, [("pac_test", self.key)])
            decision = self.decide(parse_params(request, account_field="order_id"))
        except PaymeError as exc:
            return error_response(request.id, exc)
        if decision.record is not None:
            self.transactions[decision.record.payme_id] = decision.record
            payment = self.payments[decision.record.payment_id]
            if decision.effect is OrderEffect.PAY:
                payment.status = "paid"
            elif decision.effect is OrderEffect.REFUND:
                payment.status = "refunded"
        if decision.error is not None:
            return error_response(request.id, decision.error)
        assert decision.result is not None
        return result_response(request.id, decision.result)

    def decide(self, params: Params) -> Decision:
        match params:
            case CheckPerformTransactionParams():
                return check_perform_transaction(params, self.order(params.payment_id))
            case CreateTransactionParams():
                existing = self.transactions.get(params.id)
                order = None if existing else self.order(params.payment_id)
                new_id = f"ptx_{len(self.transactions) + 1}"
                return create_transaction(params, existing, order, transaction_id=new_id, now_ms=self.now_ms)
            case PerformTransactionParams():
                txn = self.transactions.get(params.id)
                payable = txn is not None and self.payments[txn.payment_id].status == "pending"
                return perform_transaction(txn, order_payable=payable, now_ms=self.now_ms)
            case CancelTransactionParams():
                txn = self.transactions.get(params.id)
                refundable = txn is not None and not self.payments[txn.payment_id].delivered
                return cancel_transaction(txn, params.reason, refund_allowed=refundable, now_ms=self.now_ms)
            case CheckTransactionParams():
                return check_transaction(self.transactions.get(params.id))
            case GetStatementParams():
                return get_statement(params, self.transactions.values(), account_field="order_id")
            case ChangePasswordParams():
                self.key = params.password
                return Decision(result={"success": True})

    def order(self, payment_id: str) -> PaymeOrder | None:
        payment = self.payments.get(payment_id)
        if payment is None:
            return None
        active = [
            t.payme_id
            for t in self.transactions.values()
            if t.payment_id == payment_id and t.state in (TransactionState.CREATED, TransactionState.PERFORMED)
        ]
        return PaymeOrder(payment_id, payment.amount, payment.status == "pending", active[0] if active else None)

    def body(self, method: str, **params: Any) -> bytes:
        return json.dumps({"method": method, "params": params, "id": next(self.request_ids)}).encode()

    def call(self, method: str, authorization: str | None = None, **params: Any) -> bytes:
        return self.handle(self.body(method, **params), basic(self.key) if authorization is None else authorization)

    def twice(self, method: str, **params: Any) -> dict[str, Any]:
        """The sandbox sends Create/Perform/Cancel twice, and Payme repeats one whose reply was lost: the
        repeat, seconds later, must get the same bytes."""
        body = self.body(method, **params)
        first = self.handle(body, basic(self.key))
        self.now_ms += 3_000
        assert self.handle(body, basic(self.key)) == first
        document: dict[str, Any] = json.loads(first)
        return document

    def create(self, payme_id: str, payment_id: str = "pay_1", amount: int = 500_000, time: int = PAYME_TIME) -> bytes:
        return self.call("CreateTransaction", id=payme_id, time=time, amount=amount, account={"order_id": payment_id})


def error_code(body: bytes) -> int:
    document = json.loads(body)
    assert "result" not in document
    code: int = document["error"]["code"]
    return code


def result(body: bytes) -> dict[str, Any]:
    document = json.loads(body)
    assert "error" not in document
    payload: dict[str, Any] = document["result"]
    return payload


@pytest.fixture
def merchant() -> InMemoryMerchant:
    return InMemoryMerchant({"pay_1": Payment(500_000), "pay_2": Payment(250_000)})


class TestSandboxPayment:
    def test_pay_then_refund_with_every_call_sent_twice(self, merchant: InMemoryMerchant) -> None:
        account = {"order_id": "pay_1"}
        assert result(merchant.call("CheckPerformTransaction", amount=500_000, account=account)) == {"allow": True}
        created_at = merchant.now_ms
        create = dict(id=ID_A, time=PAYME_TIME, amount=500_000, account=account)
        assert merchant.twice("CreateTransaction", **create)["result"] == {
            "create_time": created_at,
            "transaction": "ptx_1",
            "state": 1,
        }
        performed_at = merchant.now_ms
        assert merchant.twice("PerformTransaction", id=ID_A)["result"]["perform_time"] == performed_at
        assert merchant.payments["pay_1"].status == "paid"
        cancelled_at = merchant.now_ms
        assert merchant.twice("CancelTransaction", id=ID_A, reason=5)["result"] == {
            "transaction": "ptx_1",
            "cancel_time": cancelled_at,
            "state": -2,
        }
        assert merchant.payments["pay_1"].status == "refunded"
        assert result(merchant.call("CheckTransaction", id=ID_A)) == {
            "create_time": created_at,
            "perform_time": performed_at,
            "cancel_time": cancelled_at,
            "transaction": "ptx_1",
            "state": -2,
            "reason": 5,
        }

    def test_cancelled_before_perform_cannot_be_performed_and_frees_the_order(self, merchant: InMemoryMerchant) -> None:
        assert result(merchant.create(ID_A))["state"] == 1
        assert merchant.twice("CancelTransaction", id=ID_A, reason=3)["result"]["state"] == -1
        assert error_code(merchant.call("PerformTransaction", id=ID_A)) == -31008
        assert merchant.payments["pay_1"].status == "pending"
        assert result(merchant.create(ID_B))["transaction"] == "ptx_2"

    def test_second_transaction_for_the_same_order_is_refused(self, merchant: InMemoryMerchant) -> None:
        merchant.create(ID_A)
        check = merchant.call("CheckPerformTransaction", amount=500_000, account={"order_id": "pay_1"})
        assert error_code(check) == -31052
        assert json.loads(check)["error"]["data"] == "order_id"
        assert error_code(merchant.create(ID_B)) == -31008
        merchant.call("PerformTransaction", id=ID_A)
        assert error_code(merchant.create(ID_B)) == -31051  # paid now
        assert set(merchant.transactions) == {ID_A}

    def test_delivered_order_cannot_be_refunded(self, merchant: InMemoryMerchant) -> None:
        merchant.create(ID_A)
        merchant.call("PerformTransaction", id=ID_A)
        merchant.payments["pay_1"].delivered = True
        assert error_code(merchant.call("CancelTransaction", id=ID_A, reason=5)) == -31007
        assert result(merchant.call("CheckTransaction", id=ID_A))["state"] == 2

    def test_paid_through_another_provider_meanwhile_cannot_be_performed(self, merchant: InMemoryMerchant) -> None:
        merchant.create(ID_A)
        merchant.payments["pay_1"].status = "paid"
        assert error_code(merchant.call("PerformTransaction", id=ID_A)) == -31008
        assert result(merchant.call("CheckTransaction", id=ID_A))["state"] == 1

    def test_statement_lists_created_transactions_in_payme_time_order(self, merchant: InMemoryMerchant) -> None:
        merchant.create(ID_B, "pay_2", 250_000, time=PAYME_TIME + 10)
        merchant.create(ID_A, "pay_1", 500_000, time=PAYME_TIME)
        merchant.create("65a1b2c3d4e5f60718293a4d", "pay_3", 1)  # unknown order: never stored
        rows = result(merchant.call("GetStatement", **{"from": PAYME_TIME, "to": PAYME_TIME + 10}))["transactions"]
        assert [(row["id"], row["account"], row["amount"]) for row in rows] == [
            (ID_A, {"order_id": "pay_1"}, 500_000),
            (ID_B, {"order_id": "pay_2"}, 250_000),
        ]
        assert result(merchant.call("GetStatement", **{"from": 0, "to": PAYME_TIME - 1})) == {"transactions": []}


class TestSandboxTimeout:
    @pytest.mark.parametrize(("age", "expired"), [(TIMEOUT_MS - 1, False), (TIMEOUT_MS, True), (TIMEOUT_MS + 1, True)])
    def test_perform_at_the_12_hour_boundary(self, merchant: InMemoryMerchant, age: int, expired: bool) -> None:
        merchant.create(ID_A)
        merchant.now_ms = PAYME_TIME + age
        answer = merchant.call("PerformTransaction", id=ID_A)
        if not expired:
            assert result(answer)["state"] == 2
            return
        assert error_code(answer) == -31008
        check = result(merchant.call("CheckTransaction", id=ID_A))
        assert (check["state"], check["reason"], check["cancel_time"]) == (-1, 4, PAYME_TIME + age)
        assert merchant.payments["pay_1"].status == "pending"
        merchant.now_ms += 5_000
        # Payme then cancels it itself: the stored cancel is the answer.
        cancel = result(merchant.call("CancelTransaction", id=ID_A, reason=4))
        assert (cancel["state"], cancel["cancel_time"]) == (-1, PAYME_TIME + age)

    @pytest.mark.parametrize(("age", "expired"), [(TIMEOUT_MS - 1, False), (TIMEOUT_MS, True), (TIMEOUT_MS + 1, True)])
    def test_repeated_create_at_the_12_hour_boundary(self, merchant: InMemoryMerchant, age: int, expired: bool) -> None:
        first = merchant.create(ID_A)
        merchant.now_ms = PAYME_TIME + age
        repeat = merchant.create(ID_A)
        if expired:
            assert error_code(repeat) == -31008
            assert merchant.transactions[ID_A].reason == 4
        else:
            assert json.loads(repeat)["result"] == json.loads(first)["result"]

    def test_new_create_with_an_old_time_is_refused(self, merchant: InMemoryMerchant) -> None:
        merchant.now_ms = PAYME_TIME + TIMEOUT_MS
        assert error_code(merchant.create(ID_A)) == -31008
        assert merchant.transactions == {}


class TestSandboxErrors:
    @pytest.mark.parametrize("method", ["PerformTransaction", "CheckTransaction"])
    def test_unknown_transaction_is_31003(self, merchant: InMemoryMerchant, method: str) -> None:
        assert error_code(merchant.call(method, id=ID_A)) == -31003

    def test_unknown_transaction_cancel_is_31003(self, merchant: InMemoryMerchant) -> None:
        assert error_code(merchant.call("CancelTransaction", id=ID_A, reason=1)) == -31003

    @pytest.mark.parametrize("method", ["CheckPerformTransaction", "CreateTransaction"])
    def test_wrong_amount_is_31001(self, merchant: InMemoryMerchant, method: str) -> None:
        answer = merchant.call(method, id=ID_A, time=PAYME_TIME, amount=499_999, account={"order_id": "pay_1"})
        assert error_code(answer) == -31001
        assert merchant.transactions == {}

    @pytest.mark.parametrize("method", ["CheckPerformTransaction", "CreateTransaction"])
    def test_unknown_order_is_31050_naming_the_field(self, merchant: InMemoryMerchant, method: str) -> None:
        answer = merchant.call(method, id=ID_A, time=PAYME_TIME, amount=500_000, account={"order_id": "pay_404"})
        error = json.loads(answer)["error"]
        assert (error["code"], error["data"]) == (-31050, "order_id")
        assert set(error["message"]) == {"ru", "uz", "en"}

    @pytest.mark.parametrize("body", [b"{", b"", b"\x00", b'{"method": "CheckTransaction", "params": {}, "id": 1'])
    def test_malformed_json_is_32700_even_before_auth(self, merchant: InMemoryMerchant, body: bytes) -> None:
        answer = merchant.handle(body, None)
        assert error_code(answer) == -32700
        assert json.loads(answer)["id"] is None

    @pytest.mark.parametrize(
        "authorization", ["", basic("wrong-key"), basic(KEY, login="Payme"), "Basic " + KEY, "Bearer " + KEY]
    )
    @pytest.mark.parametrize("method", ["CheckPerformTransaction", "CreateTransaction", "NoSuchMethod"])
    def test_bad_credentials_are_32504_whatever_the_method(
        self, merchant: InMemoryMerchant, authorization: str, method: str
    ) -> None:
        answer = merchant.call(method, authorization, amount=1)
        assert error_code(answer) == -32504
        assert json.loads(answer)["id"] == 1000
        assert KEY.encode() not in answer

    def test_unknown_method_is_32601_naming_it(self, merchant: InMemoryMerchant) -> None:
        error = json.loads(merchant.call("SetFiscalDatum", id=ID_A))["error"]
        assert (error["code"], error["data"]) == (-32601, "SetFiscalDatum")

    def test_change_password_replaces_the_key(self, merchant: InMemoryMerchant) -> None:
        old = basic(KEY)
        assert result(merchant.call("ChangePassword", password="NEW_KEY_0123456789")) == {"success": True}
        assert error_code(merchant.call("CheckTransaction", old, id=ID_A)) == -32504
        assert error_code(merchant.call("CheckTransaction", id=ID_A)) == -31003
