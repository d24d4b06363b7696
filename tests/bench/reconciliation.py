"""Reconciliation benchmark (part of ``make bench``): how fast a run matches, and that its memory stays
flat as the statement grows.

For each size N (default 10,000 and 100,000): a fresh database migrated by reconciliation-svc's
Alembic; N payments of one Click account seeded in the projection (COPY); a Click settlement file of
about N lines with a few hundred seeded mismatches of every kind (N/333: missing on either side,
amount, currency, status, duplicate). Then, in a process of its own (so its peak RSS is the run's):
the file imported through the service's import (parsed, staged), and one reconciliation run over it
(the streaming join, the discrepancies recorded). Reported per size: import lines/s, records compared
per second, the child's peak RSS (VmHWM) and how much its RSS grew while matching; the discrepancies
found must be exactly the ones seeded. Results in bench-results/reconciliation.json.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import pg_url, recreate

HERE = Path(__file__).resolve().parent
SERVICE_ROOT = HERE.parent.parent / "reconciliation-svc"
DAY = date(2026, 12, 4)
ACCOUNT = "pac_bench"
TASHKENT = timedelta(hours=5)
KINDS = ("missing_ours", "missing_at_provider", "amount_mismatch", "currency_mismatch", "status_mismatch", "duplicate")


def dataset(n: int) -> tuple[list[tuple[object, ...]], list[list[str]], Counter[str]]:
    """Our payments (rows for COPY), the settlement file's lines, and the discrepancies seeded."""
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    step = max(n // max(n // 333, len(KINDS)), 1)
    ours: list[tuple[object, ...]] = []
    lines: list[list[str]] = []
    seeded: Counter[str] = Counter()
    for i in range(n):
        payment_id = f"pay_b{i:09d}"
        reference = str(10_000_000 + i)
        at = start + timedelta(seconds=i * 86_000 / n + 60)
        amount = 100_000 + (i % 1000) * 100
        status, currency, their_amount = "SUCCEEDED", "UZS", amount
        kind = KINDS[(i // step) % len(KINDS)] if i % step == step // 2 else None
        copies = 1
        if kind == "missing_ours":
            payment_id = f"pay_x{i:09d}"  # the provider's line names a payment we never had
        elif kind == "missing_at_provider":
            copies = 0
        elif kind == "amount_mismatch":
            their_amount = amount + 100
        elif kind == "currency_mismatch":
            currency = "USD"
        elif kind == "status_mismatch":
            status = "FAILED"
        elif kind == "duplicate":
            copies = 2
        if kind is not None:
            seeded[kind] += 1
        if kind != "missing_ours":
            succeeded = at if status == "SUCCEEDED" else None
            ours.append(
                (
                    payment_id,
                    "ten_bench",
                    False,
                    status,
                    amount,
                    currency,
                    0,
                    "click",
                    reference,
                    ACCOUNT,
                    1,
                    at - timedelta(minutes=1),
                    at,
                    succeeded,
                )
            )
        local = (at + TASHKENT).strftime("%Y-%m-%d %H:%M:%S")
        so_m = f"{their_amount // 100}.{their_amount % 100:02d}"
        lines.extend([[reference, payment_id, so_m, "success", local]] * copies)
    return ours, lines, seeded


async def seed(db: str, n: int, directory: Path) -> tuple[Path, Counter[str]]:
    from billing_runtime.migrations import upgrade_async

    await recreate(db)
    await upgrade_async(SERVICE_ROOT, pg_url(db))
    ours, lines, seeded = dataset(n)
    conn = await asyncpg.connect(pg_url(db).replace("+asyncpg", ""))
    try:
        await conn.copy_records_to_table(
            "recon_payments",
            records=ours,
            columns=[
                "id",
                "tenant_id",
                "livemode",
                "status",
                "amount",
                "currency",
                "amount_refunded",
                "provider",
                "provider_reference",
                "provider_account_id",
                "last_sequence",
                "created_at",
                "updated_at",
                "succeeded_at",
            ],
        )
        await conn.execute("ANALYZE recon_payments")
    finally:
        await conn.close()
    path = directory / f"click-{n}.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["click_trans_id", "merchant_trans_id", "amount", "status", "payment_date"])
        writer.writerows(lines)
    return path, seeded


async def child(db: str, path: Path) -> dict[str, object]:
    """Import the file and reconcile it, in this process; what it measured."""
    from billing_runtime.db import create_engine
    from reconciliation_svc.db import runs as run_queries
    from reconciliation_svc.domain.periods import Period
    from reconciliation_svc.services.imports import import_settlement
    from reconciliation_svc.services.runs import RunDeps, execute_run

    proc = psutil.Process()
    engine = create_engine(pg_url(db), pool_size=4)
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    started = time.perf_counter()
    with path.open("rb") as source:
        imported = await import_settlement(
            engine,
            provider="click",
            account_id=ACCOUNT,
            source=source,
            sha256=sha256,
            filename=path.name,
            created_by="bench",
        )
    imported_s = time.perf_counter() - started
    async with engine.begin() as conn:
        await conn.exec_driver_sql("ANALYZE statement_lines")
        await run_queries.queue_run(
            conn, run_queries.NewRun(ACCOUNT, Period(DAY, DAY), "cli", "bench", "click", imported.statement.id)
        )
        run = await run_queries.claim_run(conn, timedelta(minutes=10))
    assert run is not None
    base_rss = proc.memory_info().rss
    peak_rss = base_rss

    async def sample() -> None:
        nonlocal peak_rss
        while True:
            peak_rss = max(peak_rss, proc.memory_info().rss)
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    finished = await execute_run(RunDeps(engine, None, timedelta(minutes=10), timedelta(hours=1)), run)
    matched_s = time.perf_counter() - started
    sampler.cancel()
    await engine.dispose()
    assert finished is not None and finished.state == "succeeded", finished and finished.error
    hwm = next(int(x.split()[1]) for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return {
        "lines": imported.statement.records,
        "import_s": round(imported_s, 3),
        "import_lines_per_s": round(imported.statement.records / imported_s),
        "compared": finished.matched,
        "match_s": round(matched_s, 3),
        "records_per_s": round(finished.matched / matched_s),
        "peak_rss_mib": round(hwm / 1024, 1),
        "match_rss_growth_mib": round((peak_rss - base_rss) / 2**20, 1),
        "found": dict(finished.summary),
    }


async def bench(sizes: list[int], out: Path) -> list[dict[str, object]]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            db = "bench_reconciliation"
            path, seeded = await seed(db, n, Path(tmp))
            answer = subprocess.run(
                [sys.executable, __file__, "--child", db, str(path)], check=True, capture_output=True, text=True
            )
            result = json.loads(answer.stdout.strip().splitlines()[-1])
            if result["found"] != dict(seeded):
                raise SystemExit(f"N={n}: found {result['found']}, seeded {dict(seeded)}")
            result = {"payments": n, "seeded_mismatches": sum(seeded.values()), **result}
            print(json.dumps(result), flush=True)
            results.append(result)
    conn = await asyncpg.connect(pg_url("postgres").replace("+asyncpg", ""))
    try:
        await conn.execute('DROP DATABASE IF EXISTS "bench_reconciliation" WITH (FORCE)')
    finally:
        await conn.close()
    out.mkdir(exist_ok=True)
    (out / "reconciliation.json").write_text(json.dumps({"runs": results}, indent=2))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated payment counts")
    parser.add_argument("--child", nargs=2, metavar=("DB", "CSV"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.child[0], Path(args.child[1])))), flush=True)
        return
    asyncio.run(bench([int(s) for s in args.sizes.split(",")], HERE.parent.parent / "bench-results"))


if __name__ == "__main__":
    main()
