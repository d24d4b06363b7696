"""Logs and traces through one whole money path, every process at DEBUG (distributed, and embedded with
its in-process bus):
tenant → token → webhook endpoint → payment (carrying the caller's ``traceparent``) → checkout → sandbox
page → signed provider callback → payment.succeeded → webhook delivered.

- Every log record is one JSON object (the services' default format) and none holds a secret used in
  the run: the tenant secret, its JWT, the admin token, the webhook secret, the internal keys, the
  sandbox and encryption keys, the payer's checkout token.
- The caller's trace id is in the records of the gateway's request, the payments-svc handler (with the
  same request id) and the consumers of the event it caused (webhook-dispatcher, reconciliation-svc,
  across the outbox and RabbitMQ), each naming the payment."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from billing_runtime.testing import scratch_vhost

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.rabbitmq]

DEBUG_EVERYWHERE = {
    svc: {
        f"{prefix}_LOG_LEVEL": "DEBUG",
        # A few connections per process are plenty for one payment (PostgreSQL may be shared).
        **({f"{prefix}_DATABASE_POOL_SIZE": "3"} if svc != "checkout" else {}),
    }
    for svc, prefix in (
        ("gateway", "GATEWAY"),
        ("payments", "PAYMENTS"),
        ("providers", "PROVIDERS"),
        ("checkout", "CHECKOUT"),
        ("webhooks", "WEBHOOKS"),
        ("reconciliation", "RECONCILIATION"),
    )
}
# Settings the distributed platform of tests/e2e/conftest.py runs with that are secrets (its
# INTERNAL_KEYS and the rest; conftest modules are not importable here).
PLATFORM_SECRETS = [
    "e2e-payments-internal-key-0123456789abcdef",
    "e2e-providers-internal-key-0123456789abcdef",
    "e2e-webhooks-internal-key-0123456789abcdef",
    "e2e-reconciliation-internal-key-0123456789abcdef",
    "e2e-sandbox-secret-0123456789abcdef",
    "ZTJlLWNyZWRlbnRpYWxzLWtleS0wMTIzNDU2Nzg5YWI=",  # PROVIDERS_CREDENTIALS_KEYS
    "ZTJlLWZlcm5ldC1rZXktMDEyMzQ1Njc4OWFiY2RlZiE=",  # WEBHOOKS_ENCRYPTION_KEY
    "k" * 40,  # GATEWAY_JWT_KEYS
]


async def _money_path(platform: Any, http: aiohttp.ClientSession, receiver: Any, trace_id: str) -> dict:
    g = platform.gateway_url
    admin = {"Authorization": f"Bearer {platform.admin_token}"}
    app_name = f"obs-{secrets.token_hex(4)}"
    async with http.post(f"{g}/admin/tenants", json={"app_name": app_name, "display_name": "Obs"}, headers=admin) as r:
        assert r.status == 201, await r.text()
        tenant_secret = (await r.json())["secret"]
    async with http.post(f"{g}/v1/auth/token", json={"app_name": app_name, "secret": tenant_secret}) as r:
        assert r.status == 200
        jwt = (await r.json())["access_token"]
    auth = {"Authorization": f"Bearer {jwt}"}
    async with http.post(f"{g}/v1/webhook-endpoints", json={"url": receiver.url, "events": ["*"]}, headers=auth) as r:
        assert r.status == 201, await r.text()
        webhook_secret = (await r.json())["secret"]
    request_id = f"req_obs_{secrets.token_hex(6)}"
    headers = {
        **auth,
        "Idempotency-Key": "obs-1",
        "X-Request-Id": request_id,
        "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
    }
    payment_body = {"amount": 5000, "currency": "USD", "order_id": "obs-1"}
    async with http.post(f"{g}/v1/payments", json=payment_body, headers=headers) as r:
        assert r.status == 201, await r.text()
        payment = await r.json()
    token = payment["checkout_token"]
    async with http.post(
        f"{platform.checkout_url}/c/{token}/pay", data={"provider": "sandbox"}, allow_redirects=False
    ) as r:
        assert r.status == 303, await r.text()
        provider_page = r.headers["Location"]
    async with http.post(provider_page, data={"outcome": "succeed"}, allow_redirects=False) as r:
        assert r.status == 303
    deadline = time.monotonic() + 30
    while "payment.succeeded" not in receiver.types():
        assert time.monotonic() < deadline, f"no payment.succeeded webhook: {receiver.types()}"
        await asyncio.sleep(0.2)
    return {
        "payment_id": payment["id"],
        "request_id": request_id,
        "secrets": [
            tenant_secret,
            jwt,
            platform.admin_token,
            webhook_secret,
            webhook_secret.removeprefix("whsec_"),
            token,
        ],
    }


def _records(logs: list[Path]) -> dict[str, list[dict]]:
    by_process: dict[str, list[dict]] = {}
    for path in logs:
        records = by_process.setdefault(path.stem, [])
        for line in path.read_text().splitlines():
            if line.startswith("{"):
                records.append(json.loads(line))  # a record that is not one JSON object fails here
    return by_process


@pytest.fixture
def debug_platform(tmp_path: Path, distributed_starter: Any) -> Iterator[Any]:
    """The distributed platform at DEBUG, on a vhost of its own (no other run's workers take its events)."""
    name = f"obs-{os.getpid()}-{secrets.token_hex(3)}"
    with (
        scratch_vhost(name) as url,
        distributed_starter(tmp_path, url, f"obs_{secrets.token_hex(4)}", DEBUG_EVERYWHERE) as platform,
    ):
        yield platform


async def test_one_payment_is_followed_across_services_and_no_secret_is_logged(
    debug_platform: Any, http: aiohttp.ClientSession, receiver: Any
) -> None:
    trace_id = secrets.token_hex(16)
    run = await _money_path(debug_platform, http, receiver, trace_id)
    await asyncio.sleep(1.5)  # the reconciliation consumer's lines land too
    logs = debug_platform.logs
    texts = {path.stem: path.read_text() for path in logs}
    for secret in [*run["secrets"], *PLATFORM_SECRETS]:
        leaked = [name for name, text in texts.items() if secret in text]
        assert not leaked, f"a secret ({secret[:6]}...) is in the logs of {leaked}"

    records = _records(logs)
    everything = [r for rs in records.values() for r in rs]
    assert len(everything) > 20
    assert all({"ts", "level", "logger", "message"} <= r.keys() for r in everything)
    assert any(r["level"] == "DEBUG" for r in everything)

    def traced(process: str) -> list[dict]:
        return [r for r in records[process] if r.get("trace_id") == trace_id]

    assert traced("gateway"), "the gateway's request is not in the caller's trace"
    handler = traced("payments-api")
    assert handler, "the payments-svc handler is not in the caller's trace"
    assert {r.get("request_id") for r in handler} == {run["request_id"]}
    assert any(r.get("tenant_id", "").startswith("ten_") for r in handler)
    # payment.created left through payments-svc's outbox and RabbitMQ, in the request's trace.
    for consumer in ("webhooks-worker", "reconciliation"):
        consumed = [r for r in traced(consumer) if r.get("event_id") and r.get("queue")]
        assert consumed, f"{consumer} consumed no event in the caller's trace"
        assert {r.get("payment_id") for r in consumed} == {run["payment_id"]}


@pytest.fixture
def debug_embedded(tmp_path: Path, embedded_starter: Any) -> Iterator[Any]:
    start_embedded, embedded_ports = embedded_starter
    platform = start_embedded(
        tmp_path,
        embedded_ports(),
        secrets.token_urlsafe(24),
        {"BILLING_LOG_LEVEL": "DEBUG", "BILLING_LOG_FORMAT": "json"},
    )
    yield platform
    platform.stop()


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


async def test_embedded_one_trace_through_the_in_process_bus_and_no_secret_is_logged(
    debug_embedded: Any, tmp_path: Path, http: aiohttp.ClientSession, receiver: Any
) -> None:
    trace_id = secrets.token_hex(16)
    run = await _money_path(debug_embedded, http, receiver, trace_id)
    await asyncio.sleep(1.5)
    # Every key the embedded mode generated for itself (internal keys, JWT keys, encryption keys, ...).
    generated = [s for s in _strings(json.loads((tmp_path / "secrets.json").read_text())) if len(s) >= 16]
    assert len(generated) >= 5
    # The log records only: the start-up banner on stdout shows the admin token to the operator on purpose.
    lines = (line for path in debug_embedded.logs for line in path.read_text().splitlines())
    text = "\n".join(line for line in lines if line.startswith("{"))
    for secret in [*run["secrets"], *generated]:
        assert secret not in text, f"a secret ({secret[:6]}...) is in the embedded platform's log"

    records = [r for rs in _records(debug_embedded.logs).values() for r in rs]
    traced = [r for r in records if r.get("trace_id") == trace_id]
    # The gateway's and payments-svc's access lines for the one request.
    answered = [r for r in traced if r["message"].startswith("POST /v1/payments answered 201")]
    assert len(answered) == 2
    assert {r.get("request_id") for r in answered} == {run["request_id"]}
    # payment.created, relayed from the outbox to the in-process consumers, in the request's trace.
    consumed = {r.get("queue") for r in traced if r.get("event_id") and r.get("payment_id") == run["payment_id"]}
    assert {"webhooks.events", "reconciliation.events"} <= consumed
