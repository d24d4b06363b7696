"""``POST /billing/octo`` on real PostgreSQL against a fake Octo: a callback is verified with the
account's secret, then Octo's own status call decides; bad input is refused (400, counted by reason)
and changes nothing; two-stage payments are captured or cancelled; repeats move money once."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from billing_runtime.bus import MemoryBus
from providers_svc.app import create_app
from providers_svc.db.models import ProviderTransactionRow
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import SECRET, UNIQUE_KEY, OctoShop, closed_port, signed

pytestmark = pytest.mark.postgres


async def _paid(shop: OctoShop, **fields: Any) -> tuple[str, str]:
    """A payment started through the account and paid by its payer at Octo: (ptx id, Octo uuid)."""
    started = await shop.start(**fields)
    ptx, uuid = started["provider_transaction_id"], started["provider_reference"]
    shop.octo.book.pay(uuid)
    return ptx, uuid


async def _unchanged(db_read: Any) -> None:
    [txn] = await db_read("transactions")
    assert txn["status"] == "pending"
    assert await db_read("events") == []
    assert await db_read("outbox") == []


class TestStart:
    async def test_the_payer_goes_to_octos_pay_page(self, shop: OctoShop, db_read: Any) -> None:
        started = await shop.start()
        uuid = started["provider_reference"]
        assert started["redirect_url"] == f"{shop.octo.url}/pay/{uuid}"
        payment = shop.octo.book.payments[(4242, started["provider_transaction_id"])]
        # Major units at Octo, a test payment (test account), one-stage by default (sent explicitly).
        assert (str(payment.total_sum), payment.test, payment.auto_capture) == ("1500.1", True, True)
        [txn] = await db_read("transactions")
        assert (txn["account_id"], txn["provider_reference"]) == (shop.account_id, uuid)


class TestSuccess:
    async def test_a_good_notify_moves_the_payment_once(self, shop: OctoShop, db_read: Any) -> None:
        ptx, uuid = await _paid(shop)
        resp = await shop.notify(signed(ptx, uuid, "succeeded"))
        assert resp.status == 200
        assert await resp.json() == {}
        [txn] = await db_read("transactions")
        assert txn["status"] == "succeeded"
        [event] = await db_read("events")
        assert (event["provider"], event["external_id"], event["result"]) == ("octo", f"{uuid}:succeeded", "applied")
        assert SECRET not in event["payload"] and "signature" not in json.loads(event["payload"])
        [row] = await db_read("outbox")
        body = json.loads(row["body"])
        assert body["event_type"] == "provider.payment.succeeded"
        assert (body["data"]["amount"], body["data"]["currency"]) == (150010, "UZS")
        assert body["data"]["provider_reference"] == uuid
        # A repeat is acknowledged and moves nothing.
        for _ in range(2):
            again = await shop.notify(signed(ptx, uuid, "succeeded"))
            assert again.status == 200
        assert len(await db_read("events")) == 1 and len(await db_read("outbox")) == 1
        metrics = await shop.metrics()
        assert 'provider_callbacks_total{provider="octo",result="applied"} 1.0' in metrics
        assert 'provider_callbacks_total{provider="octo",result="duplicate"} 2.0' in metrics

    async def test_twenty_concurrent_identical_notifies_emit_one_event(self, shop: OctoShop, db_read: Any) -> None:
        ptx, uuid = await _paid(shop)
        body = signed(ptx, uuid, "succeeded")
        answers = await asyncio.gather(*(shop.notify(body) for _ in range(20)))
        assert [a.status for a in answers] == [200] * 20
        [txn] = await db_read("transactions")
        assert txn["status"] == "succeeded"
        assert len(await db_read("events")) == 1
        assert len(await db_read("outbox")) == 1

    async def test_a_cancelled_payment_fails(self, shop: OctoShop, db_read: Any) -> None:
        started = await shop.start()
        ptx, uuid = started["provider_transaction_id"], started["provider_reference"]
        shop.octo.book.payments[(4242, ptx)].status = "canceled"  # the payer's card was declined
        resp = await shop.notify(signed(ptx, uuid, "canceled"))
        assert resp.status == 200
        [txn] = await db_read("transactions")
        assert (txn["status"], txn["failure_code"]) == ("failed", "octo_canceled")
        [row] = await db_read("outbox")
        assert json.loads(row["body"])["event_type"] == "provider.payment.failed"


class TestStatusDecides:
    async def test_a_lying_success_callback_moves_nothing(self, shop: OctoShop, db_read: Any) -> None:
        started = await shop.start()  # never paid: Octo says `created`
        ptx, uuid = started["provider_transaction_id"], started["provider_reference"]
        resp = await shop.notify(signed(ptx, uuid, "succeeded"))
        assert resp.status == 200
        await _unchanged(db_read)

    async def test_a_decline_callback_for_a_paid_payment_records_the_success(
        self, shop: OctoShop, db_read: Any
    ) -> None:
        ptx, uuid = await _paid(shop)
        assert (await shop.notify(signed(ptx, uuid, "canceled"))).status == 200
        [txn] = await db_read("transactions")
        assert txn["status"] == "succeeded"

    async def test_octo_unreachable_is_retried_later(self, shop: OctoShop, db_read: Any) -> None:
        ptx, uuid = await _paid(shop)
        await shop.octo.server.close()
        resp = await shop.notify(signed(ptx, uuid, "succeeded"))
        assert resp.status == 503
        await _unchanged(db_read)


class TestLivemode:
    async def test_a_test_accounts_word_never_moves_a_live_transaction(
        self, shop: OctoShop, db_read: Any, engine: AsyncEngine
    ) -> None:
        ptx, uuid = await _paid(shop)
        async with engine.begin() as conn:
            await conn.execute(update(ProviderTransactionRow).values(livemode=True))
        resp = await shop.notify(signed(ptx, uuid, "succeeded"))
        assert (resp.status, await resp.json()) == (400, {"error": "livemode_refused"})
        await _unchanged(db_read)


class TestTwoStage:
    async def test_waiting_for_capture_is_captured(self, shop_factory: Any, db_read: Any) -> None:
        shop = await shop_factory(auto_capture="false")
        ptx, uuid = await _paid(shop)
        payment = shop.octo.book.payments[(4242, ptx)]
        assert (payment.auto_capture, payment.status) == (False, "waiting_for_capture")
        resp = await shop.notify(signed(ptx, uuid, "waiting_for_capture"))
        assert resp.status == 200
        assert await resp.json() == {"accept_status": "capture"}
        assert payment.status == "succeeded"
        [txn] = await db_read("transactions")
        assert txn["status"] == "succeeded"
        # Octo sends it again until it has a decision: the same decision, nothing moves twice.
        again = await shop.notify(signed(ptx, uuid, "waiting_for_capture"))
        assert await again.json() == {"accept_status": "capture"}
        assert (await shop.notify(signed(ptx, uuid, "succeeded"))).status == 200
        assert len(await db_read("outbox")) == 1

    async def test_an_expired_transaction_is_cancelled(
        self, shop_factory: Any, db_read: Any, engine: AsyncEngine
    ) -> None:
        shop = await shop_factory(auto_capture="false")
        ptx, uuid = await _paid(shop)
        async with engine.begin() as conn:
            past = datetime.now(UTC) - timedelta(minutes=1)
            await conn.execute(
                update(ProviderTransactionRow).where(ProviderTransactionRow.id == ptx).values(expires_at=past)
            )
        resp = await shop.notify(signed(ptx, uuid, "waiting_for_capture"))
        assert await resp.json() == {"accept_status": "cancel"}
        assert shop.octo.book.payments[(4242, ptx)].status == "canceled"
        [txn] = await db_read("transactions")
        assert txn["status"] == "failed"

    async def test_a_cancelled_payment_cancels_the_hold(self, shop_factory: Any, db_read: Any) -> None:
        shop = await shop_factory(auto_capture="false")
        started = await shop.start()
        ptx, uuid = started["provider_transaction_id"], started["provider_reference"]
        shop.octo.book.pay(uuid)
        resp = await shop.client.post(
            f"/internal/payments/{started['payment_id']}/cancel", headers=shop.internal_headers()
        )
        assert resp.status == 200, await resp.text()
        assert shop.octo.book.payments[(4242, ptx)].status == "canceled"
        late = await shop.notify(signed(ptx, uuid, "waiting_for_capture"))
        assert await late.json() == {"accept_status": "cancel"}
        [txn] = await db_read("transactions")
        assert txn["status"] == "cancelled"


class TestSignatureFormula:
    async def test_the_unique_key_reading_when_the_account_says_so(self, shop_factory: Any, db_read: Any) -> None:
        shop = await shop_factory(signature_formula="unique_key", credentials={"unique_key": UNIQUE_KEY})
        ptx, uuid = await _paid(shop)
        documented = await shop.notify(signed(ptx, uuid, "succeeded"))
        assert (documented.status, await documented.json()) == (400, {"error": "bad_signature"})
        # The shop secret is not the unique key: signed with it, the reading is refused too.
        with_secret = await shop.notify(signed(ptx, uuid, "succeeded", formula="unique_key"))
        assert (with_secret.status, await with_secret.json()) == (400, {"error": "bad_signature"})
        await _unchanged(db_read)
        resp = await shop.notify(signed(ptx, uuid, "succeeded", secret=UNIQUE_KEY, formula="unique_key"))
        assert resp.status == 200
        [txn] = await db_read("transactions")
        assert txn["status"] == "succeeded"

    async def test_an_account_stored_before_the_unique_key_credential_keeps_the_secret(
        self, shop: OctoShop, engine: AsyncEngine, db_read: Any
    ) -> None:
        # Such an account (unique_key reading, no unique_key credential) cannot be made through the API
        # any more; set the reading by hand, as the accounts stored before are.
        async with engine.begin() as conn:
            await conn.exec_driver_sql(
                'UPDATE provider_accounts SET settings = settings || \'{"signature_formula": "unique_key"}\''
                " WHERE id = $1",
                (shop.account_id,),
            )
        ptx, uuid = await _paid(shop)
        resp = await shop.notify(signed(ptx, uuid, "succeeded", formula="unique_key"))
        assert resp.status == 200, await resp.text()
        [txn] = await db_read("transactions")
        assert txn["status"] == "succeeded"


def _bad_inputs(ptx: str, uuid: str) -> list[tuple[str, bytes | dict[str, Any]]]:
    good = signed(ptx, uuid, "succeeded")
    return [
        ("bad_json", b'{"shop_transaction_id": '),
        ("bad_json", b"[1, 2, 3]"),
        ("bad_json", b"\xff\xfe not json"),
        ("bad_json", b'{"total_sum": ' + b"9" * 5000 + b"}"),  # past Python's integer-digit limit
        ("missing_field", {k: v for k, v in good.items() if k != "signature"}),
        ("missing_field", {**good, "status": 1}),  # wrong type
        ("missing_field", {**good, "octo_payment_UUID": ["x"]}),
        ("missing_field", {**good, "shop_transaction_id": "x" * 300}),
        ("bad_amount", {**good, "total_sum": 10**30}),  # huge
        ("bad_amount", {**good, "total_sum": 1e308 * 10}),  # inf
        ("bad_amount", {**good, "total_sum": "a lot"}),
        ("bad_amount", {**good, "total_sum": 1500.123}),
        ("bad_signature", signed(ptx, uuid, "succeeded", secret="forged-secret")),
        ("bad_signature", {**signed(ptx, uuid, "created"), "status": "succeeded"}),  # stale
        ("bad_signature", {**good, "hash_key": None}),
        ("bad_signature", {**good, "signature": "0" * 40}),
        ("unknown_transaction", signed("ptx_nosuchtransaction", uuid, "succeeded")),
        ("unknown_shop", {**good, "octo_shop_id": 999}),  # credentials of another shop
        ("unknown_payment", signed(ptx, "00000000-0000-4000-8000-000000000000", "succeeded")),
    ]


class TestBadInput:
    async def test_refused_counted_and_nothing_changes(self, shop: OctoShop, db_read: Any) -> None:
        ptx, uuid = await _paid(shop)
        cases = _bad_inputs(ptx, uuid)
        for reason, body in cases:
            resp = await shop.notify(body)
            assert resp.status == 400, (reason, await resp.text())
            assert await resp.json() == {"error": reason}
        await _unchanged(db_read)
        metrics = await shop.metrics()
        for reason in {r for r, _ in cases}:
            count = sum(1 for r, _ in cases if r == reason)
            line = f'provider_callbacks_rejected_total{{provider="octo",reason="{reason}"}} {float(count)}'
            assert line in metrics, line
        assert SECRET not in metrics
        # What was refused never blocks the real callback.
        assert (await shop.notify(signed(ptx, uuid, "succeeded"))).status == 200
        [txn] = await db_read("transactions")
        assert txn["status"] == "succeeded"

    async def test_another_providers_transaction_is_unknown(
        self, shop: OctoShop, start_payment: Any, db_read: Any
    ) -> None:
        sandbox = await start_payment(shop.client)
        ptx = sandbox["provider_transaction_id"]
        resp = await shop.notify(signed(ptx, "00000000-0000-4000-8000-000000000000", "succeeded"))
        assert (resp.status, await resp.json()) == (400, {"error": "unknown_transaction"})
        [txn] = await db_read("transactions")
        assert txn["status"] == "pending"


class TestDatabaseDown:
    async def test_octo_is_asked_to_retry(self, aiohttp_client: Any, settings: Any) -> None:
        down = settings.model_copy(
            update={
                "database_url": f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/providers",
                "enabled_providers": ["sandbox", "octo"],
            }
        )
        client = await aiohttp_client(create_app(down, bus=MemoryBus(), roles=("api",)))
        body = signed("ptx_whatever", "00000000-0000-4000-8000-000000000000", "succeeded")
        resp = await client.post("/billing/octo", json=body)
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "5"
        assert await resp.json() == {"error": "temporarily_unavailable"}
        # The simulator's payer page and fake API answer 503 too, never a 500.
        assert (await client.get("/simulators/octo/pay/00000000-0000-4000-8000-000000000000")).status == 503
        fake = await client.post("/simulators/octo/prepare_payment", json={"octo_shop_id": 1, "octo_secret": "x"})
        assert fake.status == 503
