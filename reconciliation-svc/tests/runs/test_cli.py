"""``reconciliation-svc reconcile`` and ``runs``: a run done in the command's own process, with its
progress and a summary table; a malformed file is printed line by line and changes nothing."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from reconciliation_svc import cli

from .conftest import PROVIDERS_SECRET, FakeStatements, Seeder, line

CLICK = (
    "click_trans_id,merchant_trans_id,amount,status,payment_date\n"
    "9001,pay_ok,5000.00,success,2026-12-04 15:00:00\n"
    "9002,pay_amount,4000.00,success,2026-12-04 16:00:00\n"
)


async def run_cli(settings_factory, *argv: str, **overrides: object) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    code = await asyncio.to_thread(cli.main, list(argv), lambda: settings_factory(**overrides), out)
    return code, out.getvalue()


class TestReconcileCommand:
    async def test_a_settlement_file_is_imported_and_reconciled_with_a_summary(
        self, seed: Seeder, settings_factory, tmp_path: Path, count
    ) -> None:  # type: ignore[no-untyped-def]
        await seed.payment("pay_ok")
        await seed.payment("pay_amount")
        await seed.payment("pay_gone")
        path = tmp_path / "click.csv"
        path.write_text(CLICK)
        argv = ("reconcile", "--account", "pac_a", "--from", "2026-12-04", "--to", "2026-12-04")
        code, out = await run_cli(settings_factory, *argv, "--csv", str(path), "--provider", "click")
        assert code == 0, out
        assert "imported as statement stm_" in out
        assert "matching [" in out and "100%" in out
        assert "succeeded in" in out
        summary = {row.split()[1]: row.split()[-1] for row in out.splitlines() if row.startswith("new ")}
        assert summary["amount_mismatch"] == "1"
        assert summary["missing_at_provider"] == "1"
        assert summary["discrepancies"] == "2"
        assert {(d.kind, d.payment_id) for d in await seed.discrepancies()} == {
            ("amount_mismatch", "pay_amount"),
            ("missing_at_provider", "pay_gone"),
        }
        code, out = await run_cli(settings_factory, "runs", "--account", "pac_a")
        assert code == 0
        [header, _rule, row] = out.strip().splitlines()
        assert header.split()[:3] == ["id", "state", "account"]
        assert row.split()[1:4] == ["succeeded", "pac_a", "click"]

    async def test_a_malformed_file_prints_every_bad_line_and_changes_nothing(
        self, seed: Seeder, settings_factory, tmp_path: Path, count
    ) -> None:  # type: ignore[no-untyped-def]
        path = tmp_path / "click.csv"
        path.write_text(CLICK + "9003,pay_x,1.234,success,2026-12-04 15:00:00\n")
        code, out = await run_cli(
            settings_factory,
            "reconcile",
            "--account",
            "pac_a",
            "--from",
            "2026-12-04",
            "--to",
            "2026-12-04",
            "--csv",
            str(path),
            "--provider",
            "click",
        )
        assert code == 2
        assert "line 4 (amount): '1.234' has more decimals than UZS has (2)" in out
        assert await count("statements") == 0
        assert await count("reconciliation_runs") == 0

    async def test_the_statement_from_providers_svc_and_a_failure_exit_1(
        self, seed: Seeder, settings_factory, fake_statements: tuple[FakeStatements, str]
    ) -> None:  # type: ignore[no-untyped-def]
        fake, url = fake_statements
        fake.records = [line("1001", payment_id="pay_unknown")]
        argv = ("reconcile", "--account", "pac_a", "--from", "2026-12-04", "--to", "2026-12-04")
        overrides = {"providers_url": url, "providers_internal_secret": PROVIDERS_SECRET}
        code, out = await run_cli(settings_factory, *argv, **overrides)
        assert code == 0, out
        assert [d.kind for d in await seed.discrepancies()] == ["missing_ours"]
        fake.mode = "503"
        code, out = await run_cli(settings_factory, *argv, **overrides)
        assert code == 1
        assert "error provider_unavailable" in out
