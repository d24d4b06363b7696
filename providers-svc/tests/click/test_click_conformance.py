"""Conformance on real PostgreSQL, table-driven: Click's official test matrix (its 15 Postman scenarios,
PROTOCOLS.md §1 via its mirror) and every row of the error table (§1.6) with the check order and the
cancel rules (§1.7), each row: the request, Click's expected error, and what is stored afterwards."""

from __future__ import annotations

from typing import Any

import pytest
from providers_svc.db.click import ClickReservationRow
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import SECRET, ClickShop, signed_form

pytestmark = pytest.mark.postgres

BAD_SIGN = {"sign_string": "0" * 32}
WRONG_AMOUNT = {"amount": "999.99"}
CANCEL = {"error": "-9", "error_note": "Cancelled"}


async def _states(engine: AsyncEngine) -> dict[int, str]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(ClickReservationRow.click_trans_id, ClickReservationRow.state))
        return {ctid: state for ctid, state in rows.all()}


async def _statuses(db_read: Any) -> dict[str, str]:
    return {t["payment_id"]: t["status"] for t in await db_read("transactions")}


class TestClickTestMatrix:
    async def test_the_fifteen_scenarios_in_order(self, shop: ClickShop, db_read: Any, engine: AsyncEngine) -> None:
        one, two, three = [(await shop.start(amount=100000))["payment_id"] for _ in range(3)]
        seen: list[int] = []

        async def run(action: str, order: str, **fields: str) -> dict[str, Any]:
            answer = await shop.post(signed_form(action, merchant_trans_id=order, **fields))
            seen.append(answer["error"])
            return answer

        await run("0", one, **BAD_SIGN)  # 1 wrong signature
        await run("0", "pay_does_not_exist")  # 2 unknown order
        prepared = await run("0", one)  # 3 prepare
        prepare_id = str(prepared["merchant_prepare_id"])
        await run("1", one, merchant_prepare_id=prepare_id, **BAD_SIGN)  # 4
        await run("1", one, merchant_prepare_id=prepare_id, **WRONG_AMOUNT)  # 5
        confirmed = await run("1", one, merchant_prepare_id=prepare_id)  # 6 complete
        await run("1", one, merchant_prepare_id=prepare_id)  # 7 repeated complete
        await run("1", one, merchant_prepare_id=prepare_id, **CANCEL)  # 8 cancel of a confirmed payment

        second = {"click_trans_id": "9002", "click_paydoc_id": "77002"}
        prepare_id_2 = str((await run("0", two, **second))["merchant_prepare_id"])  # 9
        await run("1", two, merchant_prepare_id="999999999", **second)  # 10 unknown prepare id
        await run("1", two, merchant_prepare_id=prepare_id_2, **second)  # 11

        third = {"click_trans_id": "9003", "click_paydoc_id": "77003"}
        prepare_id_3 = str((await run("0", three, **third))["merchant_prepare_id"])  # 12
        await run("1", three, merchant_prepare_id=prepare_id_3, **third, **CANCEL)  # 13 cancel
        await run("1", three, merchant_prepare_id=prepare_id_3, **third, **CANCEL)  # 14 repeated cancel
        await run("1", three, merchant_prepare_id=prepare_id_3, **third)  # 15 complete after cancel

        assert seen == [-1, -5, 0, -1, -2, 0, -4, -9, 0, -6, 0, 0, -9, -9, -9]
        assert confirmed["merchant_confirm_id"] == prepared["merchant_prepare_id"]
        assert await _statuses(db_read) == {one: "succeeded", two: "succeeded", three: "pending"}
        assert await _states(engine) == {9001: "confirmed", 9002: "confirmed", 9003: "cancelled"}
        # Scenario 8: Click cancelled money we hold as paid. -9 as its matrix expects, and evidence.
        [anomaly] = await db_read("anomalies")
        assert anomaly["kind"] == "unexpected_outcome"
        keys = [o["routing_key"] for o in await db_read("outbox")]
        assert keys.count("providers.provider.payment.succeeded.v1") == 2
        assert keys.count("providers.provider.anomaly.recorded.v1") == 1


# The error table, row by row. ``given``: what exists before the request ("reserved": a Prepare
# answered 0; "paid": Prepare and Complete answered 0; "cancelled": Prepare, then Click's cancel).
# ``action`` and ``fields`` make the request; then Click's expected error, the reservation's state and
# the payment's status afterwards.
ROWS: list[tuple[str, str, str, dict[str, str], int, str | None, str]] = [
    ("prepare ok", "none", "0", {}, 0, "prepared", "pending"),
    ("prepare repeat", "reserved", "0", {}, 0, "prepared", "pending"),
    ("prepare bad signature", "none", "0", BAD_SIGN, -1, None, "pending"),
    ("prepare signed with another key", "none", "0", {"secret": "not-the-secret"}, -1, None, "pending"),
    ("prepare unknown service", "none", "0", {"service_id": "999"}, -1, None, "pending"),
    ("prepare wrong amount", "none", "0", WRONG_AMOUNT, -2, None, "pending"),
    ("prepare amount in tiyin", "none", "0", {"amount": "100000"}, -2, None, "pending"),
    ("prepare unknown order", "none", "0", {"merchant_trans_id": "pay_nope"}, -5, None, "pending"),
    ("prepare of a paid attempt", "paid", "0", {}, -4, "confirmed", "succeeded"),
    ("prepare of a paid order, new attempt", "paid", "0", {"click_trans_id": "9002"}, -4, "confirmed", "succeeded"),
    ("prepare of a cancelled attempt", "cancelled", "0", {}, -9, "cancelled", "pending"),
    ("prepare with Click's cancel", "reserved", "0", CANCEL, -9, "cancelled", "pending"),
    ("prepare with Click's cancel, nothing reserved", "none", "0", CANCEL, -9, None, "pending"),
    ("prepare, attempt used for another order", "other", "0", {}, -8, "prepared", "pending"),
    ("action unknown", "none", "2", {}, -3, None, "pending"),
    ("complete ok", "reserved", "1", {}, 0, "confirmed", "succeeded"),
    ("complete repeat", "paid", "1", {}, -4, "confirmed", "succeeded"),
    ("complete bad signature", "reserved", "1", BAD_SIGN, -1, "prepared", "pending"),
    ("complete wrong amount", "reserved", "1", WRONG_AMOUNT, -2, "prepared", "pending"),
    ("complete unknown order", "reserved", "1", {"merchant_trans_id": "pay_nope"}, -5, "prepared", "pending"),
    ("complete unknown prepare id", "reserved", "1", {"merchant_prepare_id": "999999"}, -6, "prepared", "pending"),
    ("complete, another attempt's prepare id", "reserved", "1", {"click_trans_id": "9002"}, -6, "prepared", "pending"),
    ("complete with Click's cancel", "reserved", "1", CANCEL, -9, "cancelled", "pending"),
    ("complete with Click's -5017", "reserved", "1", {"error": "-5017"}, -9, "cancelled", "pending"),
    ("complete of a cancelled attempt", "cancelled", "1", {}, -9, "cancelled", "pending"),
    ("cancel of a confirmed payment (-9)", "paid", "1", CANCEL, -9, "confirmed", "succeeded"),
]


@pytest.mark.parametrize(
    ("given", "action", "fields", "error", "state", "status"),
    [pytest.param(*row[1:], id=row[0]) for row in ROWS],
)
async def test_error_table(
    shop: ClickShop,
    db_read: Any,
    engine: AsyncEngine,
    given: str,
    action: str,
    fields: dict[str, str],
    error: int,
    state: str | None,
    status: str,
) -> None:
    pay = (await shop.start(amount=100000))["payment_id"]
    prepare_id = "1"
    if given == "other":
        other = (await shop.start(amount=100000))["payment_id"]
        assert (await shop.prepare(other))["error"] == 0
    if given in ("reserved", "paid", "cancelled"):
        prepared = await shop.prepare(pay)
        assert prepared["error"] == 0
        prepare_id = str(prepared["merchant_prepare_id"])
    if given == "paid":
        assert (await shop.complete(pay, prepare_id))["error"] == 0
    if given == "cancelled":
        assert (await shop.complete(pay, prepare_id, **CANCEL))["error"] == -9
    outbox_before = len(await db_read("outbox"))

    secret = fields.get("secret", SECRET)
    request = {"merchant_trans_id": pay, **{k: v for k, v in fields.items() if k != "secret"}}
    if action == "1":
        request.setdefault("merchant_prepare_id", prepare_id)
    answer = await shop.post(signed_form(action, secret=secret, **request))

    assert answer["error"] == error, answer
    notes = {0: "Success", -1: "SIGN CHECK FAILED!", -2: "Incorrect parameter amount", -3: "Action not found",
             -4: "Already paid", -5: "User does not exist", -6: "Transaction does not exist",
             -8: "Error in request from click", -9: "Transaction cancelled"}  # fmt: skip
    assert answer["error_note"] == notes[error]
    states = await _states(engine)
    assert states.get(9001) == state
    assert (await _statuses(db_read))[pay] == status
    published = [o["routing_key"] for o in sorted(await db_read("outbox"), key=lambda o: o["id"])][outbox_before:]
    # Money is published only by a confirm; Click cancelling a confirmed payment leaves an anomaly.
    if error == 0 and action == "1":
        assert published == ["providers.provider.payment.succeeded.v1"]
    elif given == "paid" and fields == CANCEL:
        assert published == ["providers.provider.anomaly.recorded.v1"]
    else:
        assert published == []
