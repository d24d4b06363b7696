"""The payments table refuses what no code path may write (migrations 0002 and refunds): a status outside
the state machine, a non-positive amount, a refund (or refunds reserved) beyond the amount."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from billing_contracts.envelope import utcnow
from payments_svc.db.models import Payment
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

SERVICE_ROOT = Path(__file__).resolve().parents[2]


def _row(**overrides: Any) -> dict[str, Any]:
    now = utcnow()
    row = {
        "id": "pay_1",
        "tenant_id": "ten_a",
        "livemode": False,
        "status": "CREATED",
        "sequence": 1,
        "amount": 5000,
        "currency": "USD",
        "amount_refunded": 0,
        "order_id": "o1",
        "metadata_": {},
        "checkout_token": "tok_1",
        "created_at": now,
        "updated_at": now,
        "expires_at": now,
        "sweep_at": now,
        "sweep_attempts": 0,
    }
    row.update(overrides)
    return row


BAD = [
    {"status": "PAID"},
    {"amount": 0},
    {"amount": -5},
    {"amount_refunded": -1},
    {"amount_refunded": 5001, "refund_reserved": 5001},
    # The refund bound (REF-1): what is refunded and pending never exceeds the payment, and what is
    # refunded is always among what is reserved.
    {"refund_reserved": 5001},
    {"amount_refunded": 100, "refund_reserved": 50},
    {"refund_reserved": -1},
    # Manual capture: refunds are bounded by what was captured, which is never more than the amount.
    {"amount_captured": 3000, "refund_reserved": 3001},
    {"amount_captured": 5001},
    {"amount_capturable": 5001},
    {"capture_method": "later"},
]


async def _insert(engine: AsyncEngine, **overrides: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(Payment.__table__), [_columns(_row(**overrides))])


def _columns(row: dict[str, Any]) -> dict[str, Any]:
    return {("metadata" if k == "metadata_" else k): v for k, v in row.items()}


class TestPostgres:
    @pytest.mark.parametrize("bad", BAD)
    async def test_a_row_outside_the_rules_is_refused(self, clean_db, bad) -> None:
        with pytest.raises(IntegrityError):
            await _insert(clean_db, **bad)

    async def test_a_good_row_is_accepted(self, clean_db) -> None:
        await _insert(
            clean_db, status="PARTIALLY_REFUNDED", amount_refunded=5000, refund_reserved=5000, amount_captured=5000
        )
        await _insert(
            clean_db,
            id="pay_2",
            checkout_token="tok_2",
            status="AUTHORIZED",
            capture_method="manual",
            amount_capturable=5000,
        )
