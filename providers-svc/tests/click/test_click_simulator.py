"""The Click simulator: its payer page plays Click against our real endpoints over HTTP (the app's own
server stands in for the gateway), and its Merchant API answers the adapter's status and reversal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiohttp import web
from billing_runtime.bus import MemoryBus
from billing_runtime.testing import free_port
from providers_svc.adapters.base import ProviderRejectedError, ProviderUnavailableError
from providers_svc.adapters.click import ClickPayments
from providers_svc.app import create_app
from providers_svc.db.click import ClickReservationRow
from providers_svc.db.models import ProviderTransactionRow
from providers_svc.domain.transactions import Transaction, TransactionStatus
from providers_svc.keys import directory_key, metrics_key, uow_factory_key
from providers_svc.settings import Settings
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import ClickShop, Client, add_click_account

pytestmark = pytest.mark.postgres

TENANT = "ten_clicksimulated01"
RETURN_URL = "http://127.0.0.1:8080/c/tok_1/return"


@pytest.fixture
async def own_gateway(aiohttp_client: Any, engine: AsyncEngine, bus: MemoryBus, settings: Settings) -> Client:
    """The app on a port chosen first, with ``public_gateway_url`` pointing at itself."""
    port = free_port()
    app_settings = settings.model_copy(
        update={"enabled_providers": ["sandbox", "click"], "public_gateway_url": f"http://127.0.0.1:{port}"}
    )
    client: Client = await aiohttp_client(
        create_app(app_settings, engine=engine, bus=bus, roles=("api",)), server_kwargs={"port": port}
    )
    return client


@pytest.fixture
def shop(own_gateway: Client, internal_headers: Callable[..., dict[str, str]]) -> ClickShop:
    return ClickShop(own_gateway, internal_headers, TENANT)


async def _states(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(ClickReservationRow.state).order_by(ClickReservationRow.id))
        return list(rows.scalars())


async def _txn(client: Client, ptx: str) -> Transaction:
    async with client.app[uow_factory_key]() as uow:
        txn = await uow.transactions.get(ptx)
    assert txn is not None
    return txn


async def _adapter(client: Client, ptx: str) -> ClickPayments:
    adapter = await client.app[directory_key].for_transaction(await _txn(client, ptx))
    assert isinstance(adapter, ClickPayments)
    return adapter


def _path(payment: dict[str, Any]) -> str:
    url = str(payment["redirect_url"])
    return url[url.index("/simulators/") :]


class TestPayerPage:
    async def test_a_test_tenant_without_an_account_is_sent_to_the_simulator(self, shop: ClickShop) -> None:
        payment = await shop.start(amount=123456)
        assert payment["redirect_url"] == (
            f"{str(shop.client.make_url('')).rstrip('/')}/simulators/click/pay/{payment['provider_transaction_id']}"
        )
        page = await shop.client.get(_path(payment))
        assert page.status == 200
        html = await page.text()
        assert "1234.56 UZS" in html
        for value in ("pay", "decline", "cancel", "timeout", "forged"):
            assert f'name="outcome" value="{value}"' in html

    async def test_pay_drives_prepare_and_complete_and_the_payment_succeeds_once(
        self, shop: ClickShop, db_read: Any, engine: AsyncEngine
    ) -> None:
        payment = await shop.start()
        resp = await shop.client.post(_path(payment), data={"outcome": "pay"}, allow_redirects=False)
        assert resp.status == 303, await resp.text()
        assert resp.headers["Location"] == RETURN_URL
        [txn] = await db_read("transactions")
        assert txn["status"] == "succeeded"
        # Complete was delivered twice (Click's retry): one outcome published.
        assert [o["routing_key"] for o in await db_read("outbox")] == ["providers.provider.payment.succeeded.v1"]
        assert await _states(engine) == ["confirmed"]
        metrics = shop.client.app[metrics_key]
        assert metrics.callbacks_received.labels("click", "confirmed")._value.get() == 1
        assert metrics.callbacks_received.labels("click", "already_paid")._value.get() == 1
        # The page now says so, and a second choice does nothing.
        again = await shop.client.post(_path(payment), data={"outcome": "pay"}, allow_redirects=False)
        assert again.status == 200
        assert "already been completed" in await again.text()
        assert len(await db_read("outbox")) == 1

    @pytest.mark.parametrize("outcome", ["decline", "cancel"])
    async def test_a_declined_or_cancelled_attempt_leaves_the_payment_payable(
        self, shop: ClickShop, db_read: Any, engine: AsyncEngine, outcome: str
    ) -> None:
        payment = await shop.start()
        resp = await shop.client.post(_path(payment), data={"outcome": outcome}, allow_redirects=False)
        assert resp.status == 303, await resp.text()
        assert (await db_read("transactions"))[0]["status"] == "pending"
        assert await _states(engine) == ["cancelled"]
        assert await db_read("outbox") == []
        # The payer tries again and pays.
        paid = await shop.client.post(_path(payment), data={"outcome": "pay"}, allow_redirects=False)
        assert paid.status == 303
        assert (await db_read("transactions"))[0]["status"] == "succeeded"
        assert await _states(engine) == ["cancelled", "confirmed"]

    async def test_a_timed_out_attempt_is_cancelled_by_click_and_the_payment_stays_payable(
        self, shop: ClickShop, db_read: Any, engine: AsyncEngine
    ) -> None:
        # Click sent Prepare, the payer never completed, and once its time was up (compressed here)
        # Click cancelled: Complete with error=-5017 (§1.7), answered -9, the repeat -9 as well.
        payment = await shop.start()
        resp = await shop.client.post(_path(payment), data={"outcome": "timeout"}, allow_redirects=False)
        assert resp.status == 303, await resp.text()
        assert resp.headers["Location"] == RETURN_URL
        metrics = shop.client.app[metrics_key]
        assert metrics.callbacks_received.labels("click", "reserved")._value.get() == 1
        assert metrics.callbacks_received.labels("click", "cancelled")._value.get() == 1
        assert metrics.callbacks_received.labels("click", "transaction_cancelled")._value.get() == 1
        events = await db_read("events")
        assert sorted(e["event_type"] for e in events) == ["cancel", "prepare"]
        [cancel] = [e for e in events if e["event_type"] == "cancel"]
        posted = dict(parse_qsl(cancel["payload"]))  # the Complete as Click posted it (url-encoded)
        assert (cancel["result"], posted["action"], posted["error"]) == ("cancelled", "1", "-5017")
        assert "expired" in posted["error_note"]
        # One attempt ended, not the payment: no outcome published, the transaction still pending.
        [txn] = await db_read("transactions")
        assert (txn["status"], txn["failure_code"]) == ("pending", None)
        assert await _states(engine) == ["cancelled"]
        assert await db_read("outbox") == []
        paid = await shop.client.post(_path(payment), data={"outcome": "pay"}, allow_redirects=False)
        assert paid.status == 303
        assert (await db_read("transactions"))[0]["status"] == "succeeded"
        assert await _states(engine) == ["cancelled", "confirmed"]
        assert [o["routing_key"] for o in await db_read("outbox")] == ["providers.provider.payment.succeeded.v1"]

    async def test_a_forged_prepare_is_refused_and_changes_nothing(
        self, shop: ClickShop, db_read: Any, engine: AsyncEngine
    ) -> None:
        payment = await shop.start()
        resp = await shop.client.post(_path(payment), data={"outcome": "forged"}, allow_redirects=False)
        assert resp.status == 303, await resp.text()
        assert await _states(engine) == []
        assert (await db_read("transactions"))[0]["status"] == "pending"
        assert shop.client.app[metrics_key].callbacks_rejected.labels("click", "bad_signature")._value.get() == 1

    async def test_an_unreachable_shop_shows_an_error_page(
        self, make_client: Any, internal_headers: Any, db_read: Any
    ) -> None:
        # public_gateway_url is the tests' port 9, where nothing listens.
        client = await make_client(enabled_providers=["sandbox", "click"])
        payment = await ClickShop(client, internal_headers, TENANT).start()
        resp = await client.post(_path(payment), data={"outcome": "pay"}, allow_redirects=False)
        assert resp.status == 502
        assert "unexpectedly" in await resp.text()
        assert (await db_read("transactions"))[0]["status"] == "pending"

    async def test_a_transaction_of_a_real_account_is_refused(
        self, shop: ClickShop, internal_headers: Any, engine: AsyncEngine
    ) -> None:
        await add_click_account(shop.client, internal_headers, TENANT)
        payment = await shop.start()
        assert payment["redirect_url"].startswith("https://my.click.uz/services/pay?")
        path = f"/simulators/click/pay/{payment['provider_transaction_id']}"
        assert (await shop.client.get(path)).status == 403
        resp = await shop.client.post(path, data={"outcome": "pay"}, allow_redirects=False)
        assert resp.status == 403
        assert await _states(engine) == []

    async def test_a_live_transaction_is_refused(self, shop: ClickShop, engine: AsyncEngine) -> None:
        now = datetime.now(UTC)
        async with engine.begin() as conn:
            await conn.execute(
                insert(ProviderTransactionRow).values(
                    id="ptx_livelivelive01", tenant_id="ten_live", payment_id="pay_live1", provider="click",
                    amount=100000, currency="UZS", livemode=True, status="pending",
                    account_id="pac_simulator_click", expires_at=now + timedelta(minutes=5),
                    created_at=now, updated_at=now,
                )
            )  # fmt: skip
        resp = await shop.client.post("/simulators/click/pay/ptx_livelivelive01", data={"outcome": "pay"})
        assert resp.status == 403
        assert "test payments only" in await resp.text()
        assert await _states(engine) == []

    async def test_an_unknown_transaction_and_a_bad_choice(self, shop: ClickShop) -> None:
        assert (await shop.client.get("/simulators/click/pay/ptx_nope")).status == 404
        payment = await shop.start()
        assert (await shop.client.post(_path(payment), data={"outcome": "steal"})).status == 400


class TestMerchantApi:
    async def test_status_follows_the_payment(self, shop: ClickShop) -> None:
        payment = await shop.start()
        ptx = payment["provider_transaction_id"]
        before = await (await _adapter(shop.client, ptx)).fetch_status(await _txn(shop.client, ptx))
        assert before.status is TransactionStatus.PENDING
        await shop.client.post(_path(payment), data={"outcome": "decline"}, allow_redirects=False)
        declined = await (await _adapter(shop.client, ptx)).fetch_status(await _txn(shop.client, ptx))
        assert declined.status is TransactionStatus.FAILED
        assert declined.failure_code == "click_-9"
        await shop.client.post(_path(payment), data={"outcome": "pay"}, allow_redirects=False)
        txn = await _txn(shop.client, ptx)
        paid = await (await _adapter(shop.client, ptx)).fetch_status(txn)
        assert paid.status is TransactionStatus.SUCCEEDED
        assert paid.provider_reference == txn.provider_reference

    async def test_full_reversal_of_a_paid_payment(self, shop: ClickShop) -> None:
        payment = await shop.start(amount=100000)
        ptx = payment["provider_transaction_id"]
        adapter = await _adapter(shop.client, ptx)
        with pytest.raises(ProviderRejectedError) as unpaid:
            await adapter.refund(await _txn(shop.client, ptx), refund_id="re_1", amount=100000, reason=None)
        assert unpaid.value.code == "click_not_paid"
        await shop.client.post(_path(payment), data={"outcome": "pay"}, allow_redirects=False)
        txn = await _txn(shop.client, ptx)
        with pytest.raises(ProviderRejectedError) as partial:
            await adapter.refund(txn, refund_id="re_1", amount=50000, reason=None)
        assert partial.value.code == "click_partial_refund_unsupported"
        refunded = await adapter.refund(txn, refund_id="re_1", amount=100000, reason="customer asked")
        assert refunded.status == "succeeded"
        assert refunded.provider_refund_id == txn.provider_reference

    async def test_a_payment_of_another_month_is_not_reversed(self, shop: ClickShop) -> None:
        from dataclasses import replace

        payment = await shop.start()
        ptx = payment["provider_transaction_id"]
        await shop.client.post(_path(payment), data={"outcome": "pay"}, allow_redirects=False)
        txn = await _txn(shop.client, ptx)
        old = replace(txn, updated_at=txn.updated_at - timedelta(days=62))
        with pytest.raises(ProviderRejectedError) as refused:
            await (await _adapter(shop.client, ptx)).refund(old, refund_id="re_1", amount=txn.amount, reason=None)
        assert refused.value.code == "click_reversal_period_over"

    async def test_a_wrong_auth_header_is_refused_by_the_simulator(self, shop: ClickShop) -> None:
        payment = await shop.start()
        resp = await shop.client.get(
            "/simulators/click/merchant/payment/status_by_mti/1/" + payment["payment_id"] + "/2026-12-05",
            headers={"Auth": "1:" + "0" * 40 + ":1700000000"},
        )
        assert resp.status == 401
        assert (await resp.json())["error_code"] == -1


class TestMerchantApiFailures:
    """A real account pointed at fakes outside our walls: down, failing, refusing."""

    async def _adapter_at(
        self, client: Client, internal_headers: Any, api_base: str
    ) -> tuple[ClickPayments, Transaction]:
        await add_click_account(client, internal_headers, TENANT, settings={"api_base": api_base})
        payment = await ClickShop(client, internal_headers, TENANT).start()
        ptx = payment["provider_transaction_id"]
        return await _adapter(client, ptx), await _txn(client, ptx)

    async def test_unreachable_is_unavailable(self, own_gateway: Client, internal_headers: Any) -> None:
        adapter, txn = await self._adapter_at(own_gateway, internal_headers, "http://127.0.0.1:9")
        with pytest.raises(ProviderUnavailableError):
            await adapter.fetch_status(txn)

    @pytest.mark.parametrize(
        ("status", "body", "error"),
        [
            (502, {"error_code": -500}, ProviderUnavailableError),
            (200, ["not", "an", "object"], ProviderUnavailableError),
            (400, {"error_code": -31, "error_note": "Invalid request"}, ProviderRejectedError),
            (200, {"error_code": -4046, "error_note": "Payment not found"}, ProviderRejectedError),
        ],
    )
    async def test_server_errors_and_refusals(
        self, own_gateway: Client, internal_headers: Any, aiohttp_server: Any, status: int, body: Any, error: type
    ) -> None:
        seen: list[str] = []

        async def answer(request: web.Request) -> web.Response:
            seen.append(request.headers.get("Auth", ""))
            return web.json_response(body, status=status)

        fake = web.Application()
        fake.router.add_route("*", "/{tail:.*}", answer)
        server = await aiohttp_server(fake)
        adapter, txn = await self._adapter_at(own_gateway, internal_headers, f"http://127.0.0.1:{server.port}")
        with pytest.raises(error) as raised:
            await adapter.fetch_status(txn)
        assert seen[0].startswith("333:")
        assert "click-test-secret" not in str(raised.value)
        if error is ProviderRejectedError:
            assert raised.value.code == f"click_{body['error_code']}"
