"""Concurrent deliveries move money once; bad input gets Click's own error answer (HTTP 200), never a
500, never a change, and is counted in ``provider_callbacks_rejected_total{provider="click",reason}``;
a database outage answers -7."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from billing_runtime.bus import MemoryBus
from providers_svc.app import create_app
from providers_svc.db.click import ClickReservationRow
from providers_svc.keys import metrics_key
from providers_svc.settings import Settings
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import ClickShop, signed_form

pytestmark = pytest.mark.postgres


def _rejected(shop: ClickShop, reason: str) -> float:
    value: float = shop.client.app[metrics_key].callbacks_rejected.labels("click", reason)._value.get()
    return value


async def _reservations(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(ClickReservationRow))).scalar_one())


class TestConcurrency:
    async def test_twenty_identical_completes_move_money_once(
        self, shop: ClickShop, db_read: Any, engine: AsyncEngine
    ) -> None:
        pay = (await shop.start())["payment_id"]
        prepare_id = (await shop.prepare(pay))["merchant_prepare_id"]
        form = signed_form("1", merchant_trans_id=pay, merchant_prepare_id=str(prepare_id))
        answers = await asyncio.gather(*(shop.post(form) for _ in range(20)))
        assert sorted(a["error"] for a in answers) == [-4] * 19 + [0]
        assert {a["merchant_confirm_id"] for a in answers} == {prepare_id}
        [txn] = await db_read("transactions")
        assert txn["status"] == "succeeded"
        assert [o["routing_key"] for o in await db_read("outbox")] == ["providers.provider.payment.succeeded.v1"]
        assert len([e for e in await db_read("events") if e["event_type"] == "complete"]) == 1

    async def test_concurrent_prepares_of_one_attempt_reserve_once(self, shop: ClickShop, engine: AsyncEngine) -> None:
        pay = (await shop.start())["payment_id"]
        form = signed_form("0", merchant_trans_id=pay)
        answers = await asyncio.gather(*(shop.post(form) for _ in range(20)))
        assert {a["error"] for a in answers} == {0}
        assert len({a["merchant_prepare_id"] for a in answers}) == 1
        assert await _reservations(engine) == 1

    async def test_one_attempt_for_two_orders_at_once_reserves_one(self, shop: ClickShop, engine: AsyncEngine) -> None:
        a, b = [(await shop.start())["payment_id"] for _ in range(2)]
        forms = [signed_form("0", merchant_trans_id=order) for order in (a, b)] * 5
        answers = await asyncio.gather(*(shop.post(form) for form in forms))
        assert sorted({x["error"] for x in answers}) in ([-8, 0], [0])
        assert await _reservations(engine) == 1

    async def test_a_confirm_racing_a_cancel_lets_one_win(
        self, shop: ClickShop, db_read: Any, engine: AsyncEngine
    ) -> None:
        for _ in range(5):
            pay = (await shop.start())["payment_id"]
            prepare_id = str((await shop.prepare(pay, click_trans_id=pay[-8:]))["merchant_prepare_id"])
            common = {"merchant_trans_id": pay, "merchant_prepare_id": prepare_id, "click_trans_id": pay[-8:]}
            confirm, cancel = signed_form("1", **common), signed_form("1", error="-9", **common)
            answers = await asyncio.gather(shop.post(confirm), shop.post(cancel))
            errors = sorted(x["error"] for x in answers)
            status = {t["payment_id"]: t["status"] for t in await db_read("transactions")}[pay]
            # Confirm first: paid, and the cancel finds a confirmed payment (-9, anomaly).
            # Cancel first: released, and the confirm finds it cancelled (-9).
            assert errors in ([-9, 0], [-9, -9])
            assert status == ("succeeded" if errors == [-9, 0] else "pending")


class TestBadInput:
    @pytest.mark.parametrize(
        ("body", "content_type", "reason"),
        [
            (b'{"action": "0"}', "application/json", "bad_form"),
            (b"action=0&action=1", "application/x-www-form-urlencoded", "bad_form"),
            (b"action=0&merchant_trans_id=%ff%fe", "application/x-www-form-urlencoded", "bad_form"),
            (b"action=0&x=\xff", "application/x-www-form-urlencoded", "bad_form"),
            (b"action=0&x=\x00", "application/x-www-form-urlencoded", "bad_form"),
            (b"a=1&" * 5000, "application/x-www-form-urlencoded", "bad_form"),
            (b"", "application/x-www-form-urlencoded", "missing_field"),
            (b"action=7", "application/x-www-form-urlencoded", "unknown_action"),
            (b"action=" + b"9" * 5000, "application/x-www-form-urlencoded", "unknown_action"),
            (b"action=0&" + b"x" * 20000, "application/x-www-form-urlencoded", "bad_form"),
        ],
    )
    async def test_raw_bodies(self, shop: ClickShop, db_read: Any, body: bytes, content_type: str, reason: str) -> None:
        resp = await shop.client.post("/billing/click/prepare", data=body, headers={"Content-Type": content_type})
        assert resp.status == 200
        answer = await resp.json()
        assert answer["error"] in (-8, -3)
        assert _rejected(shop, reason) == 1
        assert await db_read("events") == []

    @pytest.mark.parametrize(
        ("fields", "reason", "error"),
        [
            ({"click_trans_id": None}, "missing_field", -8),
            ({"sign_string": None}, "missing_field", -8),
            ({"sign_time": None}, "missing_field", -8),
            ({"merchant_prepare_id": None}, "missing_field", -8),
            ({"click_trans_id": "9" * 40}, "bad_field", -8),
            ({"click_trans_id": "9223372036854775808"}, "bad_field", -8),
            ({"amount": "1e3"}, "bad_field", -8),
            ({"amount": "9" * 20000}, "bad_form", -8),
            ({"amount": "abc"}, "bad_field", -8),
            ({"error": "zero"}, "bad_field", -8),
            ({"service_id": "-1"}, "bad_field", -8),
            ({"sign_time": "2026-13-45 99:00:00"}, "bad_field", -8),
            ({"action": "3"}, "unknown_action", -3),
            ({"action": "one"}, "bad_field", -8),
            ({"sign_string": "f" * 32}, "bad_signature", -1),
            ({"sign_string": "ÿ" * 32}, "bad_signature", -1),
            ({"service_id": "424242"}, "unknown_service", -1),
            ({"secret": "forged"}, "bad_signature", -1),
        ],
    )
    async def test_malformed_or_forged_callbacks(
        self, shop: ClickShop, db_read: Any, engine: AsyncEngine, fields: dict[str, Any], reason: str, error: int
    ) -> None:
        pay = (await shop.start())["payment_id"]
        prepared = await shop.prepare(pay)
        before = await db_read("transactions"), await _reservations(engine), len(await db_read("events"))
        secret = fields.get("secret", "click-test-secret")
        given = {k: v for k, v in fields.items() if k != "secret"}
        request = {"merchant_trans_id": pay, "merchant_prepare_id": str(prepared["merchant_prepare_id"]), **given}
        form = signed_form(request.pop("action", "1"), secret=secret, **request)
        resp = await shop.client.post("/billing/click/complete", data=form)
        assert resp.status == 200
        answer = await resp.json()
        assert answer["error"] == error
        assert _rejected(shop, reason) == 1
        after = await db_read("transactions"), await _reservations(engine), len(await db_read("events"))
        assert after == before
        assert await db_read("outbox") == []

    async def test_a_huge_merchant_trans_id_is_an_unknown_order(self, shop: ClickShop, db_read: Any) -> None:
        for order in ("pay_" + "x" * 500, "pay_\x00nul"):
            assert (await shop.post(signed_form("0", merchant_trans_id=order)))["error"] == -5
        assert await db_read("events") == []

    async def test_credentials_never_in_an_answer(self, shop: ClickShop) -> None:
        pay = (await shop.start())["payment_id"]
        form = signed_form("0", merchant_trans_id=pay, sign_string="x")
        resp = await shop.client.post("/billing/click/prepare", data=form)
        assert "click-test-secret" not in await resp.text()


class TestHugeNumbers:
    async def test_a_signed_absurd_amount_is_a_wrong_amount_and_changes_nothing(
        self, shop: ClickShop, db_read: Any, engine: AsyncEngine
    ) -> None:
        pay = (await shop.start())["payment_id"]
        answer = await shop.prepare(pay, amount="9" * 4000)
        assert answer["error"] == -2
        assert await _reservations(engine) == 0
        assert shop.client.app[metrics_key].callbacks_received.labels("click", "incorrect_amount")._value.get() == 1


class TestOutage:
    async def test_a_database_outage_answers_minus_7_never_500(self, aiohttp_client: Any, settings: Settings) -> None:
        """The app's database is unreachable; a well-formed callback is answered -7 in Click's form."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        down = settings.model_copy(
            update={
                "database_url": f"postgresql+asyncpg://postgres@127.0.0.1:{port}/providers",
                "enabled_providers": ["sandbox", "click"],
            }
        )
        client = await aiohttp_client(create_app(down, bus=MemoryBus(), roles=("api",)))
        for action in ("0", "1"):
            form = signed_form(action, merchant_trans_id="pay_1", merchant_prepare_id="5" if action == "1" else None)
            resp = await client.post("/billing/click/prepare", data=form)
            assert resp.status == 200
            answer = await resp.json()
            assert answer["error"] == -7
            assert answer["error_note"] == "Failed to update user"
            assert answer["click_trans_id"] == 9001
