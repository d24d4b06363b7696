"""``make bench``: signed Stripe webhook events ingested by ``POST /billing/stripe`` through the gateway
(distributed mode: gateway → providers-svc on PostgreSQL, projections, relay to RabbitMQ), beside a bare
aiohttp + asyncpg endpoint doing the same signature check and upsert (``stripe_baseline.py``), in the
same run.

Both targets run side by side. For each: events/s at saturation (closed loop, ``--clients`` in flight)
in ``--rounds`` windows of ``--seconds``, the two targets taking turns (A B, B A, A B, B A: a drift of
the machine's speed falls on both alike), p50/p99 at a fixed offered rate of ``--rate`` events/s (open
loop), CPU milliseconds per event by process; then the ratio of the platform's events/s to the
baseline's, round by round, and its median. The platform's saturated window ends when its relay has
published what the events wrote to the outbox (it falls behind at saturation), so that work counts.

The bench plays Stripe: it signs each event as Stripe does (``Stripe-Signature: t=…,v1=…``) with the
webhook secret of a ``test`` Stripe account it holds, assigned to its tenant. The mix is a customer's
billing life: the customer created and updated, an invoice created and paid, its PaymentIntent and
charge succeeded (PaymentIntents that are none of our payments: recorded and acknowledged, as Stripe's
events for payments made elsewhere are). Every event is new (no duplicates) and every object gets its
events in order. All traffic stays on 127.0.0.1; the account's
``api_base`` is a closed loopback port, so a call to "Stripe" would show up as an error.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import os
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import cpu  # the bench's own helpers, beside this file (the script's directory is on sys.path)
import uvloop
from billing_runtime.testing import free_port
from run import HERE, PG, Proc, recreate, spawn, stop, wait_ready
from webhooks import start_platform, tenant_token
from windows import Window, cpu_per_unit, outbox_pending, per_second, quiet, ratios, turn

API_VERSION = "2026-11-17.acacia"
# The longest the platform's relay may take to publish what a saturation left in its outbox (it takes
# well under a second): past it the relay is stuck, and the bench says so instead of waiting forever.
DRAIN_LIMIT = 60.0


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _event(type_: str, obj: dict[str, object], created: int) -> dict[str, object]:
    return {
        "id": "evt_" + secrets.token_hex(12),
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
        "data": {"object": obj},
    }


def billing_life(n: int) -> list[dict[str, object]]:
    """The six events of one customer's paid invoice, each object's in order."""
    now = int(time.time())
    suffix = f"{n:06d}{secrets.token_hex(4)}"
    customer = {
        "id": f"cus_{suffix}",
        "object": "customer",
        "created": now,
        "email": f"payer{n}@example.com",
        "name": f"Payer {n}",
        "metadata": {"crm_id": str(n)},
        "livemode": False,
    }
    invoice = {
        "id": f"in_{suffix}",
        "object": "invoice",
        "created": now,
        "customer": customer["id"],
        "subscription": None,
        "status": "open",
        "amount_due": 2500,
        "amount_paid": 0,
        "currency": "usd",
        "metadata": {},
        "livemode": False,
    }
    intent = {
        "id": f"pi_{suffix}",
        "object": "payment_intent",
        "created": now,
        "customer": customer["id"],
        "invoice": invoice["id"],
        "status": "succeeded",
        "amount": 2500,
        "amount_received": 2500,
        "currency": "usd",
        "capture_method": "automatic",
        "metadata": {},
        "livemode": False,
    }
    charge = {
        "id": f"ch_{suffix}",
        "object": "charge",
        "created": now,
        "customer": customer["id"],
        "invoice": invoice["id"],
        "payment_intent": intent["id"],
        "status": "succeeded",
        "paid": True,
        "captured": True,
        "amount": 2500,
        "amount_captured": 2500,
        "amount_refunded": 0,
        "refunded": False,
        "currency": "usd",
        "metadata": {},
        "livemode": False,
    }
    return [
        _event("customer.created", customer, now),
        _event("customer.updated", {**customer, "name": f"Payer {n} (updated)"}, now + 1),
        _event("invoice.created", invoice, now),
        _event("payment_intent.succeeded", intent, now + 1),
        _event("charge.succeeded", charge, now + 1),
        _event("invoice.paid", {**invoice, "status": "paid", "amount_paid": 2500}, now + 2),
    ]


def events(count: int) -> Iterator[bytes]:
    """``count`` events, serialized once here so the load generator's cost is the POST alone."""
    lives = itertools.count()
    made = 0
    while made < count:
        for event in billing_life(next(lives)):
            yield json.dumps(event, separators=(",", ":")).encode()
            made += 1


def signed(body: bytes, secret: str) -> dict[str, str]:
    t = str(int(time.time()))
    v1 = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={v1}", "Content-Type": "application/json"}


async def _post(http: aiohttp.ClientSession, url: str, body: bytes, secret: str, stats: Stats) -> bool:
    started = time.perf_counter()
    async with http.post(url, data=body, headers=signed(body, secret)) as r:
        text = await r.text()
    stats.latencies.append(time.perf_counter() - started)
    if r.status != 200:
        stats.errors.append(f"{r.status}: {text[:200]}")
        return False
    return True


async def closed_loop(
    url: str,
    secret: str,
    clients: int,
    seconds: float,
    procs: list[Proc],
    settled: Callable[[], Awaitable[None]] | None = None,
) -> Window:
    """Events/s with ``clients`` in flight for ``seconds``, and CPU ms per event by process. ``settled``
    waits for the work the target deferred (the platform's outbox, published by its relay after the
    answer): inside the measured window, so that work counts in its time and its CPU."""
    stats = Stats()
    bodies = events(int(seconds * 4000))
    done = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients * 2)) as http:
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                body = next(bodies, None)
                if body is None:
                    return
                if await _post(http, url, body, secret, stats):
                    done += 1

        groups = {"load generator": os.getpid(), **{p.name: p.popen.pid for p in procs}}
        before = cpu.snapshot(groups)
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        if settled is not None:
            await settled()
        elapsed = time.perf_counter() - started
        return Window(done, elapsed, cpu.per_unit_ms(before, cpu.snapshot(groups), max(done, 1)), stats)


async def open_loop(url: str, secret: str, rate: float, seconds: float) -> tuple[Stats, float]:
    stats = Stats()
    bodies = list(events(int(rate * seconds)))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000)) as http:
        tasks = []
        started = time.perf_counter()
        for i, body in enumerate(bodies):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_post(http, url, body, secret, stats)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    return stats, len(bodies) / elapsed


@dataclass
class Target:
    """A running target: where to post, with which webhook secret, its processes, and what its window
    waits for after the load (``closed_loop``'s ``settled``)."""

    label: str
    url: str
    secret: str
    procs: list[Proc]
    settled: Callable[[], Awaitable[None]] | None = None
    windows: list[Window] = field(default_factory=list)


async def saturate(targets: list[Target], every: list[Proc], args: argparse.Namespace) -> None:
    """``--rounds`` saturated windows of each target, taking turns in the order A B, B A, A B... so that
    a drift of the machine's speed through the run (it is a shared VM: the same code's CPU per event
    moves by up to 1.8 times between runs minutes apart) falls on both alike. The CPU of ``every``
    process is counted in each window, the idle target's too (a few hundredths of a ms per event)."""
    for target in targets:
        await closed_loop(target.url, target.secret, 8, 3, every, target.settled)  # warm-up
    for n in range(args.rounds):
        for target in turn(n, targets):
            await quiet(every)
            window = await closed_loop(target.url, target.secret, args.clients, args.seconds, every, target.settled)
            target.windows.append(window)
            print(f"round {n + 1} {target.label}: {window.per_second:.1f} events/s", flush=True)


async def at_rate(target: Target, every: list[Proc], args: argparse.Namespace) -> dict[str, object]:
    """The target's figures: its saturated windows' and its latency at ``--rate`` (open loop)."""
    await quiet(every)
    stats, achieved = await open_loop(target.url, target.secret, args.rate, args.seconds)
    ordered = sorted(stats.latencies) or [0.0]
    windows = target.windows
    cpu_ms = cpu_per_unit(windows)
    errors = [e for w in windows for e in w.stats.errors] + stats.errors
    result = {
        "target": target.label,
        "saturated_events_per_s": round(per_second(windows), 1),
        "saturated_events_per_s_by_round": [round(w.per_second, 1) for w in windows],
        "offered_events_per_s": args.rate,
        "achieved_events_per_s": round(achieved, 1),
        "p50_ms_at_rate": round(statistics.median(ordered) * 1000, 2),
        "p99_ms_at_rate": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "errors": len(errors),
        "first_errors": errors[:3],
        "cpu_ms_per_event_at_saturation": cpu_ms,
    }
    print(json.dumps(result), flush=True)
    return result


async def start_baseline(logs: Path) -> Target:
    await recreate("bench_stripe_baseline")
    port = free_port()
    dsn = PG.rsplit("/", 1)[0] + "/bench_stripe_baseline"
    secret = "whsec_" + secrets.token_hex(24)
    argv = [sys.executable, str(HERE / "stripe_baseline.py"), dsn, str(port), secret]
    procs = [spawn("baseline", argv, {}, logs)]
    try:
        await asyncio.to_thread(wait_ready, f"http://127.0.0.1:{port}/healthz")
    except BaseException:
        stop(procs)
        raise
    return Target("baseline", f"http://127.0.0.1:{port}/billing/stripe", secret, procs)


async def start_platform_target(logs: Path) -> Target:
    procs, gw, admin = await start_platform(logs)
    try:
        async with aiohttp.ClientSession() as http:
            tenant_id, _token = await tenant_token(http, gw, admin)
            secret = "whsec_" + secrets.token_hex(24)
            auth = {"Authorization": f"Bearer {admin}"}
            body = {
                "provider": "stripe",
                "name": "bench stripe",
                "environment": "test",
                "currencies": ["USD"],
                "credentials": {"secret_key": "sk_test_" + secrets.token_hex(24), "webhook_secret": secret},
                # Nothing here should call Stripe: a closed loopback port makes any call an error.
                "settings": {"api_base": f"http://127.0.0.1:{free_port()}"},
            }
            async with http.post(f"{gw}/admin/provider-accounts", json=body, headers=auth) as r:
                account = await r.json()
                assert r.status == 201, account
            url = f"{gw}/admin/tenants/{tenant_id}/provider-accounts/stripe"
            async with http.put(url, json={"provider_account_id": account["id"]}, headers=auth) as r:
                assert r.status == 200, await r.text()
    except BaseException:
        stop(procs)
        raise
    return Target("platform", f"{gw}/billing/stripe", secret, procs, outbox_drained)


async def outbox_drained() -> None:
    """Until providers-svc's relay has published every event the ingested ones wrote to its outbox: it
    falls behind at saturation (1,600 rows after 8 s), and what it publishes after the load stops is
    part of what ingesting cost."""
    conn = await asyncpg.connect(PG.rsplit("/", 1)[0] + "/benchwh_providers")
    try:
        async with asyncio.timeout(DRAIN_LIMIT):
            while await outbox_pending(conn):
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise SystemExit(
            f"providers-svc's outbox still held events {DRAIN_LIMIT} s after the load: its relay is stuck"
        ) from None
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each saturated window and open loop")
    parser.add_argument("--rounds", type=int, default=4, help="saturated windows of each target, taking turns")
    parser.add_argument("--rate", type=float, default=100.0, help="offered events/s for the latency figures")
    parser.add_argument("--clients", type=int, default=32, help="events in flight at saturation")
    parser.add_argument("--only", choices=("baseline", "platform"), help="one target (a quick check of the bench)")
    args = parser.parse_args()
    out = HERE.parent.parent / "bench-results"
    out.mkdir(exist_ok=True)
    logs = out / "logs-stripe"
    logs.mkdir(exist_ok=True)
    targets: list[Target] = []
    try:
        if args.only != "platform":
            targets.append(await start_baseline(logs))
        if args.only != "baseline":
            targets.append(await start_platform_target(logs))
        every = [proc for target in targets for proc in target.procs]
        await saturate(targets, every, args)
        results = {target.label: await at_rate(target, every, args) for target in targets}
    finally:
        for target in targets:
            stop(target.procs)
    if len(results) < 2:
        return
    baseline, platform = results["baseline"], results["platform"]
    ratio, by_round = ratios(targets[0].windows, targets[1].windows)
    summary = {
        "baseline": baseline,
        "platform": platform,
        # Each round's platform window against the baseline's beside it; their median is the figure.
        "ratio": ratio,
        "ratio_by_round": by_round,
    }
    line = {
        "ratio": summary["ratio"],
        "ratio_by_round": summary["ratio_by_round"],
        "platform_p99_ms": platform["p99_ms_at_rate"],
    }
    print(json.dumps(line), flush=True)
    (out / "stripe_webhooks.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    uvloop.run(main())
