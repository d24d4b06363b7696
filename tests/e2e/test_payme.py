"""Payme end to end, in both modes: a test tenant (no Payme account of its own, so the Payme simulator
account serves it) pays a UZS payment at checkout with provider "payme"; the payer's choice on the Payme
simulator page makes the simulator play Payme's JSON-RPC calls against our real ``/billing/payme`` through
the gateway; the tenant sees the outcome through the API and its webhook receiver."""

import asyncio

import asyncpg
import pytest
from billing_runtime.testing import PG_DSN

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def _subscribe(http, platform, tenant, url: str) -> None:
    async with http.post(
        f"{platform.gateway_url}/v1/webhook-endpoints", json={"url": url, "events": ["*"]}, headers=tenant.auth
    ) as r:
        assert r.status == 201, await r.text()


async def _pay_with_payme(http, platform, payment: dict, outcome: str) -> str:
    """The payer: hosted checkout → Payme → the simulator page → a choice; returns where it sends them."""
    token = payment["checkout_token"]
    async with http.get(f"{platform.gateway_url}/v1/checkout/{token}") as r:
        assert r.status == 200
        offered = {p["name"] if isinstance(p, dict) else p for p in (await r.json())["providers"]}
    assert "payme" in offered
    async with http.post(
        f"{platform.checkout_url}/c/{token}/pay", data={"provider": "payme"}, allow_redirects=False
    ) as r:
        assert r.status == 303, await r.text()
        page = r.headers["Location"]
    assert page.startswith(platform.gateway_url + "/simulators/payme/pay/ptx_")
    async with http.get(page) as r:
        assert r.status == 200
        assert "UZS" in await r.text()
    async with http.post(page, data={"outcome": outcome}, allow_redirects=False) as r:
        assert r.status == 303, await r.text()
        return r.headers["Location"]


class TestPayme:
    async def test_paid_through_the_simulator(self, platform, new_tenant, http, receiver) -> None:
        url = receiver.url
        tenant = await new_tenant()
        await _subscribe(http, platform, tenant, url)
        payment = await tenant.create_payment("payme-1", amount=1_250_000, currency="UZS", description="Plov")
        back = await _pay_with_payme(http, platform, payment, "pay")
        assert back == f"{platform.checkout_url}/c/{payment['checkout_token']}/return"
        done = await tenant.wait_for_status(payment["id"], "SUCCEEDED")
        assert (done["status"], done["provider"]) == ("SUCCEEDED", "payme")
        # Payme's own transaction id (24 hex characters) is the payment's provider reference.
        assert len(done["provider_reference"]) == 24
        webhook = await receiver.wait("payment.succeeded")
        assert webhook["data"]["payment"]["id"] == payment["id"]
        assert webhook["data"]["payment"]["amount"] == 1_250_000

    async def test_declined_then_cancelled_by_the_tenant(self, platform, new_tenant, http, receiver) -> None:
        url = receiver.url
        tenant = await new_tenant()
        await _subscribe(http, platform, tenant, url)
        payment = await tenant.create_payment("payme-2", amount=500_000, currency="UZS")
        await _pay_with_payme(http, platform, payment, "decline")
        # Payme cancelled its transaction before performing it: nothing was paid, and the payment stays
        # payable (the payer may try again) until the tenant cancels it or it expires.
        await asyncio.sleep(1)
        assert (await tenant.payment(payment["id"]))["status"] == "PROVIDER_PENDING"
        async with http.post(f"{platform.gateway_url}/v1/payments/{payment['id']}/cancel", headers=tenant.auth) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["status"] == "CANCELLED"
        webhook = await receiver.wait("payment.cancelled")
        assert webhook["data"]["payment"]["id"] == payment["id"]
        assert "payment.succeeded" not in receiver.types()

    async def test_timed_out_then_paid_on_a_second_attempt(self, platform, new_tenant, http) -> None:
        tenant = await new_tenant()
        payment = await tenant.create_payment("payme-3", amount=500_000, currency="UZS")
        await _pay_with_payme(http, platform, payment, "timeout")
        await asyncio.sleep(1)
        assert (await tenant.payment(payment["id"]))["status"] == "PROVIDER_PENDING"
        await _pay_with_payme(http, platform, payment, "pay")
        assert (await tenant.wait_for_status(payment["id"], "SUCCEEDED"))["status"] == "SUCCEEDED"


class TestPaymeRefunds:
    async def test_a_cancel_after_perform_is_a_refund_the_provider_started(
        self, platform, new_tenant, http, receiver
    ) -> None:
        tenant = await new_tenant()
        await _subscribe(http, platform, tenant, receiver.url)
        payment = await tenant.create_payment("payme-refund", amount=700_000, currency="UZS")
        # The simulator pays, then Payme cancels the performed transaction (reason 5: a refund).
        await _pay_with_payme(http, platform, payment, "refund")
        done = await tenant.wait_for_status(payment["id"], "REFUNDED")
        assert (done["status"], done["amount_refunded"]) == ("REFUNDED", 700_000)
        succeeded = await receiver.wait("refund.succeeded")
        created = await receiver.wait("refund.created")
        refund = succeeded["data"]["refund"]
        assert created["data"]["refund"]["id"] == refund["id"]
        assert created["data"]["refund"]["status"] == "PENDING"
        assert (refund["status"], refund["amount"], refund["payment_id"]) == ("SUCCEEDED", 700_000, payment["id"])
        # Payme's own transaction id names it.
        assert refund["provider_refund_id"] == done["provider_reference"]
        assert (succeeded["data"]["payment"]["status"], succeeded["data"]["payment"]["amount_refunded"]) == (
            "REFUNDED",
            700_000,
        )
        async with http.get(f"{platform.gateway_url}/v1/payments/{payment['id']}/refunds", headers=tenant.auth) as r:
            [listed] = (await r.json())["data"]
        assert (listed["id"], listed["status"]) == (refund["id"], "SUCCEEDED")
        types = [e["type"] for e in await tenant.events()]
        assert types[-3:] == ["payment.succeeded", "refund.created", "refund.succeeded"], types
        if platform.mode == "distributed":
            # Nothing contradicted it: providers-svc took refund.created as an announcement, not as
            # a request to refund again (which Payme refuses, a "failed" verdict on a made refund).
            await asyncio.sleep(1.5)
            conn = await asyncpg.connect(PG_DSN.rsplit("/", 1)[0] + "/" + platform.databases["payments"])
            try:
                kinds = await conn.fetch("SELECT kind, detail FROM anomalies WHERE payment_id = $1", payment["id"])
            finally:
                await conn.close()
            assert [tuple(k) for k in kinds] == []

    async def test_the_tenant_cannot_refund_a_payme_payment_itself(self, platform, new_tenant, http) -> None:
        tenant = await new_tenant()
        payment = await tenant.create_payment("payme-no-refund", amount=500_000, currency="UZS")
        await _pay_with_payme(http, platform, payment, "pay")
        assert (await tenant.wait_for_status(payment["id"], "SUCCEEDED"))["status"] == "SUCCEEDED"
        async with http.post(
            f"{platform.gateway_url}/v1/payments/{payment['id']}/refunds",
            json={},
            headers={**tenant.auth, "Idempotency-Key": "payme-r"},
        ) as r:
            assert r.status == 409, await r.text()
            assert (await r.json())["code"] == "refund_not_supported"
        assert (await tenant.payment(payment["id"]))["status"] == "SUCCEEDED"
        assert not [e for e in await tenant.events() if e["type"].startswith("refund.")]
