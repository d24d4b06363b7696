"""Odd but well-formed Click requests (huge amounts, 64-bit ids, Cyrillic order ids, a NUL in the note,
far dates), signed: each is answered in Click's format, never a 500 (found in review)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import ClickShop, signed_form


@pytest.mark.parametrize(
    "fields",
    [
        {"amount": "1" * 15000},
        {"amount": "0"},
        {"amount": "1000." + "0" * 10000},
        {"error": "-9223372036854775807"},
        {"error_note": "\u0000x"},
        {"click_trans_id": "9223372036854775807", "click_paydoc_id": "9223372036854775807"},
        {"merchant_trans_id": "п" * 64},
        {"sign_time": "9999-12-31 23:59:59"},
    ],
)
@pytest.mark.parametrize("action", ["0", "1"])
async def test_fuzz(shop: ClickShop, fields: dict[str, str], action: str) -> None:
    pay = (await shop.start())["payment_id"]
    prepared = await shop.prepare(pay)
    base: dict[str, Any] = {"merchant_trans_id": pay}
    if action == "1":
        base["merchant_prepare_id"] = str(prepared["merchant_prepare_id"])
    base.update(fields)
    answer = await shop.post(signed_form(action, **base))
    assert isinstance(answer.get("error"), int), answer
