from __future__ import annotations

import pytest
from billing_runtime.db import make_sessionmaker
from reconciliation_svc.db.discrepancies import record_discrepancy
from reconciliation_svc.domain.discrepancies import NewDiscrepancy, discrepancy_key
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine


def found(**overrides: object) -> NewDiscrepancy:
    values: dict[str, object] = {
        "kind": "amount_mismatch",
        "provider": "click",
        "dedupe_key": discrepancy_key("amount_mismatch", "click", payment_id="pay_1"),
        "detail": "we hold 5000 UZS, Click reports 4000 UZS",
        "tenant_id": "ten_a",
        "payment_id": "pay_1",
        "ours": {"amount": 5000, "currency": "UZS"},
        "theirs": {"amount": 4000, "currency": "UZS"},
        "run_id": "run_1",
    }
    values.update(overrides)
    return NewDiscrepancy(**values)  # type: ignore[arg-type]


class TestRecordDiscrepancy:
    async def test_a_fact_is_recorded_once(self, clean_db: AsyncEngine) -> None:
        sessions = make_sessionmaker(clean_db)
        async with sessions() as session:
            assert await record_discrepancy(session, found()) is True
            await session.commit()
        async with sessions() as session:
            # A second run finds it again with other evidence: nothing is added, nothing is changed.
            assert await record_discrepancy(session, found(theirs={"amount": 1}, run_id="run_2")) is False
            await session.commit()
        async with clean_db.connect() as conn:
            rows = (await conn.execute(text("SELECT id, state, theirs, run_id FROM discrepancies"))).all()
        assert len(rows) == 1
        assert rows[0].id.startswith("dsc_")
        assert rows[0].state == "open"
        assert rows[0].theirs == {"amount": 4000, "currency": "UZS"}
        assert rows[0].run_id == "run_1"

    async def test_nothing_is_kept_when_the_callers_transaction_rolls_back(self, clean_db: AsyncEngine) -> None:
        async with make_sessionmaker(clean_db)() as session:
            assert await record_discrepancy(session, found()) is True
            await session.rollback()
        async with clean_db.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM discrepancies"))).scalar_one() == 0

    async def test_the_database_refuses_an_unknown_kind_or_state(self, clean_db: AsyncEngine) -> None:
        async with clean_db.connect() as conn:
            with pytest.raises(IntegrityError, match="ck_discrepancies_state"):
                await conn.execute(
                    text(
                        "INSERT INTO discrepancies (id, kind, provider, dedupe_key, detail, state, detected_at,"
                        " updated_at) VALUES ('dsc_x', 'anomaly', 'click', 'k', 'd', 'closed', now(), now())"
                    )
                )
