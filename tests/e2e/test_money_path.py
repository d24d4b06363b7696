"""The money path through the gateway only, in both modes: create → hosted checkout → sandbox
provider page → signed provider callback → payment event → status API."""

import asyncio
import json
import re

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def _pay_at_sandbox(http, platform, payment: dict, outcome: str) -> str:
    token = payment["checkout_token"]
    # The payer's browser: hosted page (checkout-web) → pay button → provider page → outcome.
    async with http.get(f"{platform.checkout_url}/c/{token}") as r:
        assert r.status == 200
        page = await r.text()
    assert "sandbox" in page.lower()
    async with http.post(
        f"{platform.checkout_url}/c/{token}/pay", data={"provider": "sandbox"}, allow_redirects=False
    ) as r:
        assert r.status == 303, await r.text()
        provider_page = r.headers["Location"]
    assert provider_page.startswith(platform.gateway_url + "/sandbox/pay/")
    async with http.post(provider_page, data={"outcome": outcome}, allow_redirects=False) as r:
        assert r.status == 303
        return r.headers["Location"]


class TestMoneyPath:
    async def test_successful_payment(self, platform, new_tenant, http) -> None:
        tenant = await new_tenant()
        payment = await tenant.create_payment("pay-1", description="Two books", return_url="https://shop.example/ok")
        assert payment["status"] == "CREATED"
        back = await _pay_at_sandbox(http, platform, payment, "succeed")
        assert back == f"{platform.checkout_url}/c/{payment['checkout_token']}/return"
        done = await tenant.wait_for_status(payment["id"], "SUCCEEDED")
        assert done["status"] == "SUCCEEDED"
        assert done["provider"] == "sandbox"
        types = [e["type"] for e in await tenant.events()]
        assert types == ["payment.created", "payment.pending", "payment.succeeded"]
        async with http.get(back) as r:
            assert r.status == 200
            assert "confirmed" in (await r.text()).lower()

    async def test_declined_payment(self, platform, new_tenant, http) -> None:
        tenant = await new_tenant()
        payment = await tenant.create_payment("pay-1")
        await _pay_at_sandbox(http, platform, payment, "decline")
        # The declined attempt leaves the payment payable again, with the attempt's failure.
        done = await tenant.wait_for_status(payment["id"], "CREATED", after=lambda p: p["failure_code"])
        assert (done["status"], done["provider"]) == ("CREATED", None)
        assert done["failure_code"]
        types = [e["type"] for e in await tenant.events()]
        assert types == ["payment.created", "payment.pending", "payment.attempt_failed"]

    async def test_pending_then_succeeds_only_by_callback(self, platform, new_tenant, http) -> None:
        tenant = await new_tenant()
        payment = await tenant.create_payment("pay-1")
        await _pay_at_sandbox(http, platform, payment, "pending")
        # The redirect back happened; the money is not confirmed until the provider calls back.
        assert (await tenant.payment(payment["id"]))["status"] == "PROVIDER_PENDING"
        done = await tenant.wait_for_status(payment["id"], "SUCCEEDED")
        assert done["status"] == "SUCCEEDED"

    async def test_idempotent_retries_create_one_payment(self, platform, new_tenant) -> None:
        tenant = await new_tenant()
        results = await asyncio.gather(
            *(tenant.create_payment("same-key") for _ in range(1)),
        )
        again = await tenant.create_payment("same-key")
        assert again["id"] == results[0]["id"]
        async with tenant.http.get(f"{platform.gateway_url}/v1/payments", headers=tenant.auth) as r:
            assert len((await r.json())["data"]) == 1

    async def test_tenants_are_isolated(self, platform, new_tenant, http) -> None:
        a, b = await new_tenant(), await new_tenant()
        payment = await a.create_payment("k")
        async with http.get(f"{platform.gateway_url}/v1/payments/{payment['id']}", headers=b.auth) as r:
            assert r.status == 404
            assert (await r.json())["code"] == "not_found"
        assert await b.events() == []
        a_events = await a.events()
        async with http.get(
            f"{platform.gateway_url}/v1/events", params={"after": a_events[0]["id"]}, headers=b.auth
        ) as r:
            assert r.status == 404

    async def test_forged_provider_callback_changes_nothing(self, platform, new_tenant, http) -> None:
        tenant = await new_tenant()
        payment = await tenant.create_payment("k")
        async with http.post(
            f"{platform.checkout_url}/c/{payment['checkout_token']}/pay",
            data={"provider": "sandbox"},
            allow_redirects=False,
        ) as r:
            ptx = re.search(r"(ptx_[0-9a-z]+)", r.headers["Location"]).group(1)
        body = json.dumps(
            {
                "id": "sbevt_forged",
                "type": "payment.succeeded",
                "transaction": ptx,
                "amount": 5000,
                "currency": "USD",
                "created": 1700000000,
            }
        )
        async with http.post(
            f"{platform.gateway_url}/billing/sandbox",
            data=body,
            headers={"Content-Type": "application/json", "Sandbox-Signature": "t=1700000000,v1=" + "0" * 64},
        ) as r:
            assert 400 <= r.status < 500
        await asyncio.sleep(1)
        assert (await tenant.payment(payment["id"]))["status"] == "PROVIDER_PENDING"
