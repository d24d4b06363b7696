"""Whole payment lifecycle (part of ``make bench``, issue 16), distributed mode on PostgreSQL and RabbitMQ.

A paid payment is: create (tenant → gateway → payments-svc) → the payer's checkout ``pay`` (→ providers-svc)
→ the provider confirms (the sandbox bank's signed callback after the payer's choice on its page, or
Payme's Check → Create → Perform, or Click's Prepare → Complete, each played by this bench as the
provider's servers would, or Octo's signed notify from its simulator after the payer's "pay" on the
simulator's page, or Stripe's signed ``payment_intent.succeeded`` from localstripe after the payer's test
card on our Stripe page: ``lifecycle_providers.py``) → providers-svc's outcome (outbox → RabbitMQ) →
payments worker → webhook dispatcher → the tenant's ``payment.succeeded`` webhook at the receiver (in
this process, 127.0.0.1). ``--providers`` picks among sandbox, payme, click, octo and stripe.

1. **Paid payments/s at saturation** per provider: a closed loop of ``--clients`` tenants' backends,
   each starting its next payment when the webhook of the last one arrived; CPU milliseconds per paid
   payment by process (every service, PostgreSQL, RabbitMQ, this load generator, and localstripe, the
   fake Stripe started for ``stripe`` only, as Stripe's servers); per route p50/p99. localstripe waits
   1 s before each webhook, so a Stripe lifecycle takes over 1 s: below ``--clients`` paid payments/s.
2. **Dispatcher vs a bare signed-POST loop**, to the same receiver in the same run: ``--events`` payment
   events published on the bus spread over 4 endpoints (``webhooks.deliveries_per_second``), against a
   loop that signs each with ``standardwebhooks`` and POSTs it, with as many in flight as the dispatcher
   allows over 4 endpoints, run before and after the dispatcher (the ratio is to their mean).
3. **Mixed load**: sandbox and Payme lifecycles at ``--rate`` paid payments/s (open loop), each payment
   also read twice through the status API; p50/p99 per route, and decision/Perform → webhook.

Bare per-hop baselines of create and of the callbacks are ``run.py`` and ``regional.py`` (same
``make bench``); idle cost is ``idle.py``. Writes bench-results/lifecycle.json. Run from the repository
root: ``.venv/bin/python tests/bench/lifecycle.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import secrets
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import cpu
import uvloop
from aiohttp import web
from lifecycle_providers import Confirmer, OctoPage, ProviderCalls, SandboxPage, start_localstripe, stripe_account
from regional import Order, Stats, regional_accounts
from run import HERE, Proc, stop
from standardwebhooks import Webhook
from webhooks import Receiver, add_endpoint, analyze_platform, deliveries_per_second, start_platform, tenant_token

AMOUNT = 500_000  # UZS in tiyin: every provider of the bench accepts it
PROVIDERS = ("sandbox", "payme", "click", "octo", "stripe")


class Waiter(Receiver):
    """The tenants' endpoint: answers 200 at once and wakes whoever waits for a payment's webhook."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: dict[str, asyncio.Future[float]] = {}

    async def handle(self, request: web.Request) -> web.Response:
        response = await super().handle(request)
        body = json.loads(await request.read())
        if body["type"] == "payment.succeeded":
            future = self.waiting.pop(body["data"]["payment"]["id"], None)
            if future is not None and not future.done():
                future.set_result(time.perf_counter())
        return response

    def expect(self, payment_id: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[payment_id] = future
        return future


class Tenant:
    """A tenant's backend and its payers: creates payments and sends the payer to pay them."""

    def __init__(self, gw: str, token: str, waiter: Waiter) -> None:
        self.gw = gw
        self.auth = {"Authorization": f"Bearer {token}"}
        self.waiter = waiter
        self.counter = itertools.count()

    async def _timed(self, stats: Stats, route: str, call: Any, ok: int) -> dict | None:
        started = time.perf_counter()
        async with call as r:
            body = await r.read()
            status = r.status
        stats.add(route, time.perf_counter() - started)
        if status != ok:
            stats.errors.append(f"{route}: {status} {body[:200]!r}")
            return None
        return json.loads(body) if body and ok != 303 else {}

    async def start(self, http: aiohttp.ClientSession, provider: str, stats: Stats) -> tuple[str, str] | None:
        """Create a payment and pick ``provider`` on its checkout: (payment id, where the payer is sent)."""
        key = f"life-{provider}-{next(self.counter)}-{secrets.token_hex(4)}"
        payment = await self._timed(
            stats,
            "POST /v1/payments",
            http.post(
                f"{self.gw}/v1/payments",
                json={"amount": AMOUNT, "currency": "UZS", "order_id": key},
                headers={**self.auth, "Idempotency-Key": key},
            ),
            201,
        )
        if payment is None:
            return None
        started = await self._timed(
            stats,
            "POST /v1/checkout/{token}/pay",
            http.post(f"{self.gw}/v1/checkout/{payment['checkout_token']}/pay", json={"provider": provider}),
            200,
        )
        if started is None:
            return None
        return payment["id"], str(started.get("redirect_url", ""))

    async def read(self, http: aiohttp.ClientSession, payment_id: str, stats: Stats) -> None:
        await self._timed(
            stats, "GET /v1/payments/{id}", http.get(f"{self.gw}/v1/payments/{payment_id}", headers=self.auth), 200
        )


class Lifecycle:
    """One paid payment through one provider, from the create to the tenant's webhook."""

    def __init__(self, tenant: Tenant, provider: str, confirmer: Confirmer, reads: int = 0) -> None:
        self.tenant = tenant
        self.provider = provider
        self.confirmer = confirmer
        self.reads = reads

    async def run(self, http: aiohttp.ClientSession, stats: Stats, timeout: float = 30) -> bool:
        started = await self.tenant.start(http, self.provider, stats)
        if started is None:
            return False
        payment_id, redirect_url = started
        arrived = self.tenant.waiter.expect(payment_id)
        reads = [asyncio.create_task(self.tenant.read(http, payment_id, stats)) for _ in range(self.reads)]
        confirmed_at = time.perf_counter()
        ok = await self.confirmer.confirm(http, Order(payment_id, AMOUNT), redirect_url, stats)
        await asyncio.gather(*reads)
        if not ok:
            self.tenant.waiter.waiting.pop(payment_id, None)
            return False
        try:
            at = await asyncio.wait_for(arrived, timeout)
        except TimeoutError:
            stats.errors.append(f"no webhook for {payment_id} within {timeout} s")
            return False
        stats.add(f"{self.provider}: confirmation → webhook", at - confirmed_at)
        return True


def _groups(procs: list[Proc]) -> dict[str, int]:
    return {"load generator + receiver": os.getpid(), **{p.name: p.popen.pid for p in procs}}


async def saturation(
    lifecycle: Lifecycle, clients: int, seconds: float, procs: list[Proc]
) -> tuple[float, dict[str, float], Stats]:
    """Paid payments/s with ``clients`` payments in flight, each client starting its next one when the
    webhook of its last arrived."""
    stats = Stats()
    done = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients * 3)) as http:
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                if await lifecycle.run(http, stats):
                    done += 1

        groups = _groups(procs)
        before = cpu.snapshot(groups)
        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - began
        return done / elapsed, cpu.per_unit_ms(before, cpu.snapshot(groups), max(done, 1)), stats


async def mixed(lifecycles: list[Lifecycle], rate: float, seconds: float) -> tuple[Stats, float]:
    """Lifecycles started on a fixed schedule at ``rate``/s, round-robin over ``lifecycles``."""
    stats = Stats()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000)) as http:
        tasks = []
        began = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(lifecycles[i % len(lifecycles)].run(http, stats)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - began
    return stats, int(rate * seconds) / elapsed


def percentiles(stats: Stats) -> dict[str, dict[str, float]]:
    out = {}
    for route, values in sorted(stats.latencies.items()):
        ordered = sorted(values)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        out[route] = {
            "n": len(ordered),
            "p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p99_ms": round(p99 * 1000, 1),
        }
    return out


async def bare_signed_posts(url: str, n: int, in_flight: int, groups: dict[str, int]) -> tuple[float, dict[str, float]]:
    """The bare loop: sign each event with ``standardwebhooks`` and POST it, ``in_flight`` at a time."""
    signer = Webhook("whsec_" + secrets.token_urlsafe(24).replace("-", "A").replace("_", "B"))
    bodies = [
        json.dumps({"id": f"evt_bare{i}", "type": "payment.created", "data": {"payment": {"id": f"pay_bare{i}"}}})
        for i in range(n)
    ]
    queue = iter(enumerate(bodies))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight)) as http:

        async def sender() -> None:
            for i, body in queue:
                msg_id = f"msg_bare{i}"
                now = time.time()
                signature = signer.sign(msg_id, datetime.fromtimestamp(now, UTC), body)
                headers = {
                    "Content-Type": "application/json",
                    "webhook-id": msg_id,
                    "webhook-timestamp": str(int(now)),
                    "webhook-signature": signature,
                }
                async with http.post(url, data=body.encode(), headers=headers) as r:
                    await r.read()
                    assert r.status == 200

        before = cpu.snapshot(groups)
        began = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(in_flight)))
        elapsed = time.perf_counter() - began
    return n / elapsed, cpu.per_unit_ms(before, cpu.snapshot(groups), n)


async def setup(
    http: aiohttp.ClientSession, gw: str, admin: str, url: str, localstripe: str | None
) -> tuple[str, dict[str, Confirmer]]:
    """One test tenant with an endpoint for ``payment.succeeded``, test Payme and Click accounts of the
    bench's own, a test Stripe account at localstripe (if started) and no Octo account (its simulator
    pays); how each provider confirms a payment."""
    tenant_id, token = await tenant_token(http, gw, admin)
    await add_endpoint(http, gw, token, url, ["payment.succeeded"])
    payme, click = await regional_accounts(http, gw, admin, tenant_id)
    confirmers: dict[str, Confirmer] = {
        "sandbox": SandboxPage(),
        "payme": ProviderCalls(payme),
        "click": ProviderCalls(click),
        "octo": OctoPage(),
    }
    if localstripe is not None:
        confirmers["stripe"] = await stripe_account(http, gw, admin, tenant_id, localstripe, "UZS")
    return token, confirmers


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each saturation run and of the mix")
    parser.add_argument("--clients", type=int, default=32, help="payments in flight at saturation")
    parser.add_argument("--rate", type=float, default=100.0, help="paid payments/s of the mixed load")
    parser.add_argument("--events", type=int, default=3000, help="deliveries of the dispatcher comparison")
    parser.add_argument("--providers", default=",".join(PROVIDERS), help="of " + ",".join(PROVIDERS))
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: saturation,dispatcher,mixed")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    providers = args.providers.split(",")
    if unknown := set(providers) - set(PROVIDERS):
        parser.error(f"unknown providers: {', '.join(sorted(unknown))} (of {', '.join(PROVIDERS)})")
    out = HERE.parent.parent / "bench-results"
    logs = out / "logs-lifecycle"
    logs.mkdir(parents=True, exist_ok=True)
    waiter = Waiter()
    runner, url = await waiter.start()
    procs, gw, admin = await start_platform(logs)
    summary: dict[str, object] = {"clients": args.clients, "seconds": args.seconds}
    try:
        localstripe = None
        if "stripe" in providers:  # Stripe's servers: a process of their own, its own CPU group
            stripe_proc, localstripe = await start_localstripe(logs)
            procs.append(stripe_proc)
        async with aiohttp.ClientSession() as http:
            token, confirmers = await setup(http, gw, admin, url, localstripe)
        tenant = Tenant(gw, token, waiter)
        flows = {p: Lifecycle(tenant, p, confirmer) for p, confirmer in confirmers.items()}
        # Warm-up at the measured concurrency: every pooled connection the measured run will use is opened,
        # has its types introspected and its statements prepared, and PostgreSQL has settled on their
        # generic plans (after five custom ones per connection), none of which is the steady state's cost;
        # then the tables' statistics, as autovacuum would have them by now (``analyze_platform``).
        for provider in providers:
            await saturation(flows[provider], args.clients, 3, procs)
        await analyze_platform()
        if "saturation" not in skip:
            results = {}
            for provider in providers:
                per_s, cpu_ms, stats = await saturation(flows[provider], args.clients, args.seconds, procs)
                results[provider] = {
                    "paid_payments_per_s": round(per_s, 1),
                    "cpu_ms_per_paid_payment": cpu_ms,
                    "errors": len(stats.errors),
                    "first_errors": stats.errors[:3],
                    "routes": percentiles(stats),
                }
                print(provider, json.dumps(results[provider]), flush=True)
            summary["saturation"] = results
        if "dispatcher" not in skip:
            groups = _groups(procs)
            # The bare loop before and after the dispatcher's run, its figure their mean: this machine's
            # speed drifts by a fifth within minutes, and a baseline taken on one side only carries that
            # drift into the ratio.
            bare_before, _ = await bare_signed_posts(url, args.events, 16, groups)
            async with aiohttp.ClientSession() as http:
                dispatcher, dispatcher_cpu = await deliveries_per_second(
                    http, gw, admin, waiter, url, args.events, groups, endpoints=4
                )
            bare_after, bare_cpu = await bare_signed_posts(url, args.events, 16, groups)
            bare = (bare_before + bare_after) / 2
            summary["dispatcher"] = {
                "deliveries_per_s": round(dispatcher, 1),
                "bare_signed_posts_per_s": round(bare, 1),
                "bare_before_and_after": [round(bare_before, 1), round(bare_after, 1)],
                "ratio": round(dispatcher / bare, 3),
                "cpu_ms_per_delivery": dispatcher_cpu,
                "bare_cpu_ms_per_post": bare_cpu,
            }
            print("dispatcher", json.dumps(summary["dispatcher"]), flush=True)
        if "mixed" not in skip:
            mix = [
                Lifecycle(tenant, "sandbox", confirmers["sandbox"], reads=2),
                Lifecycle(tenant, "payme", confirmers["payme"], reads=2),
            ]
            stats, achieved = await mixed(mix, args.rate, args.seconds)
            summary["mixed"] = {
                "offered_paid_payments_per_s": args.rate,
                "achieved_per_s": round(achieved, 1),
                "routes": percentiles(stats),
                "errors": len(stats.errors),
                "first_errors": stats.errors[:3],
            }
            print("mixed", json.dumps(summary["mixed"]), flush=True)
        summary["peak_rss_mib"] = {p.name: round(p.peak_rss_mib(), 1) for p in procs}
        summary["rss_at_end_mib"] = {p.name: round(p.rss_mib(), 1) for p in procs}
    finally:
        stop(procs)
        await runner.cleanup()
    (out / "lifecycle.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    uvloop.run(main())
