"""The Octo client against the fake Octo server, over loopback HTTP: one- and two-stage payments,
the status call, decisions, refunds deduped by shop_refund_id, and every failure mapped to the adapter
interface's errors without the shop secret in any of them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from providers_svc.adapters.base import ProviderRejectedError, ProviderUnavailableError
from providers_svc.adapters.octo_client import OctoClient
from providers_svc.protocols.octo.requests import PreparePayment, ShopCredentials
from providers_svc.simulators.octo import OctoBook, create_octo_app

SECRET = "octo-shop-secret-for-tests"
SHOP = ShopCredentials(shop_id=27, secret=SECRET)


def _payment(txn: str = "ptx_1", *, amount: int = 150010, auto_capture: bool = True) -> PreparePayment:
    return PreparePayment(
        shop_transaction_id=txn,
        amount=amount,
        currency="UZS",
        description="Two books",
        return_url="http://127.0.0.1:9/return",
        notify_url="http://127.0.0.1:9/billing/octo",
        auto_capture=auto_capture,
        test=True,
        init_time=datetime.now(UTC),
    )


@pytest.fixture
async def octo(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> tuple[OctoBook, str]:
    book = OctoBook(shops={27: SECRET})
    server = await aiohttp_server(create_octo_app(book))
    return book, str(server.make_url("")).rstrip("/")


@pytest.fixture
async def session() -> Any:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
        yield s


class TestPayments:
    async def test_one_stage_payment_and_the_status_call(self, octo: tuple[OctoBook, str], session: Any) -> None:
        book, url = octo
        client = OctoClient(lambda: session, url, SHOP)
        created = await client.prepare(_payment())
        assert created.status == "created" and created.pay_url and created.pay_url.endswith(created.octo_payment_uuid)
        assert book.payments[(27, "ptx_1")].total_sum == Decimal("1500.1")  # sent in major units, exactly
        assert (await client.prepare(_payment())).octo_payment_uuid == created.octo_payment_uuid  # deduped
        book.pay(created.octo_payment_uuid)
        assert (await client.status("ptx_1")).status == "succeeded"

    async def test_two_stage_capture_and_cancel(self, octo: tuple[OctoBook, str], session: Any) -> None:
        book, url = octo
        client = OctoClient(lambda: session, url, SHOP)
        first = await client.prepare(_payment("ptx_1", auto_capture=False))
        second = await client.prepare(_payment("ptx_2", auto_capture=False))
        book.pay(first.octo_payment_uuid)
        book.pay(second.octo_payment_uuid)
        assert (await client.status("ptx_1")).status == "waiting_for_capture"
        assert (await client.set_accept(first.octo_payment_uuid, "capture")).status == "succeeded"
        assert (await client.set_accept(first.octo_payment_uuid, "capture")).status == "succeeded"  # a repeat
        assert (await client.set_accept(second.octo_payment_uuid, "cancel")).status == "canceled"
        with pytest.raises(ProviderRejectedError):
            await client.set_accept(second.octo_payment_uuid, "capture")  # past deciding

    async def test_refunds_are_deduped_and_bounded(self, octo: tuple[OctoBook, str], session: Any) -> None:
        book, url = octo
        client = OctoClient(lambda: session, url, SHOP)
        payment = await client.prepare(_payment(amount=100000))
        book.pay(payment.octo_payment_uuid)
        assert await client.refund(payment.octo_payment_uuid, "rfnd_1", 60000, "UZS") == "succeeded"
        assert await client.refund(payment.octo_payment_uuid, "rfnd_1", 60000, "UZS") == "succeeded"  # same one
        with pytest.raises(ProviderRejectedError) as info:
            await client.refund(payment.octo_payment_uuid, "rfnd_2", 60000, "UZS")  # beyond what remains
        assert info.value.code == "octo_3"
        assert sum(book.payments[(27, "ptx_1")].refunds.values()) == Decimal("600")


class TestFailures:
    async def test_a_wrong_secret_is_octos_refusal_without_the_secret(
        self, octo: tuple[OctoBook, str], session: Any
    ) -> None:
        _, url = octo
        client = OctoClient(lambda: session, url, ShopCredentials(shop_id=27, secret="wrong-secret-value"))
        with pytest.raises(ProviderRejectedError) as info:
            await client.prepare(_payment())
        assert info.value.code == "octo_2"
        assert "wrong-secret-value" not in str(info.value) and SECRET not in str(info.value)

    async def test_unreachable_is_unavailable(self, session: Any, unused_tcp_port: int) -> None:
        client = OctoClient(lambda: session, f"http://127.0.0.1:{unused_tcp_port}", SHOP)
        with pytest.raises(ProviderUnavailableError) as info:
            await client.status("ptx_1")
        assert SECRET not in str(info.value)

    @pytest.mark.parametrize(
        "reply",
        [
            web.Response(status=502, text="bad gateway"),
            web.Response(status=200, text="<html>maintenance</html>"),
            web.json_response({"error": 0, "data": {"status": "created"}}),
            web.json_response({"error": "zero"}),
        ],
    )
    async def test_an_answer_outside_the_protocol_is_unavailable(
        self, aiohttp_server: Callable[..., Awaitable[TestServer]], session: Any, reply: web.Response
    ) -> None:
        async def broken(_request: web.Request) -> web.Response:
            return reply

        app = web.Application()
        app.router.add_post("/prepare_payment", broken)
        server = await aiohttp_server(app)
        client = OctoClient(lambda: session, str(server.make_url("")), SHOP)
        with pytest.raises(ProviderUnavailableError):
            await client.status("ptx_1")
