"""A provider callback that never arrives is healed by reconciliation's janitor, end to end, in the
distributed mode (issue 13): the payer pays at the sandbox bank with "Pay, but lose the callback",
so providers-svc never hears of it; reconciliation-svc's worker finds the payment PROVIDER_PENDING past
its first age, asks providers-svc to sync it, providers-svc asks the bank and publishes the missed
``provider.payment.succeeded`` (``observed_via: "status_check"``), and from there every downstream path
runs as for a real callback: the payment ends SUCCEEDED and the tenant's webhook is delivered, signed.

The platform is one of this test's own, with the janitor's first age at 1 s instead of 5 min."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from billing_runtime.testing import scratch_vhost
from standardwebhooks.webhooks import Webhook

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

JANITOR = {"reconciliation": {"RECONCILIATION_JANITOR_AGES": "1,3600", "RECONCILIATION_JANITOR_INTERVAL": "0.5"}}


@pytest.fixture
def platform(tmp_path: Path, distributed_starter: Any) -> Iterator[Any]:
    name = f"janitor-{os.getpid()}-{secrets.token_hex(3)}"
    with (
        scratch_vhost(name) as url,
        distributed_starter(tmp_path, url, f"janitor_{secrets.token_hex(4)}", JANITOR) as p,
    ):
        yield p


async def _pay_and_lose_the_callback(http, platform, payment: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    async with http.post(
        f"{platform.checkout_url}/c/{payment['checkout_token']}/pay",
        data={"provider": "sandbox"},
        allow_redirects=False,
    ) as r:
        assert r.status == 303, await r.text()
        provider_page = r.headers["Location"]
    async with http.post(provider_page, data={"outcome": "succeed_lost"}, allow_redirects=False) as r:
        assert r.status == 303


async def _janitor_heals(http, platform) -> float:  # type: ignore[no-untyped-def]
    """reconciliation_janitor_heals_total{kind="payment"} as the reconciliation process reports it."""
    async with http.get(f"http://127.0.0.1:{platform.ports['reconciliation']}/metrics") as r:
        text = await r.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("reconciliation_janitor_heals_total{") and 'kind="payment"' in line
    )


class TestJanitorHealsAMissedCallback:
    async def test_a_lost_callback_ends_succeeded_with_its_webhook(self, platform, new_tenant, http, receiver) -> None:
        tenant = await new_tenant()
        async with http.post(
            f"{platform.gateway_url}/v1/webhook-endpoints",
            json={"url": receiver.url, "events": ["payment.succeeded"]},
            headers=tenant.auth,
        ) as r:
            assert r.status == 201, await r.text()
            secret = (await r.json())["secret"]
        payment = await tenant.create_payment("lost-callback")
        await _pay_and_lose_the_callback(http, platform, payment)

        # The bank took the money and told nobody: for now the payment waits, as it would in production.
        await asyncio.sleep(0.5)
        assert (await tenant.payment(payment["id"]))["status"] == "PROVIDER_PENDING"

        done = await tenant.wait_for_status(payment["id"], "SUCCEEDED", timeout=60)
        assert (done["provider"], done["amount"]) == ("sandbox", payment["amount"])
        await receiver.wait("payment.succeeded", timeout=60)
        headers, body = receiver.got[0]
        verified = Webhook(secret).verify(body, headers)
        assert (verified["type"], verified["data"]["payment"]["id"]) == ("payment.succeeded", payment["id"])
        assert [e["type"] for e in await tenant.events()] == ["payment.created", "payment.pending", "payment.succeeded"]

        # It was the janitor: its heal is counted, and asking again publishes nothing more.
        deadline = time.monotonic() + 10
        while await _janitor_heals(http, platform) < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert await _janitor_heals(http, platform) == 1
        admin = {"Authorization": f"Bearer {platform.admin_token}"}
        async with http.post(f"{platform.gateway_url}/admin/reconciliation/janitor/run", headers=admin) as r:
            assert r.status == 200, await r.text()
        await asyncio.sleep(1)
        assert [e["type"] for e in await tenant.events()].count("payment.succeeded") == 1
        assert receiver.types().count("payment.succeeded") == 1
