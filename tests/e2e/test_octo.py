"""Octo through the gateway only, in both modes: a test tenant without an Octo account pays through
Octo's simulator (the fake Octo server mounted in providers-svc). The checkout sends the payer to the
simulator's pay page; the payer's choice makes the fake post Octo's signed notify to
``/billing/octo``, which re-checks the status at the fake before moving money; the tenant's webhook
receiver gets ``payment.succeeded`` (a declined, cancelled or timed-out attempt leaves the payment
payable again, and a new attempt pays it)."""

import asyncio
import json
import time

import pytest
from standardwebhooks.webhooks import Webhook

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def _pay_at_octo(http, platform, payment: dict, outcome: str) -> str:  # type: ignore[no-untyped-def]
    token = payment["checkout_token"]
    async with http.get(f"{platform.checkout_url}/c/{token}") as r:
        assert r.status == 200
        assert "octo" in (await r.text()).lower()
    async with http.post(
        f"{platform.checkout_url}/c/{token}/pay", data={"provider": "octo"}, allow_redirects=False
    ) as r:
        assert r.status == 303, await r.text()
        pay_page = r.headers["Location"]
    assert pay_page.startswith(platform.gateway_url + "/simulators/octo/pay/")
    async with http.get(pay_page) as r:
        assert r.status == 200
        assert "1,500.00 UZS" in await r.text()
    async with http.post(pay_page, data={"outcome": outcome}, allow_redirects=False) as r:
        assert r.status == 303, await r.text()
        return r.headers["Location"]


class TestOctoSimulator:
    async def test_a_paid_payment_succeeds_and_the_webhook_is_delivered(
        self, platform, new_tenant, http, receiver
    ) -> None:
        url, got = receiver
        tenant = await new_tenant()
        async with http.post(
            f"{platform.gateway_url}/v1/webhook-endpoints",
            json={"url": url, "events": ["*"], "description": "octo e2e"},
            headers=tenant.auth,
        ) as r:
            assert r.status == 201, await r.text()
            secret = (await r.json())["secret"]
        payment = await tenant.create_payment("octo-1", amount=150000, currency="UZS")
        back = await _pay_at_octo(http, platform, payment, "pay")
        assert back == f"{platform.checkout_url}/c/{payment['checkout_token']}/return"
        done = await tenant.wait_for_status(payment["id"], "SUCCEEDED")
        assert (done["status"], done["provider"]) == ("SUCCEEDED", "octo")
        deadline = time.monotonic() + 30
        verifier = Webhook(secret)
        while time.monotonic() < deadline:
            bodies = [verifier.verify(body, {k.lower(): v for k, v in headers.items()}) for headers, body in got]
            if any(b["type"] == "payment.succeeded" for b in bodies):
                break
            await asyncio.sleep(0.1)
        succeeded = [b for b in bodies if b["type"] == "payment.succeeded"]
        assert len(succeeded) == 1, [json.dumps(b)[:200] for b in bodies]
        assert succeeded[0]["data"]["payment"]["id"] == payment["id"]
        assert succeeded[0]["data"]["payment"]["status"] == "SUCCEEDED"

    async def test_a_declined_attempt_leaves_the_payment_payable(self, platform, new_tenant, http) -> None:
        tenant = await new_tenant()
        payment = await tenant.create_payment("octo-2", amount=150000, currency="UZS")
        await _pay_at_octo(http, platform, payment, "decline")
        done = await tenant.wait_for_status(payment["id"], "CREATED", after=lambda p: p["failure_code"])
        assert (done["status"], done["attempt_count"]) == ("CREATED", 1)
        assert done["failure_code"]
        types = [e["type"] for e in await tenant.events()]
        assert "payment.attempt_failed" in types and "payment.succeeded" not in types
        async with http.get(f"{platform.gateway_url}/v1/payments/{payment['id']}/attempts", headers=tenant.auth) as r:
            [attempt] = (await r.json())["data"]
        assert (attempt["provider"], attempt["status"]) in (("octo", "failed"), ("octo", "cancelled"))

    @pytest.mark.parametrize("outcome", ["cancel", "timeout"])
    async def test_a_cancelled_or_timed_out_attempt_leaves_the_payment_payable_and_a_new_one_pays(
        self, platform, new_tenant, http, outcome: str
    ) -> None:
        # The payer abandons Octo's page, or its ttl lapses (compressed by the simulator): Octo cancels
        # the payment and notifies canceled; the attempt fails, the payment is payable again.
        tenant = await new_tenant()
        payment = await tenant.create_payment(f"octo-{outcome}", amount=150000, currency="UZS")
        await _pay_at_octo(http, platform, payment, outcome)
        done = await tenant.wait_for_status(payment["id"], "CREATED", after=lambda p: p["failure_code"])
        assert (done["status"], done["attempt_count"]) == ("CREATED", 1)
        assert done["failure_code"] == "octo_canceled"
        types = [e["type"] for e in await tenant.events()]
        assert "payment.attempt_failed" in types and "payment.succeeded" not in types
        async with http.get(f"{platform.gateway_url}/v1/payments/{payment['id']}/attempts", headers=tenant.auth) as r:
            [attempt] = (await r.json())["data"]
        # Octo's `canceled` names a cancellation (payments-svc's ended_status), not a decline of the card.
        assert (attempt["provider"], attempt["status"]) == ("octo", "cancelled")
        # A new attempt (Octo keeps one transaction per payment: the payer picks another way) pays it.
        await tenant.pay_at_sandbox(payment)
        paid = await tenant.wait_for_status(payment["id"], "SUCCEEDED")
        assert (paid["status"], paid["provider"], paid["attempt_count"]) == ("SUCCEEDED", "sandbox", 2)

    async def test_a_forged_notify_through_the_gateway_changes_nothing(self, platform, new_tenant, http) -> None:
        tenant = await new_tenant()
        payment = await tenant.create_payment("octo-3", amount=150000, currency="UZS")
        async with http.post(
            f"{platform.checkout_url}/c/{payment['checkout_token']}/pay",
            data={"provider": "octo"},
            allow_redirects=False,
        ) as r:
            assert r.status == 303
        for body in (b"{not json", json.dumps({"shop_transaction_id": "ptx_x", "status": 5}).encode()):
            async with http.post(f"{platform.gateway_url}/billing/octo", data=body) as r:
                assert r.status == 400
        assert (await tenant.payment(payment["id"]))["status"] != "SUCCEEDED"


class TestOctoRefunds:
    async def test_a_partial_refund_succeeds_at_the_simulator_and_a_declined_one_fails(
        self, platform, new_tenant, http, receiver
    ) -> None:
        tenant = await new_tenant()
        async with http.post(
            f"{platform.gateway_url}/v1/webhook-endpoints",
            json={"url": receiver.url, "events": ["*"]},
            headers=tenant.auth,
        ) as r:
            assert r.status == 201, await r.text()
            secret = (await r.json())["secret"]
        payment = await tenant.create_payment("octo-refund", amount=150000, currency="UZS")
        await _pay_at_octo(http, platform, payment, "pay")
        assert (await tenant.wait_for_status(payment["id"], "SUCCEEDED"))["status"] == "SUCCEEDED"
        refunds = f"{platform.gateway_url}/v1/payments/{payment['id']}/refunds"

        async with http.post(refunds, json={"amount": 50000}, headers={**tenant.auth, "Idempotency-Key": "o-1"}) as r:
            assert r.status == 201, await r.text()
            partial = await r.json()
        assert (partial["status"], partial["amount"]) == ("PENDING", 50000)
        # The simulator plays a decline when asked to (the test-mode rule, sent as X-Simulator-Outcome).
        async with http.post(
            refunds, json={"reason": "sandbox:fail"}, headers={**tenant.auth, "Idempotency-Key": "o-2"}
        ) as r:
            assert r.status == 201, await r.text()
            declined = await r.json()
        assert declined["amount"] == 100000

        verifier = Webhook(secret)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            bodies = [verifier.verify(b, {k.lower(): v for k, v in h.items()}) for h, b in receiver.got]
            outcomes = {
                b["data"]["refund"]["id"]: b for b in bodies if b["type"] in ("refund.succeeded", "refund.failed")
            }
            if len(outcomes) == 2:
                break
            await asyncio.sleep(0.1)
        assert outcomes[partial["id"]]["type"] == "refund.succeeded", outcomes
        assert outcomes[partial["id"]]["data"]["refund"]["provider_refund_id"]
        assert outcomes[partial["id"]]["data"]["payment"]["amount_refunded"] == 50000
        assert outcomes[declined["id"]]["type"] == "refund.failed", outcomes
        assert outcomes[declined["id"]]["data"]["refund"]["failure_code"].startswith("octo_")
        done = await tenant.payment(payment["id"])
        assert (done["status"], done["amount_refunded"]) == ("PARTIALLY_REFUNDED", 50000)
