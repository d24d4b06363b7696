"""A run that asks providers-svc for the statement: a complete stream is matched; a stream without
its final line, a 503, an unknown account or a record of another account fail the run, and nothing of
the partial statement is kept or matched (REC-21)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from reconciliation_svc.services.runs import execute_run
from sqlalchemy import text

from .conftest import FakeStatements, Seeder, line


async def _count(seed: Seeder, table: str) -> int:
    async with seed.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())  # noqa: S608


class TestStatementFromProviders:
    async def test_a_complete_stream_is_matched_and_its_lines_dropped(
        self, seed: Seeder, run_deps, fake_statements: tuple[FakeStatements, str]
    ) -> None:  # type: ignore[no-untyped-def]
        fake, _url = fake_statements
        await seed.payment("pay_ok", reference="1001")
        await seed.payment("pay_gone", reference="1002")
        fake.records = [line("1001", payment_id="pay_ok"), line("2001", payment_id="pay_unknown")]
        finished = await execute_run(run_deps, await seed.claimed_run())
        assert finished is not None and finished.state == "succeeded", finished and finished.error
        assert finished.lines_read == 2
        assert {(d.kind, d.payment_id) for d in await seed.discrepancies()} == {
            ("missing_at_provider", "pay_gone"),
            ("missing_ours", "pay_unknown"),
        }
        # Asked for the period widened by the margin (1 h), in RFC 3339 UTC.
        assert fake.calls == [{"account_id": "pac_a", "from": "2026-12-03T23:00:00Z", "to": "2026-12-05T01:00:00Z"}]
        # The fetched statement's lines are dropped once matched; the statement row stays.
        assert await _count(seed, "statement_lines") == 0
        assert await _count(seed, "statements") == 1

    @pytest.mark.parametrize(
        ("mode", "code"),
        [
            ("truncated", "statement_incomplete"),
            ("503", "provider_unavailable"),
            ("404", "account_not_found"),
            ("foreign", "statement_invalid"),
        ],
    )
    async def test_a_statement_not_had_whole_fails_the_run_and_nothing_is_kept(
        self, seed: Seeder, run_deps, fake_statements: tuple[FakeStatements, str], mode: str, code: str
    ) -> None:  # type: ignore[no-untyped-def]
        fake, _url = fake_statements
        fake.mode = mode
        await seed.payment("pay_gone", reference="1002")
        fake.records = [line(str(3000 + i), payment_id=f"pay_x{i}") for i in range(2500)]
        finished = await execute_run(run_deps, await seed.claimed_run())
        assert finished is not None
        assert finished.state == "failed"
        assert finished.error_code == code
        assert finished.finished_at is not None and finished.finished_at <= datetime.now(UTC)
        # Nothing matched against a partial statement: no discrepancy, no staged line, no statement.
        assert await seed.discrepancies() == []
        assert await _count(seed, "statement_lines") == 0
        assert await _count(seed, "statements") == 0

    async def test_providers_svc_not_listening_fails_the_run(self, seed: Seeder, run_deps) -> None:  # type: ignore[no-untyped-def]
        from dataclasses import replace

        from reconciliation_svc.services.statements_client import StatementsClient

        assert run_deps.statements is not None
        client = StatementsClient(run_deps.statements._session, "http://127.0.0.1:9", "x" * 40, 2)
        finished = await execute_run(replace(run_deps, statements=client), await seed.claimed_run())
        assert finished is not None and finished.state == "failed"
        assert finished.error_code == "provider_unavailable"
