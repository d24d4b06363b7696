"""``make bench``: do payments keep flowing while ``POST /v1/auth/token`` is flooded?

Distributed mode (gateway → payments-svc API and worker on PostgreSQL, relay to RabbitMQ). Creates
run at a steady offered rate (open loop) while a flood of wrong-secret token requests runs beside them:
also open loop, at a fixed rate ("a modest flood", 200/s by default), from a process of its own, each
request with the gateway's default argon2 cost (19 MiB, t=2, p=1). The phases, on the same platform:

- no flood (the reference);
- a flood from one address (the per-client bucket answers it with 429s);
- a flood from many addresses, as seen through a trusted proxy (``X-Forwarded-For``), each with a
  new app name: no bucket of theirs holds it, the hashing pool and budget answer it with 503s;
- no flood, then the same many-address flood, against a gateway with the protections off (buckets,
  budget and queue unbounded, six hashing threads as ``asyncio.to_thread`` had on this machine): the
  behaviour before.

Reports create p50/p99, achieved rate and errors per phase, and the flood's answers by status.
All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import multiprocessing
import os
import secrets
import subprocess
import time
from pathlib import Path

import aiohttp
import uvloop
from run import BIN, SECRET, Load, Proc, free_port, pg_url, recreate, scratch_vhost, spawn, stop, wait_ready

PROTECTED = {"GATEWAY_TRUSTED_PROXIES": "127.0.0.1"}
UNPROTECTED = {
    "GATEWAY_TOKEN_RATE_PER_CLIENT": "1000000",
    "GATEWAY_TOKEN_BURST_PER_CLIENT": "1000000",
    "GATEWAY_TOKEN_RATE_PER_APP": "1000000",
    "GATEWAY_TOKEN_BURST_PER_APP": "1000000",
    "GATEWAY_HASH_CONCURRENCY": "6",
    "GATEWAY_HASH_QUEUE": "10000",
    "GATEWAY_HASH_RATE": "1000000",
    "GATEWAY_HASH_BURST": "1000000",
}


class SteadyLoad(Load):
    """A create that fails at the connection counts as an error instead of ending the bench."""

    async def one(self, session: aiohttp.ClientSession) -> float:
        started = time.perf_counter()
        try:
            return await super().one(session)
        except (aiohttp.ClientError, TimeoutError):
            self.errors += 1
            return time.perf_counter() - started


async def creates(load: Load, rate: float, seconds: float) -> dict[str, float]:
    errors_before = load.errors
    p50, p99, achieved = await load.open_loop(rate, seconds)
    return {
        "create_p50_ms": round(p50, 2),
        "create_p99_ms": round(p99, 2),
        "create_achieved_per_s": round(achieved, 1),
        "create_errors": load.errors - errors_before,
    }


async def _flood(url: str, rate: float, seconds: float, many_addresses: bool) -> dict[int, int]:
    """``rate`` wrong-secret token requests per second for ``seconds``, each started on schedule
    whatever the answers' latency (a flood does not wait for the victim), at most 256 in flight."""
    statuses: collections.Counter[int] = collections.Counter()
    in_flight = asyncio.Semaphore(256)
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def one() -> None:
            headers = {}
            if many_addresses:
                headers["X-Forwarded-For"] = f"198.18.{secrets.randbelow(256)}.{secrets.randbelow(256)}"
            body = {"app_name": f"flood-{secrets.token_hex(6)}", "secret": "sk_wrong"}
            try:
                async with session.post(url, json=body, headers=headers) as r:
                    await r.read()
                    statuses[r.status] += 1
            except (aiohttp.ClientError, TimeoutError):
                statuses[0] += 1
            finally:
                in_flight.release()

        tasks = []
        started = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if in_flight.locked():  # the cap is reached: this one is dropped, as a real flood's would time out
                statuses[-1] += 1
                continue
            await in_flight.acquire()
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return dict(sorted(statuses.items()))


def flood_process(url: str, rate: float, seconds: float, many_addresses: bool, out: Path) -> None:
    """The flood in a process of its own, so its client-side cost does not skew the creates' timing."""
    out.write_text(json.dumps(uvloop.run(_flood(url, rate, seconds, many_addresses))))


async def phase(
    label: str, load: Load, gw: str, args: argparse.Namespace, *, flood_mode: str | None
) -> dict[str, object]:
    result: dict[str, object] = {"phase": label}
    if flood_mode is None:
        result.update(await creates(load, args.rate, args.seconds))
    else:
        out = Path(args.logs) / "flood-answers.json"
        flooding = multiprocessing.get_context("spawn").Process(
            target=flood_process,
            args=(f"{gw}/v1/auth/token", args.flood_rate, args.seconds + 1, flood_mode == "many", out),
        )
        flooding.start()
        await asyncio.sleep(0.5)  # the flood is under way before the measured creates start
        result.update(await creates(load, args.rate, args.seconds))
        await asyncio.to_thread(flooding.join, 60)
        # Status -1: not sent, 256 were already in flight; 0: the connection failed.
        result["flood_answers_by_status"] = json.loads(out.read_text())
        result["flood_offered_per_s"] = args.flood_rate
    print(json.dumps(result), flush=True)
    return result


async def run_bench(args: argparse.Namespace, logs: Path, rabbit: str) -> list[dict[str, object]]:
    for db in ("benchflood_gateway", "benchflood_payments", "benchflood_providers"):
        await recreate(db)
    pp, wp, vp, vwp = free_port(), free_port(), free_port(), free_port()
    admin = secrets.token_urlsafe(32)
    gw_env = {
        "GATEWAY_DATABASE_URL": pg_url("benchflood_gateway"),
        "GATEWAY_PAYMENTS_INTERNAL_SECRET": SECRET,
        "GATEWAY_WEBHOOKS_INTERNAL_SECRET": SECRET,
        "GATEWAY_PROVIDERS_INTERNAL_SECRET": SECRET,
        "GATEWAY_ADMIN_TOKEN": admin,
        "GATEWAY_JWT_KEYS": "bench:" + "b" * 40,
        "GATEWAY_PAYMENTS_URL": f"http://127.0.0.1:{pp}",
        "GATEWAY_PROVIDERS_URL": f"http://127.0.0.1:{vp}",
        "GATEWAY_RATE_LIMIT_PER_SECOND": "0",
        "GATEWAY_LOG_LEVEL": "WARNING",
        # Small pools: 100 creates/s need few connections, and the machine's PostgreSQL is shared.
        "GATEWAY_DATABASE_POOL_SIZE": "8",
    }
    pay_env = {
        "PAYMENTS_DATABASE_URL": pg_url("benchflood_payments"),
        "PAYMENTS_BUS_URL": rabbit,
        "PAYMENTS_INTERNAL_SECRET": SECRET,
        "PAYMENTS_PROVIDERS_INTERNAL_SECRET": SECRET,
        "PAYMENTS_LOG_LEVEL": "WARNING",
        "PAYMENTS_DATABASE_POOL_SIZE": "8",
    }
    prov_env = {
        "PROVIDERS_DATABASE_URL": pg_url("benchflood_providers"),
        "PROVIDERS_BUS_URL": rabbit,
        "PROVIDERS_INTERNAL_SECRET": SECRET,
        "PROVIDERS_SANDBOX_SECRET": SECRET,
        "PROVIDERS_CREDENTIALS_KEYS": "YmVuY2gtY3JlZGVudGlhbHMta2V5LTAxMjM0NTY3ODk=",  # a Fernet key, bench only
        "PROVIDERS_PORT": str(vp),
        "PROVIDERS_WORKER_PORT": str(vwp),
        "PROVIDERS_LOG_LEVEL": "WARNING",
        "PROVIDERS_DATABASE_POOL_SIZE": "4",
    }
    for script, env in (("gateway", gw_env), ("payments-svc", pay_env), ("providers-svc", prov_env)):
        subprocess.run([str(BIN / script), "migrate"], env={**os.environ, **env}, check=True)
    services = [
        spawn("payments-api", [str(BIN / "payments-svc"), "api"], {**pay_env, "PAYMENTS_PORT": str(pp)}, logs),
        spawn("payments-worker", [str(BIN / "payments-svc"), "worker"], {**pay_env, "PAYMENTS_PORT": str(wp)}, logs),
        spawn("providers", [str(BIN / "providers-svc"), "all"], prov_env, logs),
    ]
    results: list[dict[str, object]] = []
    try:
        for port in (pp, wp):
            await asyncio.to_thread(wait_ready, f"http://127.0.0.1:{port}/readyz")
        token = ""
        for label, settings in (("protected", PROTECTED), ("unprotected", UNPROTECTED)):
            gp = free_port()
            gateway: Proc = spawn(
                f"gateway-{label}", [str(BIN / "gateway"), "api"], {**gw_env, **settings, "GATEWAY_PORT": str(gp)}, logs
            )
            try:
                await asyncio.to_thread(wait_ready, f"http://127.0.0.1:{gp}/healthz")
                gw = f"http://127.0.0.1:{gp}"
                if not token:
                    token = await _tenant_token(gw, admin)
                load = SteadyLoad(f"{gw}/v1/payments", {"Authorization": f"Bearer {token}"})
                async with aiohttp.ClientSession() as warm:
                    for _ in range(50):
                        await load.one(warm)
                if label == "protected":
                    results.append(await phase("no flood", load, gw, args, flood_mode=None))
                    results.append(await phase("flood from one address", load, gw, args, flood_mode="one"))
                    results.append(await phase("flood from many addresses", load, gw, args, flood_mode="many"))
                else:
                    results.append(await phase("no flood, protections off", load, gw, args, flood_mode=None))
                    results.append(
                        await phase("flood from many addresses, protections off", load, gw, args, flood_mode="many")
                    )
                results[-1]["gateway_peak_rss_mib"] = round(gateway.peak_rss_mib(), 1)
            finally:
                stop([gateway])
    finally:
        stop(services)
    return results


async def _tenant_token(gw: str, admin: str) -> str:
    async with aiohttp.ClientSession() as s:
        async with s.post(
            f"{gw}/admin/tenants",
            json={"app_name": "bench", "display_name": "Bench"},
            headers={"Authorization": f"Bearer {admin}"},
        ) as r:
            secret = (await r.json())["secret"]
        async with s.post(f"{gw}/v1/auth/token", json={"app_name": "bench", "secret": secret}) as r:
            return str((await r.json())["access_token"])


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=50.0, help="creates per second, offered")
    parser.add_argument("--flood-rate", type=float, default=200.0, help="wrong-secret token requests per second")
    args = parser.parse_args()
    logs = Path("bench-results")
    logs.mkdir(exist_ok=True)
    args.logs = str(logs)
    with scratch_vhost() as rabbit:
        results = await run_bench(args, logs, rabbit)
    (logs / "token_flood.json").write_text(json.dumps(results, indent=2))
    reference = float(results[0]["create_p99_ms"])  # type: ignore[arg-type]
    print(f"create p99 without a flood: {reference} ms")
    for result in results[1:]:
        print(f"{result['phase']}: create p99 {result['create_p99_ms']} ms, {result['create_achieved_per_s']}/s")


if __name__ == "__main__":
    uvloop.run(main())
