"""The load the outage and shutdown cases put on the platform, shared by their test modules.

A tenant with webhook endpoints on a receiver of its own, on loopback, that verifies every webhook with
the reference Standard Webhooks library; payers who pay sandbox payments on the hosted checkout; both
acting as API.md tells clients to: what says "not now" (no answer, 502, 503, 504, a key still in
flight) is retried with the same Idempotency-Key, anything else unexpected fails the flow.

A plain module, not a conftest: the tests import it relatively (``from .load import ...``), as pytest
runs with ``--import-mode=importlib``, which puts no test folder on ``sys.path``. The fixtures stay in
the test modules, each setting the load up as its case needs.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from billing_runtime.testing import free_port, scratch_vhost
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

# The conftest's Platform (gateway_url, checkout_url, admin_token, ports, databases, logs); conftest
# modules are not importable.
Platform = Any

# (button on the sandbox provider's page, final status): most pay, some are declined, some stay pending
# until the bank's later callback.
# A declined attempt leaves the payment payable again (CREATED, ``payment.attempt_failed``): the flow's
# last word on it, as its checkout stays open long after the run.
OUTCOMES = [("succeed", "SUCCEEDED")] * 3 + [("decline", "CREATED"), ("pending", "SUCCEEDED")]
FINAL_TYPES = {"SUCCEEDED": "payment.succeeded", "CREATED": "payment.attempt_failed"}
# The payer and the tenant give up after this long (a stuck flow fails the case instead of hanging).
FLOW_DEADLINE = 120.0


# -- the tenant's receiver ----------------------------------------------------------------------------


# A tenant's webhook endpoint: (endpoint index, body, headers with lower-case names) -> the answer.
Hook = Callable[[int, bytes, dict[str, str]], Awaitable[web.Response]]


def hook_url(port: int, endpoint: int) -> str:
    return f"http://127.0.0.1:{port}/hook/{endpoint}"


@asynccontextmanager
async def serving_hooks(hook: Hook) -> AsyncIterator[int]:
    """``hook`` answering every POST to a ``hook_url`` on a free port of 127.0.0.1 (the one host the
    dispatcher's SSRF guard lets through); yields the port."""

    async def handle(request: web.Request) -> web.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        return await hook(int(request.match_info["endpoint"]), await request.read(), headers)

    app = web.Application()
    app.router.add_post(r"/hook/{endpoint:\d+}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


@dataclass(frozen=True)
class Hit:
    endpoint: int
    webhook_id: str
    event: dict[str, Any] | None  # the verified body, None when the signature did not verify
    at: float  # time.time() once handled (after the receiver's delay)

    @property
    def verified(self) -> bool:
        return self.event is not None


@dataclass
class Receiver:
    """The tenant's webhook endpoints, one path each, every request verified with its endpoint's secret
    and answered 204."""

    delay: float = 0.0  # seconds before answering: deliveries are then in flight for that long
    secrets: dict[int, str] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    port: int = 0

    def url(self, endpoint: int) -> str:
        return hook_url(self.port, endpoint)

    async def handle(self, endpoint: int, body: bytes, headers: dict[str, str]) -> web.Response:
        try:
            event = Webhook(self.secrets[endpoint]).verify(body, headers)
        except (WebhookVerificationError, KeyError, ValueError):
            event = None
        if self.delay:
            await asyncio.sleep(self.delay)
        self.hits.append(Hit(endpoint, headers.get("webhook-id", ""), event, time.time()))
        return web.Response(status=204)


@asynccontextmanager
async def receiving(delay: float = 0.0) -> AsyncIterator[Receiver]:
    """A ``Receiver`` listening (see ``serving_hooks``) until the block ends."""
    receiver = Receiver(delay)
    async with serving_hooks(receiver.handle) as receiver.port:
        yield receiver


# -- the tenant and its payers ------------------------------------------------------------------------


class FlowFailed(Exception):
    """An answer API.md does not allow here (a 500, a 4xx to a valid request)."""


@dataclass
class Traffic:
    """Every request of the tenant and its payers, and what each payment should end as."""

    http: aiohttp.ClientSession
    platform: Platform
    label: str  # of the case: in the tenant's Idempotency-Keys ("<label>-<index>") and endpoint descriptions
    think: tuple[float, float]  # the payer's seconds between the provider's page and pressing a button
    # Seconds between retries, jittered as clients are told to: hundreds of flows retrying in step would
    # meet the platform back as one burst.
    retry_pause: tuple[float, float]
    auth: dict[str, str] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    # (time.monotonic(), status, request) of every 5xx answer.
    server_errors: list[tuple[float, int, str]] = field(default_factory=list)
    # Requests without an answer: connection refused or dropped (a listener closed, a process
    # restarting), or timed out.
    connection_errors: int = 0
    expected: dict[str, str] = field(default_factory=dict)  # payment id -> final status
    failures: list[str] = field(default_factory=list)
    bad_unavailable: list[str] = field(default_factory=list)  # 503s without Retry-After or problem+json

    async def sign_up(self, display_name: str, receiver: Receiver, endpoints: int) -> None:
        """The tenant: created by the admin, signed in, with ``endpoints`` webhook endpoints (every event
        type) on ``receiver``."""
        g = self.platform.gateway_url
        app_name = f"shop-{secrets.token_hex(4)}"
        admin = {"Authorization": f"Bearer {self.platform.admin_token}"}
        _, body = await self.call(
            "POST", f"{g}/admin/tenants", 201, json={"app_name": app_name, "display_name": display_name}, headers=admin
        )
        secret = json.loads(body)["secret"]
        _, body = await self.call("POST", f"{g}/v1/auth/token", 200, json={"app_name": app_name, "secret": secret})
        self.auth = {"Authorization": f"Bearer {json.loads(body)['access_token']}"}
        for i in range(endpoints):
            _, body = await self.call(
                "POST",
                f"{g}/v1/webhook-endpoints",
                201,
                json={"url": receiver.url(i), "events": ["*"], "description": f"{self.label} {i}"},
                headers=self.auth,
            )
            receiver.secrets[i] = json.loads(body)["secret"]

    async def call(self, method: str, url: str, want: int, **kwargs: Any) -> tuple[dict[str, str], bytes]:
        """The request until it gets ``want``, retrying what says "not now" (503, 502, 504, no answer, a
        key still in flight), as long as the flow's deadline allows."""
        deadline = time.monotonic() + FLOW_DEADLINE
        while True:
            try:
                async with self.http.request(method, url, allow_redirects=False, **kwargs) as r:
                    status, headers, body = r.status, dict(r.headers), await r.read()
            except (aiohttp.ClientError, TimeoutError):
                self.connection_errors += 1
                status, headers, body = 0, {}, b""
            if status:
                self.statuses[status] += 1
            if status == want:
                return headers, body
            if status >= 500:
                self.server_errors.append((time.monotonic(), status, f"{method} {url}: {body[:200]!r}"))
            if status == 503:
                self.check_unavailable(url, headers)
            retry = status in (0, 502, 503, 504) or (status == 409 and b"idempotency_key_in_use" in body)
            if not retry or time.monotonic() > deadline:
                raise FlowFailed(f"{method} {url} -> {status}: {body[:300]!r}")
            await asyncio.sleep(random.uniform(*self.retry_pause))

    def check_unavailable(self, url: str, headers: dict[str, str]) -> None:
        # API.md: every 503 of the API is problem+json and says when to come back. (The hosted checkout
        # page's is an HTML page for the payer, with a "try again" link.)
        if not url.startswith(self.platform.gateway_url):
            return
        if "retry-after" not in {k.lower() for k in headers} or not headers.get("Content-Type", "").startswith(
            "application/problem+json"
        ):
            self.bad_unavailable.append(f"{url}: {headers}")

    async def flow(self, index: int, rng: random.Random, start_at: float | None = None) -> None:
        """One payment: the tenant creates it, the payer picks the sandbox, thinks, presses a button.
        ``start_at`` (time.monotonic()) paces a load whose flows are all started at once."""
        button, final = OUTCOMES[index % len(OUTCOMES)]
        # Drawn before any wait, in the order the flows are started: the same seed, the same payers.
        think = rng.uniform(*self.think)
        if start_at is not None:
            await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        try:
            g = self.platform.gateway_url
            _, body = await self.call(
                "POST",
                f"{g}/v1/payments",
                201,
                json={"amount": 5000 + index, "currency": "USD", "order_id": f"order-{index}"},
                headers={**self.auth, "Idempotency-Key": f"{self.label}-{index}"},
            )
            payment = json.loads(body)
            self.expected[payment["id"]] = final
            headers, _ = await self.call(
                "POST",
                f"{self.platform.checkout_url}/c/{payment['checkout_token']}/pay",
                303,
                data={"provider": "sandbox"},
            )
            provider_page = headers["Location"]
            await asyncio.sleep(think)
            await self.call("POST", provider_page, 303, data={"outcome": button})
        except FlowFailed as exc:
            self.failures.append(f"payment {index}: {exc}")

    async def list_all(self, path: str, **query: str) -> list[dict[str, Any]]:
        """Every item of a tenant list (payments by offset, the event log by ``after``)."""
        items: list[dict[str, Any]] = []
        while True:
            params = {**query, "limit": "100"}
            if path == "/v1/events" and items:
                params["after"] = items[-1]["id"]
            elif path != "/v1/events":
                params["offset"] = str(len(items))
            query_string = "&".join(f"{k}={v}" for k, v in params.items())
            _, body = await self.call(
                "GET", f"{self.platform.gateway_url}{path}?{query_string}", 200, headers=self.auth
            )
            page = json.loads(body)["data"]
            items.extend(page)
            if len(page) < 100:
                return items

    async def settle(
        self, receiver: Receiver, endpoints: int, within: float
    ) -> tuple[dict[str, str], list[dict[str, Any]], set[tuple[int, str]]]:
        """Waits until every payment is final and every event of the tenant's log reached every endpoint,
        or ``within`` seconds. Returns each payment's status, the event log, and the (endpoint, event id)
        of every webhook the log calls for."""
        deadline = time.monotonic() + within
        while True:
            status = {p["id"]: p["status"] for p in await self.list_all("/v1/payments")}
            log = await self.list_all("/v1/events")
            wanted = {(e, ev["id"]) for ev in log for e in range(endpoints)}
            got = {(h.endpoint, h.webhook_id) for h in receiver.hits}
            settled = all(status.get(pid) == final for pid, final in self.expected.items())
            finals = sum(ev["type"] in FINAL_TYPES.values() for ev in log)
            if (settled and finals >= len(self.expected) and wanted <= got) or time.monotonic() > deadline:
                return status, log, wanted
            await asyncio.sleep(1.0)


# -- the platform under it ----------------------------------------------------------------------------


@contextmanager
def own_vhost(prefix: str) -> Iterator[tuple[str, str]]:
    """A RabbitMQ vhost of this test's own: its name and URL (the broker is shared with other runs)."""
    name = f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"
    with scratch_vhost(name) as url:
        yield name, url


def own_databases(prefix: str) -> str:
    """A prefix for the distributed platform's databases no other run uses (the server is shared)."""
    return f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"


def queue_depths(vhost: str) -> dict[str, int]:
    """Messages in every queue of the vhost (waiting out a restart of the shared broker)."""
    ctl = shutil.which("rabbitmqctl")
    assert ctl, "rabbitmqctl is needed to read the vhost's queues"
    argv = [ctl, "list_queues", "-p", vhost, "--no-table-headers", "--quiet", "name", "messages"]
    for _ in range(30):
        done = subprocess.run(argv, check=False, capture_output=True, text=True)
        if done.returncode == 0:
            return {name: int(n) for name, n in (line.split() for line in done.stdout.splitlines() if line.strip())}
        time.sleep(1)
    raise AssertionError(f"rabbitmqctl list_queues failed: {done.stderr}")


def undelivered(queues: dict[str, int]) -> dict[str, int]:
    """The queues, dead-letter queues aside, that hold messages."""
    return {q: n for q, n in queues.items() if n and not q.endswith(".dlq")}


async def drained_queues(vhost: str, within: float) -> dict[str, int]:
    """``queue_depths`` once nothing is ``undelivered``, or after ``within`` seconds: a queue may still
    hold copies of held messages that were handed back (the inbox absorbs them) or messages being acked,
    and it must drain, not stay."""
    deadline = time.monotonic() + within
    while True:
        queues = await asyncio.to_thread(queue_depths, vhost)
        if not undelivered(queues) or time.monotonic() > deadline:
            return queues
        await asyncio.sleep(0.5)


def print_logs(platform: Platform) -> None:
    """The end of every process's log, for a failed case's report."""
    for log in platform.logs:
        print(f"--- {log.name} ---\n{log.read_text(errors='replace')[-4000:]}")
