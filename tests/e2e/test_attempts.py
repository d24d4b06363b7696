"""Payment attempts through the gateway only, in both modes, with the providers' simulators: a declined
attempt leaves the payment payable again and the payer pays with another provider in the same checkout;
a payer who left one provider unpaid switches to another, whose attempt replaces the first (voided at
its provider). Webhooks arrive for every step, their ``sequence`` growing."""

import asyncio
import json

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def _choose_provider(http, platform, payment: dict, provider: str) -> str:  # type: ignore[no-untyped-def]
    """The payer's browser on the hosted page: the provider's button; where it sends them."""
    async with http.post(
        f"{platform.checkout_url}/c/{payment['checkout_token']}/pay", data={"provider": provider}, allow_redirects=False
    ) as r:
        assert r.status == 303, await r.text()
        return r.headers["Location"]


async def _simulator(http, page: str, outcome: str) -> None:  # type: ignore[no-untyped-def]
    async with http.get(page) as r:
        assert r.status == 200
    async with http.post(page, data={"outcome": outcome}, allow_redirects=False) as r:
        assert r.status == 303, await r.text()


async def _subscribe(http, platform, tenant, url: str) -> None:  # type: ignore[no-untyped-def]
    async with http.post(
        f"{platform.gateway_url}/v1/webhook-endpoints", json={"url": url, "events": ["*"]}, headers=tenant.auth
    ) as r:
        assert r.status == 201, await r.text()


async def _attempts(http, platform, tenant, payment: dict) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    async with http.get(f"{platform.gateway_url}/v1/payments/{payment['id']}/attempts", headers=tenant.auth) as r:
        assert r.status == 200, await r.text()
        return [(a["provider"], a["status"]) for a in (await r.json())["data"]]


async def _webhooks(receiver, count: int) -> list[dict]:  # type: ignore[no-untyped-def]
    for _ in range(300):
        if len(receiver.got) >= count:
            break
        await asyncio.sleep(0.1)
    return [json.loads(body) for _, body in receiver.got]


class TestAnotherProviderAfterAFailedAttempt:
    async def test_declined_at_octo_then_paid_with_click(self, platform, new_tenant, http, receiver) -> None:
        tenant = await new_tenant()
        await _subscribe(http, platform, tenant, receiver.url)
        payment = await tenant.create_payment("attempts-1", amount=100000, currency="UZS")

        page = await _choose_provider(http, platform, payment, "octo")
        await _simulator(http, page, "decline")
        failed = await tenant.wait_for_status(payment["id"], "CREATED", after=lambda p: p["failure_code"])
        assert (failed["status"], failed["provider"], failed["attempt_count"]) == ("CREATED", None, 1)
        assert failed["failure_code"] and failed["failure_message"]
        attempt_failed = await receiver.wait("payment.attempt_failed")
        assert attempt_failed["data"]["attempt"]["provider"] == "octo"
        assert attempt_failed["data"]["payment"]["status"] == "CREATED"

        # The hosted page says so and offers the other ways to pay again (not the one that failed).
        async with http.get(f"{platform.checkout_url}/c/{payment['checkout_token']}") as r:
            assert r.status == 200
            html = await r.text()
        assert "Your payment with Octo did not go through." in html
        assert 'value="click"' in html and 'value="octo"' not in html

        page = await _choose_provider(http, platform, payment, "click")
        assert page.startswith(platform.gateway_url + "/simulators/click/pay/ptx_")
        await _simulator(http, page, "pay")
        done = await tenant.wait_for_status(payment["id"], "SUCCEEDED")
        assert (done["status"], done["provider"], done["attempt_count"]) == ("SUCCEEDED", "click", 2)
        assert await _attempts(http, platform, tenant, payment) in (
            [("octo", "failed"), ("click", "succeeded")],
            [("octo", "cancelled"), ("click", "succeeded")],
        )

        expected = [
            "payment.created",
            "payment.pending",
            "payment.attempt_failed",
            "payment.pending",
            "payment.succeeded",
        ]
        bodies = await _webhooks(receiver, len(expected))
        by_sequence = sorted(bodies, key=lambda b: b["data"]["payment"]["sequence"])
        assert [b["type"] for b in by_sequence] == expected
        sequences = [b["data"]["payment"]["sequence"] for b in by_sequence]
        assert sequences == sorted(set(sequences))
        # Each step was waited for before the next: those after the failure arrived in order.
        arrived = [b["type"] for b in bodies]
        assert arrived.index("payment.attempt_failed") < len(arrived) - 2
        assert arrived[-1] == "payment.succeeded"
        # The checkout is closed now: only the outcome, no way to pay again.
        async with http.post(
            f"{platform.gateway_url}/v1/checkout/{payment['checkout_token']}/pay", json={"provider": "octo"}
        ) as r:
            assert r.status == 409
            assert (await r.json())["payment_status"] == "SUCCEEDED"


class TestSwitchingProvider:
    async def test_left_payme_unpaid_then_paid_with_click(self, platform, new_tenant, http) -> None:
        tenant = await new_tenant()
        payment = await tenant.create_payment("attempts-2", amount=100000, currency="UZS")
        payme_page = await _choose_provider(http, platform, payment, "payme")
        # Payme cancelled its transaction before performing it: the attempt at Payme stays open (the payer
        # could try Payme again) and the payment waits, PROVIDER_PENDING.
        await _simulator(http, payme_page, "decline")
        await asyncio.sleep(0.5)
        assert (await tenant.payment(payment["id"]))["status"] == "PROVIDER_PENDING"

        # The payer comes back and picks Click: Payme's attempt is voided, Click's replaces it.
        click_page = await _choose_provider(http, platform, payment, "click")
        switched = await tenant.payment(payment["id"])
        assert (switched["status"], switched["provider"], switched["attempt_count"]) == ("PROVIDER_PENDING", "click", 2)
        await _simulator(http, click_page, "pay")
        done = await tenant.wait_for_status(payment["id"], "SUCCEEDED")
        assert (done["status"], done["provider"]) == ("SUCCEEDED", "click")
        assert await _attempts(http, platform, tenant, payment) == [("payme", "abandoned"), ("click", "succeeded")]
