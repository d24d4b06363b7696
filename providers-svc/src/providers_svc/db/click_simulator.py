"""The Click simulator's own table: the reversals its fake Merchant API made (``simulators/click_merchant``),
in PostgreSQL so every api process of the distributed mode serves the same fake Click."""

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


async def reverse_once(session: AsyncSession, click_paydoc_id: int, outcome: str) -> str:
    """The outcome of the payment's reversal: the first one stored wins, every repeat gets it."""
    await session.execute(
        pg_insert(ClickSimulatorReversalRow)
        .values(click_paydoc_id=click_paydoc_id, outcome=outcome, created_at=utcnow())
        .on_conflict_do_nothing()
    )
    stored = await session.execute(
        select(ClickSimulatorReversalRow.outcome).where(ClickSimulatorReversalRow.click_paydoc_id == click_paydoc_id)
    )
    return str(stored.scalar_one())
