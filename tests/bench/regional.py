"""``make bench``: Payme (Check → Create → Perform) and Click (Prepare → Complete) flows through the
gateway (distributed mode: gateway → providers-svc on PostgreSQL, relay to RabbitMQ), beside a bare
aiohttp + asyncpg endpoint doing the same reads and writes (``regional_baseline.py``), in the same run.

Both targets run side by side. For each target and provider: flows/s at saturation (closed loop,
``--clients`` flows in flight) in ``--rounds`` windows of ``--seconds``, the two targets taking turns
(A B, B A...: a drift of the machine's speed falls on both alike), the platform's window ending when what
its flows deferred is done (payments-svc has every order paid, both relays have published); p50/p99 per
callback at a fixed offered rate of ``--rate`` flows/s (open loop), CPU milliseconds per flow by process;
then the ratio of the platform's flows/s to the baseline's, round by round, and its median. The bench
is the provider: it holds a ``test`` Payme and Click account of its own, assigned to its tenant, and
calls our endpoints as they would. Every order is created and started through the public API before
the timed part. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import os
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import aiohttp
import asyncpg
import cpu  # the bench's own helpers, beside this file (the script's directory is on sys.path)
import uvloop
from billing_runtime.testing import free_port
from providers_svc.protocols.click.signing import SignedFields, sign
from regional_baseline import CLICK_SECRET, CLICK_SERVICE, PAYME_KEY
from run import HERE, PG, Proc, recreate, spawn, stop, wait_ready
from webhooks import start_platform, tenant_token
from windows import Window, cpu_per_unit, outbox_pending, per_second, quiet, ratios, turn

# The longest the platform may take to apply what a window's flows deferred (well under a second): past
# it something is stuck, and the bench says so instead of waiting forever.
DRAIN_LIMIT = 60.0


def click_sign(form: dict[str, str], secret: str) -> str:
    fields = SignedFields(
        click_trans_id=form["click_trans_id"],
        service_id=form["service_id"],
        merchant_trans_id=form["merchant_trans_id"],
        amount=form["amount"],
        action=form["action"],
        sign_time=form["sign_time"],
        merchant_prepare_id=form.get("merchant_prepare_id"),
    )
    return sign(fields, secret)


AMOUNT = 500_000  # 5,000.00 so'm in tiyin (UZS minor units, as Payme counts them)


@dataclass(frozen=True)
class Order:
    payment_id: str
    amount: int


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, step: str, seconds: float) -> None:
        self.latencies.setdefault(step, []).append(seconds)


def _payme_ok(body: dict[str, object]) -> bool:
    return "result" in body and "error" not in body


class PaymeFlow:
    """Payme's three calls for one order, as its servers send them."""

    steps = ("CheckPerformTransaction", "CreateTransaction", "PerformTransaction")

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.headers = {"Authorization": "Basic " + base64.b64encode(f"Paycom:{key}".encode()).decode()}
        self.ids = itertools.count(1)

    async def _call(self, http: aiohttp.ClientSession, stats: Stats, method: str, params: dict[str, object]) -> bool:
        body = {"jsonrpc": "2.0", "id": next(self.ids), "method": method, "params": params}
        started = time.perf_counter()
        async with http.post(self.url, json=body, headers=self.headers) as r:
            answer = await r.json(content_type=None)
        stats.add(method, time.perf_counter() - started)
        if not _payme_ok(answer):
            stats.errors.append(f"{method}: {json.dumps(answer)[:200]}")
            return False
        return True

    async def run(self, http: aiohttp.ClientSession, order: Order, stats: Stats) -> bool:
        account = {"order_id": order.payment_id}
        payme_id = secrets.token_hex(12)
        now_ms = int(time.time() * 1000)
        return (
            await self._call(http, stats, "CheckPerformTransaction", {"amount": order.amount, "account": account})
            and await self._call(
                http,
                stats,
                "CreateTransaction",
                {"id": payme_id, "time": now_ms, "amount": order.amount, "account": account},
            )
            and await self._call(http, stats, "PerformTransaction", {"id": payme_id})
        )


class ClickFlow:
    """Click's Prepare and Complete for one order, signed as Click signs them."""

    steps = ("prepare", "complete")

    def __init__(self, base: str, service_id: str, secret: str) -> None:
        self.base = base
        self.service_id = service_id
        self.secret = secret
        self.trans = itertools.count(int(time.time()) * 1000)

    async def _post(self, http: aiohttp.ClientSession, stats: Stats, step: str, form: dict[str, str]) -> dict | None:
        started = time.perf_counter()
        async with http.post(f"{self.base}/{step}", data=form) as r:
            answer = await r.json(content_type=None)
        stats.add(step, time.perf_counter() - started)
        if answer.get("error") != 0:
            stats.errors.append(f"{step}: {json.dumps(answer)[:200]}")
            return None
        return dict(answer)

    async def run(self, http: aiohttp.ClientSession, order: Order, stats: Stats) -> bool:
        trans = str(next(self.trans))
        form = {
            "click_trans_id": trans,
            "service_id": self.service_id,
            "click_paydoc_id": trans,
            "merchant_trans_id": order.payment_id,
            "amount": str(Decimal(order.amount) / 100),
            "action": "0",
            "error": "0",
            "error_note": "Success",
            "sign_time": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        }
        form["sign_string"] = click_sign(form, self.secret)
        prepared = await self._post(http, stats, "prepare", form)
        if prepared is None:
            return False
        complete = {**form, "action": "1", "merchant_prepare_id": str(prepared["merchant_prepare_id"])}
        complete["sign_string"] = click_sign(complete, self.secret)
        return await self._post(http, stats, "complete", complete) is not None


Flow = PaymeFlow | ClickFlow


async def closed_loop(
    flow: Flow,
    orders: list[Order],
    clients: int,
    seconds: float,
    procs: list[Proc],
    settled: Callable[[list[Order]], Awaitable[None]] | None = None,
) -> Window:
    """Flows/s with ``clients`` flows in flight, each starting the next on completion. ``settled`` waits
    (given the orders whose flows completed) for the work the target deferred: the platform's paid orders
    flowing on to payments-svc, inside the measured window, so that work counts in its time and its CPU."""
    stats = Stats()
    queue = iter(orders)
    done = 0
    paid: list[Order] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients * 2)) as http:
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                order = next(queue, None)
                if order is None:
                    return
                if await flow.run(http, order, stats):
                    done += 1
                    paid.append(order)

        groups = {"load generator": os.getpid(), **{p.name: p.popen.pid for p in procs}}
        before = cpu.snapshot(groups)
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        if settled is not None:
            await settled(paid)
        elapsed = time.perf_counter() - started
        return Window(done, elapsed, cpu.per_unit_ms(before, cpu.snapshot(groups), max(done, 1)), stats)


async def open_loop(flow: Flow, orders: list[Order], rate: float) -> tuple[Stats, float]:
    """Flows started on a fixed schedule, whatever the latency: per-step latencies and the achieved rate."""
    stats = Stats()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000)) as http:
        tasks = []
        started = time.perf_counter()
        for i, order in enumerate(orders):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(flow.run(http, order, stats)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    return stats, len(orders) / elapsed


def _percentiles(stats: Stats) -> dict[str, dict[str, float]]:
    out = {}
    for step, values in stats.latencies.items():
        ordered = sorted(values)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        out[step] = {"p50_ms": round(statistics.median(ordered) * 1000, 2), "p99_ms": round(p99 * 1000, 2)}
    return out


@dataclass
class Target:
    """One provider's flow at one running target: how it makes its orders, its processes, what its
    window waits for after the load, and the windows measured."""

    label: str
    provider: str
    flow: Flow
    make_orders: Callable[[int], Awaitable[list[Order]]]
    settled: Callable[[list[Order]], Awaitable[None]] | None = None
    windows: list[Window] = field(default_factory=list)


async def saturate(pair: list[Target], every: list[Proc], args: argparse.Namespace) -> None:
    """``--rounds`` saturated windows of each target, taking turns (A B, B A, A B...) so that a drift of
    the machine's speed falls on both alike. Each window's orders are made before it (the platform's
    left to settle: their events published), so that no window pays for making orders. The CPU of
    ``every`` process is counted in each window, the idle target's too."""
    for target in pair:
        await closed_loop(target.flow, await target.make_orders(50), 8, 30, every, target.settled)  # warm-up
    for n in range(args.rounds):
        for target in turn(n, pair):
            # ``--max-rate`` for the first window, then twice the best rate seen, so that no window runs
            # out and the platform's (made through its API) are not made by the thousand for nothing.
            rate = 2 * max(w.per_second for w in target.windows) if target.windows else args.max_rate
            orders = await target.make_orders(int(rate * args.seconds))
            await quiet(every)
            window = await closed_loop(target.flow, orders, args.clients, args.seconds, every, target.settled)
            target.windows.append(window)
            print(f"{target.provider} round {n + 1} {target.label}: {window.per_second:.1f} flows/s", flush=True)


async def at_rate(target: Target, every: list[Proc], args: argparse.Namespace) -> dict[str, object]:
    """The target's figures: its saturated windows' and its per-callback latency at ``--rate``."""
    orders = await target.make_orders(int(args.rate * args.seconds))
    await quiet(every)
    rate_stats, achieved = await open_loop(target.flow, orders, args.rate)
    windows = target.windows
    cpu_ms = cpu_per_unit(windows)
    errors = [e for w in windows for e in w.stats.errors] + rate_stats.errors
    result = {
        "target": target.label,
        "provider": target.provider,
        "saturated_flows_per_s": round(per_second(windows), 1),
        "saturated_flows_per_s_by_round": [round(w.per_second, 1) for w in windows],
        "offered_flows_per_s": args.rate,
        "achieved_flows_per_s": round(achieved, 1),
        "latency_at_rate": _percentiles(rate_stats),
        "errors": len(errors),
        "first_errors": errors[:3],
        "cpu_ms_per_flow_at_saturation": cpu_ms,
    }
    print(json.dumps(result), flush=True)
    return result


# -- the baseline ---------------------------------------------------------------------------------------


async def start_baseline(logs: Path, stack: contextlib.AsyncExitStack) -> tuple[list[Target], list[Proc]]:
    await recreate("bench_regional_baseline")
    port = free_port()
    dsn = PG.rsplit("/", 1)[0] + "/bench_regional_baseline"
    procs = [spawn("baseline", [sys.executable, str(HERE / "regional_baseline.py"), dsn, str(port)], {}, logs)]
    stack.callback(stop, procs)
    base = f"http://127.0.0.1:{port}"
    await asyncio.to_thread(wait_ready, f"{base}/healthz")
    conn = await asyncpg.connect(dsn)
    stack.push_async_callback(conn.close)
    counter = itertools.count()

    def orders_of(provider: str) -> Callable[[int], Awaitable[list[Order]]]:
        async def make(n: int) -> list[Order]:
            now = datetime.now(UTC)
            rows = []
            for _ in range(n):
                i = next(counter)
                rows.append((f"ptx_b{i}", f"pay_b{i}", provider, AMOUNT, "pending", "pac_b", False, now, now))
            await conn.copy_records_to_table("orders", records=rows, columns=None)
            return [Order(r[1], AMOUNT) for r in rows]

        return make

    targets = [
        Target("baseline", "payme", PaymeFlow(f"{base}/billing/payme", PAYME_KEY), orders_of("payme")),
        Target(
            "baseline", "click", ClickFlow(f"{base}/billing/click", CLICK_SERVICE, CLICK_SECRET), orders_of("click")
        ),
    ]
    return targets, procs


# -- the platform -----------------------------------------------------------------------------------------


async def _account(http: aiohttp.ClientSession, gw: str, admin: str, tenant_id: str, body: dict[str, object]) -> None:
    auth = {"Authorization": f"Bearer {admin}"}
    async with http.post(f"{gw}/admin/provider-accounts", json=body, headers=auth) as r:
        account = await r.json()
        assert r.status == 201, account
    url = f"{gw}/admin/tenants/{tenant_id}/provider-accounts/{body['provider']}"
    async with http.put(url, json={"provider_account_id": account["id"]}, headers=auth) as r:
        assert r.status == 200, await r.text()


def _platform_orders(
    http: aiohttp.ClientSession, gw: str, token: str, provider: str
) -> Callable[[int], Awaitable[list[Order]]]:
    auth = {"Authorization": f"Bearer {token}"}

    async def one(i: int) -> Order:
        key = f"regional-{provider}-{i}-{secrets.token_hex(4)}"
        body = {"amount": AMOUNT, "currency": "UZS", "order_id": key}
        async with http.post(f"{gw}/v1/payments", json=body, headers={**auth, "Idempotency-Key": key}) as r:
            payment = await r.json()
            assert r.status == 201, payment
        async with http.post(f"{gw}/v1/checkout/{payment['checkout_token']}/pay", json={"provider": provider}) as r:
            assert r.status == 200, await r.text()
        return Order(payment["id"], AMOUNT)

    counter = itertools.count()

    async def make(n: int) -> list[Order]:
        orders: list[Order] = []
        for chunk in range(0, n, 32):
            orders += await asyncio.gather(*(one(next(counter)) for _ in range(min(32, n - chunk))))
        return orders

    return make


async def regional_accounts(
    http: aiohttp.ClientSession, gw: str, admin: str, tenant_id: str
) -> tuple[PaymeFlow, ClickFlow]:
    """A ``test`` Payme and Click account of the bench's own, assigned to the tenant; the flows that
    play those providers with their credentials."""
    payme_key = secrets.token_urlsafe(27)
    click_secret = secrets.token_urlsafe(18)
    click_service = str(100_000 + secrets.randbelow(800_000))
    await _account(
        http,
        gw,
        admin,
        tenant_id,
        {
            "provider": "payme",
            "name": "bench kassa",
            "environment": "test",
            "currencies": ["UZS"],
            "credentials": {"merchant_id": secrets.token_hex(12), "key": payme_key},
        },
    )
    await _account(
        http,
        gw,
        admin,
        tenant_id,
        {
            "provider": "click",
            "name": "bench click",
            "environment": "test",
            "currencies": ["UZS"],
            "credentials": {
                "service_id": click_service,
                "merchant_id": "1",
                "merchant_user_id": "1",
                "secret_key": click_secret,
            },
        },
    )
    return PaymeFlow(f"{gw}/billing/payme", payme_key), ClickFlow(f"{gw}/billing/click", click_service, click_secret)


async def start_platform_targets(logs: Path, stack: contextlib.AsyncExitStack) -> tuple[list[Target], list[Proc]]:
    procs, gw, admin = await start_platform(logs)
    stack.callback(stop, procs)
    http = await stack.enter_async_context(aiohttp.ClientSession())
    tenant_id, token = await tenant_token(http, gw, admin)
    payme, click = await regional_accounts(http, gw, admin, tenant_id)
    payments = await asyncpg.connect(PG.rsplit("/", 1)[0] + "/benchwh_payments")
    stack.push_async_callback(payments.close)
    providers = await asyncpg.connect(PG.rsplit("/", 1)[0] + "/benchwh_providers")
    stack.push_async_callback(providers.close)

    async def settled(orders: list[Order]) -> None:
        """Until payments-svc has every one of ``orders`` paid and both relays have published what they
        wrote: a paid order flows on (providers-svc's outbox, RabbitMQ, payments-svc's worker and its
        outbox), and that is part of what the flow cost."""
        ids = [order.payment_id for order in orders]
        unpaid = "SELECT count(*) FROM payments WHERE id = ANY($1::varchar[]) AND status <> 'SUCCEEDED'"
        try:
            async with asyncio.timeout(DRAIN_LIMIT):
                while (
                    await payments.fetchval(unpaid, ids)
                    or await outbox_pending(payments)
                    or await outbox_pending(providers)
                ):
                    await asyncio.sleep(0.02)
        except TimeoutError:
            left = await payments.fetchval(unpaid, ids)
            raise SystemExit(
                f"{DRAIN_LIMIT:.0f} s after the load, {left} of {len(ids)} paid orders were not SUCCEEDED at"
                " payments-svc or an outbox still held events: something on the platform's path is stuck"
            ) from None

    def orders_of(provider: str) -> Callable[[int], Awaitable[list[Order]]]:
        make = _platform_orders(http, gw, token, provider)

        async def made_and_settled(n: int) -> list[Order]:
            orders = await make(n)
            await settled([])  # the orders' own events published before any window starts
            return orders

        return made_and_settled

    targets = [
        Target("platform", "payme", payme, orders_of("payme"), settled),
        Target("platform", "click", click, orders_of("click"), settled),
    ]
    return targets, procs


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each saturated window and open loop")
    parser.add_argument("--rounds", type=int, default=4, help="saturated windows of each target, taking turns")
    parser.add_argument("--rate", type=float, default=100.0, help="offered flows/s for the latency figures")
    parser.add_argument("--clients", type=int, default=32, help="flows in flight at saturation")
    parser.add_argument("--max-rate", type=float, default=400.0, help="orders prepared per second of saturation")
    parser.add_argument("--only", choices=("baseline", "platform"), help="one target (a quick check of the bench)")
    parser.add_argument("--providers", default="payme,click", help="of payme,click")
    args = parser.parse_args()
    out = HERE.parent.parent / "bench-results"
    out.mkdir(exist_ok=True)
    logs = out / "logs-regional"
    logs.mkdir(exist_ok=True)
    summary: dict[str, object] = {}
    async with contextlib.AsyncExitStack() as stack:
        started = []
        if args.only != "platform":
            started.append(await start_baseline(logs, stack))
        if args.only != "baseline":
            started.append(await start_platform_targets(logs, stack))
        every = [proc for _, procs in started for proc in procs]
        for provider in args.providers.split(","):
            pair = [t for targets, _ in started for t in targets if t.provider == provider]
            await saturate(pair, every, args)
            results = [await at_rate(t, every, args) for t in pair]
            summary[provider] = results
            if len(pair) < 2:
                continue
            base, ours = pair
            # Each round's platform window against the baseline's beside it; their median is the figure.
            summary[f"{provider}_ratio"], summary[f"{provider}_ratio_by_round"] = ratios(base.windows, ours.windows)
            worst = max(step["p99_ms"] for step in results[1]["latency_at_rate"].values())  # type: ignore[union-attr]
            summary[f"{provider}_worst_callback_p99_ms"] = worst
    if args.only:
        return
    print(json.dumps({k: v for k, v in summary.items() if k.endswith(("ratio", "round", "p99_ms"))}), flush=True)
    (out / "regional.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    uvloop.run(main())
