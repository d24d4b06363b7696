"""``POST /billing/click/prepare`` and ``/complete`` on real PostgreSQL: a payment reserved, confirmed and
published once; cancels; repeats; both paths take both actions; the order must be the account's."""

from __future__ import annotations

from typing import Any

import pytest
from providers_svc.db.click import ClickReservationRow
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import ClickShop, signed_form

pytestmark = pytest.mark.postgres


async def reservations(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        table = ClickReservationRow.__table__
        return list((await conn.execute(select(table).order_by(table.c.id))).mappings().all())


class TestPayment:
    async def test_prepare_then_complete_succeeds_once(
        self, shop: ClickShop, db_read: Any, engine: AsyncEngine
    ) -> None:
        payment = await shop.start(amount=100000)
        pay = payment["payment_id"]
        prepared = await shop.prepare(pay, amount="1000")
        assert prepared["error"] == 0, prepared
        assert prepared["error_note"] == "Success"
        assert prepared["click_trans_id"] == 9001
        assert prepared["merchant_trans_id"] == pay
        prepare_id = prepared["merchant_prepare_id"]
        assert isinstance(prepare_id, int)
        [reservation] = await reservations(engine)
        assert reservation["state"] == "prepared"
        assert reservation["id"] == prepare_id
        assert reservation["account_id"] == shop.account_id
        assert (await db_read("transactions"))[0]["status"] == "pending"

        done = await shop.complete(pay, prepare_id, amount="1000.00")
        assert done == {
            "click_trans_id": 9001,
            "merchant_trans_id": pay,
            "merchant_confirm_id": prepare_id,
            "error": 0,
            "error_note": "Success",
        }
        [txn] = await db_read("transactions")
        assert txn["status"] == "succeeded"
        assert txn["provider_reference"] == "77001"
        [event] = await db_read("outbox")
        assert event["routing_key"] == "providers.provider.payment.succeeded.v1"
        assert (await reservations(engine))[0]["state"] == "confirmed"

        # Click repeats the Complete: -4 with the same confirm id, nothing more published.
        again = await shop.complete(pay, prepare_id, amount="1000.00")
        assert again["error"] == -4
        assert again["merchant_confirm_id"] == prepare_id
        assert len(await db_read("outbox")) == 1
        # And a repeated Prepare of the paid attempt: -4 too.
        assert (await shop.prepare(pay, amount="1000"))["error"] == -4

    async def test_identical_repeats_of_prepare_answer_the_same(self, shop: ClickShop, engine: AsyncEngine) -> None:
        pay = (await shop.start())["payment_id"]
        form = signed_form("0", merchant_trans_id=pay)
        first, second = await shop.post(form), await shop.post(form)
        assert first == second
        assert first["error"] == 0
        assert len(await reservations(engine)) == 1

    @pytest.mark.parametrize(("action", "path"), [("0", "/billing/click/complete"), ("1", "/billing/click/prepare")])
    async def test_the_action_decides_not_the_path(self, shop: ClickShop, action: str, path: str) -> None:
        pay = (await shop.start())["payment_id"]
        prepared = await shop.post(signed_form("0", merchant_trans_id=pay), path if action == "0" else None)
        assert prepared["error"] == 0
        assert "merchant_prepare_id" in prepared
        form = signed_form("1", merchant_trans_id=pay, merchant_prepare_id=str(prepared["merchant_prepare_id"]))
        done = await shop.post(form, path if action == "1" else None)
        assert done["error"] == 0
        assert "merchant_confirm_id" in done

    async def test_a_cancel_releases_the_reservation_and_the_payer_may_pay_again(
        self, shop: ClickShop, db_read: Any, engine: AsyncEngine
    ) -> None:
        pay = (await shop.start())["payment_id"]
        prepared = await shop.prepare(pay)
        cancelled = await shop.complete(pay, prepared["merchant_prepare_id"], error="-5017", error_note="No funds")
        assert cancelled["error"] == -9
        assert cancelled["error_note"] == "Transaction cancelled"
        assert (await reservations(engine))[0]["state"] == "cancelled"
        # The payment stays payable (Click's cancel is of one attempt): no outcome published.
        assert (await db_read("transactions"))[0]["status"] == "pending"
        assert await db_read("outbox") == []
        # Completing the cancelled attempt is refused; a new attempt pays.
        assert (await shop.complete(pay, prepared["merchant_prepare_id"]))["error"] == -9
        second = await shop.prepare(pay, click_trans_id="9002", click_paydoc_id="77002")
        assert second["error"] == 0
        assert second["merchant_prepare_id"] != prepared["merchant_prepare_id"]
        done = await shop.complete(pay, second["merchant_prepare_id"], click_trans_id="9002", click_paydoc_id="77002")
        assert done["error"] == 0
        assert (await db_read("transactions"))[0]["status"] == "succeeded"

    async def test_a_cancelled_payment_is_not_payable(self, shop: ClickShop, db_read: Any, engine: AsyncEngine) -> None:
        payment = await shop.start()
        pay = payment["payment_id"]
        prepared = await shop.prepare(pay)
        resp = await shop.client.post(f"/internal/payments/{pay}/cancel", headers=shop.internal_headers(shop.tenant))
        assert resp.status == 200, await resp.text()
        # Money taken at Click for an order we gave up on: refused with -9, released, and evidence kept.
        done = await shop.complete(pay, prepared["merchant_prepare_id"])
        assert done["error"] == -9
        assert (await reservations(engine))[0]["state"] == "cancelled"
        [anomaly] = await db_read("anomalies")
        assert anomaly["kind"] == "success_for_final_payment"
        assert (await db_read("transactions"))[0]["status"] == "cancelled"
        assert [o["routing_key"] for o in await db_read("outbox")] == ["providers.provider.anomaly.recorded.v1"]
        # A new attempt is refused at Prepare.
        assert (await shop.prepare(pay, click_trans_id="9002"))["error"] == -9

    async def test_an_expired_payment_is_not_payable(self, shop: ClickShop, engine: AsyncEngine) -> None:
        from datetime import UTC, datetime, timedelta

        past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
        pay = (await shop.start(expires_at=past))["payment_id"]
        assert (await shop.prepare(pay))["error"] == -9
        assert await reservations(engine) == []


class TestTheOrderMustBeTheAccounts:
    async def test_another_accounts_order_is_unknown(
        self, shop: ClickShop, internal_headers: Any, db_read: Any
    ) -> None:
        from .conftest import add_click_account

        other = ClickShop(shop.client, internal_headers, "ten_clickother00001")
        creds = {"service_id": "555", "merchant_id": "1", "merchant_user_id": "2", "secret_key": "other-secret"}
        await add_click_account(shop.client, internal_headers, other.tenant, credentials=creds)
        pay = (await other.start())["payment_id"]
        # Signed correctly by the first account, naming the other account's order.
        answer = await shop.prepare(pay)
        assert answer["error"] == -5
        assert await db_read("outbox") == []

    async def test_a_sandbox_payment_is_unknown_to_click(
        self, shop: ClickShop, start_payment: Any, db_read: Any
    ) -> None:
        sandbox = await start_payment(shop.client, tenant_id=shop.tenant)
        assert (await shop.prepare(sandbox["payment_id"], amount="50.00"))["error"] == -5


class TestLiveAndTest:
    async def test_a_production_account_pays_a_live_tenant(
        self, click_client: Any, internal_headers: Any, db_read: Any
    ) -> None:
        tenant = "ten_clicklive000001"
        admin = internal_headers(None, issuer="gateway")
        resp = await click_client.post(
            "/admin/provider-accounts",
            json={"provider": "click", "name": "Live", "environment": "production", "currencies": ["UZS"],
                  "credentials": {"service_id": "111", "merchant_id": "222", "merchant_user_id": "333",
                                  "secret_key": "click-test-secret"}},
            headers=admin,
        )  # fmt: skip
        assert resp.status == 201, await resp.text()
        account_id = (await resp.json())["id"]
        resp = await click_client.put(
            f"/admin/tenants/{tenant}/provider-accounts/click",
            json={"provider_account_id": account_id},
            headers=internal_headers(tenant, issuer="gateway", livemode=True),
        )
        assert resp.status == 200, await resp.text()
        live = ClickShop(click_client, lambda t: internal_headers(t, livemode=True), tenant)
        payment = await live.start(amount=5000000)
        assert payment["redirect_url"] == (
            "https://my.click.uz/services/pay?service_id=111&merchant_id=222&amount=50000.00"
            f"&transaction_param={payment['payment_id']}&return_url=http%3A%2F%2F127.0.0.1%3A8080%2Fc%2Ftok_1%2Freturn"
        )
        prepared = await live.prepare(payment["payment_id"], amount="50000.00")
        assert prepared["error"] == 0
        done = await live.complete(payment["payment_id"], prepared["merchant_prepare_id"], amount="50000.00")
        assert done["error"] == 0
        [txn] = await db_read("transactions")
        assert txn["status"] == "succeeded"
        assert txn["livemode"] is True

    async def test_a_test_accounts_word_never_moves_a_live_transaction(
        self, shop: ClickShop, engine: AsyncEngine, db_read: Any
    ) -> None:
        from datetime import UTC, datetime, timedelta

        from providers_svc.db.models import ProviderTransactionRow
        from sqlalchemy import insert

        now = datetime.now(UTC)
        async with engine.begin() as conn:
            await conn.execute(
                insert(ProviderTransactionRow).values(
                    id="ptx_livetestacct01", tenant_id="ten_live", payment_id="pay_livetest1", provider="click",
                    amount=100000, currency="UZS", livemode=True, status="pending", account_id=shop.account_id,
                    expires_at=now + timedelta(minutes=5), created_at=now, updated_at=now,
                )
            )  # fmt: skip
        assert (await shop.prepare("pay_livetest1"))["error"] == -5
        assert await reservations(engine) == []
        assert (await db_read("transactions"))[0]["status"] == "pending"


class TestAccountCache:
    async def test_a_rotated_secret_is_used_by_the_next_callback(self, shop: ClickShop, internal_headers: Any) -> None:
        pay = (await shop.start())["payment_id"]
        assert (await shop.prepare(pay))["error"] == 0  # the account is now cached
        resp = await shop.client.patch(
            f"/admin/provider-accounts/{shop.account_id}",
            json={"credentials": {"secret_key": "rotated-secret"}},
            headers=internal_headers(None, issuer="gateway"),
        )
        assert resp.status == 200, await resp.text()
        old = signed_form("0", merchant_trans_id=pay, click_trans_id="9002")
        assert (await shop.post(old))["error"] == -1
        new = signed_form("0", secret="rotated-secret", merchant_trans_id=pay, click_trans_id="9002")
        assert (await shop.post(new))["error"] == 0

    async def test_a_deleted_account_is_forgotten(self, shop: ClickShop, internal_headers: Any) -> None:
        pay = (await shop.start())["payment_id"]
        assert (await shop.prepare(pay))["error"] == 0
        admin = internal_headers(None, issuer="gateway")
        headers = internal_headers(shop.tenant, issuer="gateway")
        assert (
            await shop.client.delete(f"/admin/tenants/{shop.tenant}/provider-accounts/click", headers=headers)
        ).status == 200
        assert (await shop.client.delete(f"/admin/provider-accounts/{shop.account_id}", headers=admin)).status == 200
        assert (await shop.prepare(pay))["error"] == -1
