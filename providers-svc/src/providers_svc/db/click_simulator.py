"""The Click simulator's own tables, in PostgreSQL so every api process of the distributed mode serves
the same fake Click: the reversals its fake Merchant API made (``click_simulator_reversals``), and the
attempts Click debited whose Complete never reached the shop (``click_simulator_debits``, the payer
page's "pay, but lose the Complete"). Everything else the simulator's Merchant API reports is what our
endpoints recorded (``click_reservations``); the debits are what Click knows and we do not, until
reconciliation's sync asks."""

from __future__ import annotations

from datetime import datetime

from billing_contracts.envelope import utcnow
from billing_runtime.db import UTCDateTime
from sqlalchemy import BigInteger, String, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from providers_svc.db.models import Base


class ClickSimulatorReversalRow(Base):
    """One reversal (or refused reversal) of a simulated Click payment, by Click's payment number."""

    __tablename__ = "click_simulator_reversals"

    click_paydoc_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # "reversed", or "refused" (the test-mode rule's ``sandbox:fail``): a repeat gets the same answer.
    outcome: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


async def reverse_once(session: AsyncSession, click_paydoc_id: int, outcome: str) -> tuple[str, bool]:
    """The outcome of the payment's reversal, and whether this call made it: the first one stored
    wins, every repeat finds it (and is refused, as Click refuses to reverse a payment twice)."""
    inserted = await session.execute(
        pg_insert(ClickSimulatorReversalRow)
        .values(click_paydoc_id=click_paydoc_id, outcome=outcome, created_at=utcnow())
        .on_conflict_do_nothing()
    )
    stored = await reversal_of(session, click_paydoc_id)
    assert stored is not None
    return stored, bool(inserted.rowcount)  # type: ignore[attr-defined]


async def reversal_of(session: AsyncSession, click_paydoc_id: int) -> str | None:
    """The stored outcome of the payment's reversal (None: never asked)."""
    stored = await session.execute(
        select(ClickSimulatorReversalRow.outcome).where(ClickSimulatorReversalRow.click_paydoc_id == click_paydoc_id)
    )
    found = stored.scalar_one_or_none()
    return str(found) if found is not None else None


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
