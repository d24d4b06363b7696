"""``reconciliation-svc reconcile --account <id> --from <date> --to <date> [--csv file --provider x]``:
one run done in this process (the statement from providers-svc, or the settlement file imported
first), with a progress bar and a summary table; ``reconciliation-svc runs`` lists the runs.

Exit status: 0 the run succeeded, 1 it failed (or another worker holds it), 2 bad input (arguments, a
malformed file: every bad line is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import hashlib
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import TextIO

import aiohttp
from billing_runtime.db import create_engine
from billing_runtime.errors import ProblemError
from billing_runtime.secret_policy import load_settings
from sqlalchemy.ext.asyncio import AsyncEngine

from reconciliation_svc.api.run_schemas import valid_account_id
from reconciliation_svc.cli_output import ProgressBar, run_summary, runs_table
from reconciliation_svc.db import runs as run_queries
from reconciliation_svc.domain.periods import Period
from reconciliation_svc.domain.runs import RUN_STATES
from reconciliation_svc.domain.settlement_csv import FORMATS
from reconciliation_svc.services.imports import import_settlement
from reconciliation_svc.services.runs import RunDeps, execute_run
from reconciliation_svc.services.statements_client import StatementsClient
from reconciliation_svc.settings import Settings

PROG = "reconciliation-svc"
COMMANDS = ("reconcile", "runs")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG)
    sub = p.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("reconcile", help="reconcile one account's period now, in this process")
    rec.add_argument("--account", required=True, help="provider account id (pac_...), or sandbox")
    rec.add_argument("--from", dest="first_day", required=True, type=date.fromisoformat, help="YYYY-MM-DD (UTC)")
    rec.add_argument("--to", dest="last_day", required=True, type=date.fromisoformat, help="YYYY-MM-DD, included")
    rec.add_argument("--csv", type=Path, help="the provider's settlement file to compare instead of its API")
    rec.add_argument("--provider", choices=sorted(FORMATS), help="whose format --csv is in")
    rec.add_argument("--started-by", default=None, help="who asks (default: the operating-system user)")
    runs = sub.add_parser("runs", help="list reconciliation runs, newest first")
    runs.add_argument("--state", choices=sorted(RUN_STATES))
    runs.add_argument("--account")
    runs.add_argument("--limit", type=int, default=20)
    return p


def main(argv: list[str], settings_factory: Callable[[], Settings] = Settings, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    p = parser()
    args = p.parse_args(argv)
    if args.command == "reconcile":
        if (args.csv is None) != (args.provider is None):
            p.error("--csv and --provider go together")
        if not valid_account_id(args.account):
            p.error("--account must be a provider account id (1-40 of A-Z a-z 0-9 _ -)")
        try:
            period = Period(args.first_day, args.last_day)
        except ValueError as exc:
            p.error(str(exc))
    settings = load_settings(settings_factory, PROG)
    if args.command == "runs":
        return asyncio.run(_with_engine(settings, lambda engine: list_runs(engine, args, out)))
    return asyncio.run(_with_engine(settings, lambda engine: reconcile(engine, settings, args, period, out)))


async def _with_engine(settings: Settings, work: Callable[[AsyncEngine], Awaitable[int]]) -> int:
    engine = create_engine(settings.database_url, pool_size=4)
    try:
        return await work(engine)
    finally:
        await engine.dispose()


async def list_runs(engine: AsyncEngine, args: argparse.Namespace, out: TextIO) -> int:
    async with engine.connect() as conn:
        runs = await run_queries.list_runs(
            conn, limit=max(1, min(args.limit, 1000)), state=args.state, account_id=args.account
        )
    out.write((runs_table(runs) if runs else "no runs") + "\n")
    return 0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


async def _import(engine: AsyncEngine, args: argparse.Namespace, started_by: str, out: TextIO) -> str | None:
    path: Path = args.csv
    sha256 = await asyncio.to_thread(_sha256, path)
    try:
        with path.open("rb") as source:
            imported = await import_settlement(
                engine,
                provider=args.provider,
                account_id=args.account,
                source=source,
                sha256=sha256,
                filename=path.name,
                created_by=started_by,
            )
    except ProblemError as exc:
        out.write(f"{path}: {exc.detail}\n")
        for error in exc.errors or []:
            out.write(f"  {error.field}: {error.message}\n")
        return None
    s = imported.statement
    verb = "imported" if imported.created else "already imported"
    out.write(f"{path}: {verb} as statement {s.id}: {s.records:,} records, {s.skipped:,} lines skipped\n")
    return s.id


async def reconcile(
    engine: AsyncEngine, settings: Settings, args: argparse.Namespace, period: Period, out: TextIO
) -> int:
    started_by = args.started_by or f"cli:{getpass.getuser()}"
    if args.csv is not None and not args.csv.is_file():
        out.write(f"{args.csv}: no such file\n")
        return 2
    statement_id = None
    if args.csv is not None:
        statement_id = await _import(engine, args, started_by, out)
        if statement_id is None:
            return 2
    lease = timedelta(seconds=settings.run_lease_seconds)
    async with engine.begin() as conn:
        provider = args.provider or await run_queries.provider_of_account(conn, args.account)
        queued, _new = await run_queries.queue_run(
            conn,
            run_queries.NewRun(args.account, period, "cli", started_by, provider=provider, statement_id=statement_id),
        )
        run = await run_queries.claim_run(conn, lease, run_id=queued.id)
    if run is None:
        out.write(f"run {queued.id} of this account and period is already being done by a worker\n")
        return 1
    started = time.monotonic()
    bar = ProgressBar(sys.stderr if out is sys.stdout else out)
    async with aiohttp.ClientSession() as http:
        client = StatementsClient(
            http,
            settings.providers_url,
            settings.providers_internal_secret.get_secret_value(),
            settings.request_timeout,
        )
        deps = RunDeps(engine, client, lease, timedelta(seconds=settings.match_margin_seconds))
        finished = await execute_run(deps, run, on_phase=bar.update)
    if finished is None:
        out.write(f"run {run.id} was taken over by a worker\n")
        return 1
    out.write(run_summary(finished, time.monotonic() - started) + "\n")
    return 0 if finished.state == "succeeded" else 1
