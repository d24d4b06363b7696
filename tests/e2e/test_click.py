"""Click through the gateway only, in both modes: a test tenant with no Click account is served by the
Click simulator, whose payer page plays Click (Prepare, Complete) against our real endpoints through the
gateway. A paid payment ends SUCCEEDED with the tenant's webhook delivered; a declined, cancelled or
timed-out attempt at Click leaves the payment waiting (the payer may try again, PROTOCOLS.md §1.7) and a new
attempt pays it; a forged callback changes nothing."""

import asyncio
import re

import pytest
from billing_runtime.internal_auth import INTERNAL_HEADER, sign_internal

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def _simulator_page(http, platform, payment: dict) -> str:
    """The payer picks Click on the hosted checkout page; the simulator's page through the gateway."""
    async with http.get(f"{platform.checkout_url}/c/{payment['checkout_token']}") as r:
        assert r.status == 200
        assert "click" in (await r.text()).lower()
    async with http.post(
        f"{platform.checkout_url}/c/{payment['checkout_token']}/pay", data={"provider": "click"}, allow_redirects=False
    ) as r:
        assert r.status == 303, await r.text()
        page = r.headers["Location"]
    assert page.startswith(platform.gateway_url + "/simulators/click/pay/ptx_")
    async with http.get(page) as r:
        assert r.status == 200
        assert "1000.00 UZS" in await r.text()
    return page


async def _choose(http, page: str, outcome: str) -> str:
    async with http.post(page, data={"outcome": outcome}, allow_redirects=False) as r:
        assert r.status == 303, await r.text()
        return r.headers["Location"]


class TestClick:
    async def test_a_payment_paid_through_the_simulator_succeeds_and_the_webhook_arrives(
        self, platform, new_tenant, http, receiver
    ) -> None:
        url = receiver.url
        tenant = await new_tenant()
        async with http.post(
            f"{platform.gateway_url}/v1/webhook-endpoints", json={"url": url, "events": ["*"]}, headers=tenant.auth
        ) as r:
            assert r.status == 201, await r.text()
        payment = await tenant.create_payment(
            "click-1", amount=100000, currency="UZS", return_url="https://shop.example/ok"
        )
        page = await _simulator_page(http, platform, payment)
        back = await _choose(http, page, "pay")
        assert back == f"{platform.checkout_url}/c/{payment['checkout_token']}/return"
        done = await tenant.wait_for_status(payment["id"], "SUCCEEDED")
        assert done["status"] == "SUCCEEDED"
        assert done["provider"] == "click"
        succeeded = await receiver.wait("payment.succeeded")
        assert succeeded["data"]["payment"]["id"] == payment["id"]
        assert succeeded["data"]["payment"]["status"] == "SUCCEEDED"
        # The simulator delivered Complete twice (as Click retries): one succeeded event.
        await asyncio.sleep(1)
        assert [e["type"] for e in await tenant.events()].count("payment.succeeded") == 1

    @pytest.mark.parametrize("outcome", ["decline", "cancel", "timeout"])
    async def test_a_cancelled_attempt_leaves_the_payment_pending_and_a_new_one_pays(
        self, platform, new_tenant, http, outcome: str
    ) -> None:
        tenant = await new_tenant()
        payment = await tenant.create_payment(f"click-{outcome}", amount=100000, currency="UZS")
        page = await _simulator_page(http, platform, payment)
        await _choose(http, page, outcome)
        # Click cancelled one attempt, not the order: no outcome, the payer may pay again.
        await asyncio.sleep(1.5)
        assert (await tenant.payment(payment["id"]))["status"] == "PROVIDER_PENDING"
        assert "payment.failed" not in [e["type"] for e in await tenant.events()]
        await _choose(http, page, "pay")
        done = await tenant.wait_for_status(payment["id"], "SUCCEEDED")
        assert done["status"] == "SUCCEEDED"

    async def test_forged_and_malformed_callbacks_change_nothing(self, platform, new_tenant, http) -> None:
        tenant = await new_tenant()
        payment = await tenant.create_payment("click-forged", amount=100000, currency="UZS")
        page = await _simulator_page(http, platform, payment)
        await _choose(http, page, "forged")
        ptx = re.search(r"(ptx_[0-9a-z]+)", page).group(1)
        assert ptx
        for body in (
            {"action": "0", "merchant_trans_id": payment["id"], "amount": "1000.00"},
            {"action": "9"},
        ):
            async with http.post(f"{platform.gateway_url}/billing/click/prepare", data=body) as r:
                assert r.status == 200
                assert (await r.json())["error"] in (-8, -3)
        async with http.post(
            f"{platform.gateway_url}/billing/click/complete", data=b"\xff", headers={"Content-Type": "text/plain"}
        ) as r:
            assert r.status == 200
            assert (await r.json())["error"] == -8
        await asyncio.sleep(1)
        assert (await tenant.payment(payment["id"]))["status"] == "PROVIDER_PENDING"


class TestClickRefunds:
    async def test_a_full_refund_is_reversed_at_the_simulator_and_a_partial_one_refused(
        self, platform, new_tenant, http, receiver
    ) -> None:
        tenant = await new_tenant()
        async with http.post(
            f"{platform.gateway_url}/v1/webhook-endpoints",
            json={"url": receiver.url, "events": ["*"]},
            headers=tenant.auth,
        ) as r:
            assert r.status == 201, await r.text()
        payment = await tenant.create_payment("click-refund", amount=100000, currency="UZS")
        await _choose(http, await _simulator_page(http, platform, payment), "pay")
        assert (await tenant.wait_for_status(payment["id"], "SUCCEEDED"))["status"] == "SUCCEEDED"
        refunds = f"{platform.gateway_url}/v1/payments/{payment['id']}/refunds"

        # Click reverses whole payments only: refused before anything is written.
        async with http.post(refunds, json={"amount": 40000}, headers={**tenant.auth, "Idempotency-Key": "part"}) as r:
            assert r.status == 422, await r.text()
            assert (await r.json())["code"] == "partial_refund_not_supported"
        async with http.get(refunds, headers=tenant.auth) as r:
            assert (await r.json())["data"] == []

        async with http.post(refunds, json={}, headers={**tenant.auth, "Idempotency-Key": "full"}) as r:
            assert r.status == 201, await r.text()
            created = await r.json()
        assert (created["status"], created["amount"]) == ("PENDING", 100000)
        webhook = await receiver.wait("refund.succeeded")
        assert webhook["data"]["refund"]["id"] == created["id"]
        assert webhook["data"]["refund"]["provider_refund_id"]
        assert (webhook["data"]["payment"]["status"], webhook["data"]["payment"]["amount_refunded"]) == (
            "REFUNDED",
            100000,
        )
        async with http.get(f"{platform.gateway_url}/v1/refunds/{created['id']}", headers=tenant.auth) as r:
            assert (await r.json())["status"] == "SUCCEEDED"
        done = await tenant.payment(payment["id"])
        assert (done["status"], done["amount_refunded"]) == ("REFUNDED", 100000)
        assert "refund.created" in receiver.types()

    async def test_a_reversal_the_simulator_refuses_fails_the_refund(self, platform, new_tenant, http) -> None:
        tenant = await new_tenant()
        payment = await tenant.create_payment("click-refused", amount=100000, currency="UZS")
        await _choose(http, await _simulator_page(http, platform, payment), "pay")
        assert (await tenant.wait_for_status(payment["id"], "SUCCEEDED"))["status"] == "SUCCEEDED"
        # The test-mode wish reaches the simulator as X-Simulator-Outcome, through the gateway.
        async with http.post(
            f"{platform.gateway_url}/v1/payments/{payment['id']}/refunds",
            json={"reason": "sandbox:fail"},
            headers={**tenant.auth, "Idempotency-Key": "refused"},
        ) as r:
            assert r.status == 201, await r.text()
            created = await r.json()
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            async with http.get(f"{platform.gateway_url}/v1/refunds/{created['id']}", headers=tenant.auth) as r:
                refund = await r.json()
            if refund["status"] != "PENDING" or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.1)
        assert (refund["status"], refund["failure_code"]) == ("FAILED", "click_-5019"), refund
        kept = await tenant.payment(payment["id"])
        assert (kept["status"], kept["amount_refunded"]) == ("SUCCEEDED", 0)


class TestClickSync:
    # reconciliation-svc's sync is played by the test (a reconciliation token on providers-svc), which
    # needs the distributed mode's known keys. It asks the Click simulator's Merchant API through the
    # gateway, as a Click reversal does.
    @pytest.mark.parametrize("platform", ["distributed"], indirect=True)
    async def test_a_payment_whose_complete_was_lost_is_healed_by_the_sync(self, platform, new_tenant, http) -> None:
        tenant = await new_tenant()
        payment = await tenant.create_payment("click-lost", amount=100000, currency="UZS")
        await _choose(http, await _simulator_page(http, platform, payment), "pay_lost")
        await asyncio.sleep(1)
        assert (await tenant.payment(payment["id"]))["status"] == "PROVIDER_PENDING"
        token = sign_internal(
            platform.internal_keys["providers_reconciliation"],
            issuer="reconciliation",
            audience="providers",
            tenant_id=None,
        )
        async with http.post(
            f"http://127.0.0.1:{platform.ports['providers']}/internal/payments/{payment['id']}/sync",
            headers={INTERNAL_HEADER: token},
        ) as r:
            assert r.status == 200, await r.text()
            synced = await r.json()
        assert (synced["provider"], synced["status"], synced["published"]) == ("click", "succeeded", True)
        assert (await tenant.wait_for_status(payment["id"], "SUCCEEDED"))["status"] == "SUCCEEDED"
