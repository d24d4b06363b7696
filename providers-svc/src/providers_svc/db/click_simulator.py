"""The Click simulator's own memory (``click_simulator_debits``): the attempts Click debited whose
Complete never reached the shop (the payer page's "pay, but lose the Complete"). Everything else the
simulator's Merchant API reports is what our endpoints recorded (``click_reservations``); these are
what Click knows and we do not, until reconciliation's sync asks."""

from __future__ import annotations

from datetime import datetime

from billing_runtime.db import UTCDateTime
from sqlalchemy import BigInteger, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from providers_svc.db.models import Base


class ClickSimulatorDebitRow(Base):
    __tablename__ = "click_simulator_debits"

    click_trans_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


async def record_debit(session: AsyncSession, click_trans_id: int, now: datetime) -> None:
    await session.execute(
        pg_insert(ClickSimulatorDebitRow).values(click_trans_id=click_trans_id, created_at=now).on_conflict_do_nothing()
    )


async def debited(session: AsyncSession, click_trans_ids: list[int]) -> set[int]:
    """Which of the attempts Click debited without the shop hearing it."""
    if not click_trans_ids:
        return set()
    stmt = select(ClickSimulatorDebitRow.click_trans_id).where(
        ClickSimulatorDebitRow.click_trans_id.in_(click_trans_ids)
    )
    return set((await session.execute(stmt)).scalars())
