"""Idle cost (part of ``make bench``, issue 16): CPU per second of every process while nothing happens.

A platform that waits for work should cost nearly nothing: polling loops, relays, sweepers, janitors
and heartbeats all wake up on their own, and on a 2-core machine what they burn is taken from the
payments. Two platforms, each started, left to settle (``--settle`` s: start-up work, first janitor
passes), then measured over ``--seconds`` with no request at all:

1. distributed: the gateway, payments-svc api + worker, providers-svc, webhook-dispatcher api + worker
   (the same processes as ``webhooks.py``) on PostgreSQL and RabbitMQ;
2. embedded: one ``billing-embedded`` process and the PostgreSQL server it starts.

Printed and written to bench-results/idle.json: milliseconds of CPU per second of wall time per process
(``postgres`` is every PostgreSQL backend of the machine, ``rabbitmq`` the broker), and each process's
RSS. All traffic stays on 127.0.0.1. Run from the repository root: ``.venv/bin/python tests/bench/idle.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cpu
from run import stop
from webhooks import start_platform

import embedded


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return float("nan")


def _per_second(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    out = {k: round((after[k] - before[k]) * 1000 / seconds, 2) for k in after}
    out["total (without other)"] = round(sum(v for k, v in out.items() if k != "other"), 2)
    return out


async def _measure(groups: dict[str, int], settle: float, seconds: float) -> dict[str, float]:
    await asyncio.sleep(settle)
    before, began = cpu.snapshot(groups), time.monotonic()
    await asyncio.sleep(seconds)
    return _per_second(before, cpu.snapshot(groups), time.monotonic() - began)


async def distributed(logs: Path, settle: float, seconds: float) -> dict[str, object]:
    procs, _gateway, _admin = await start_platform(logs)
    try:
        groups = {p.name: p.popen.pid for p in procs}
        per_second = await _measure(groups, settle, seconds)
        rss = {p.name: _rss_mib(p.popen.pid) for p in procs}
    finally:
        stop(procs)
    return {"cpu_ms_per_s": per_second, "rss_mib": rss}


async def embedded_mode(logs: Path, settle: float, seconds: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
        proc, _ = await asyncio.to_thread(embedded.start, Path(tmp), logs / "idle-embedded.log")
        try:
            per_second = await _measure({"billing-embedded": proc.pid}, settle, seconds)
            rss = {"billing-embedded": _rss_mib(proc.pid)}
        finally:
            await asyncio.to_thread(embedded.stop, proc)
    return {"cpu_ms_per_s": per_second, "rss_mib": rss}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--settle", type=float, default=15.0, help="seconds after start-up before measuring")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds measured")
    args = parser.parse_args()
    logs = Path("bench-results")
    logs.mkdir(exist_ok=True)
    summary = {
        "settle_s": args.settle,
        "measured_s": args.seconds,
        "distributed": await distributed(logs, args.settle, args.seconds),
        "embedded": await embedded_mode(logs, args.settle, args.seconds),
    }
    (logs / "idle.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
