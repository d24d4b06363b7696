"""A test tenant's payment through the gateway only, in both modes (embedded and distributed): the hosted
page says it is a test payment, every event and the object carry ``livemode`` and a growing
``sequence``, and the event log pages with ``after`` over every event once, in order."""

import asyncio

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BANNER = "Test mode — no real money moves."


class TestPaymentOrder:
    async def test_a_test_payment_is_marked_sequenced_and_paged(self, platform, new_tenant, http) -> None:
        tenant = await new_tenant()
        payment = await tenant.create_payment("order-1")
        assert (payment["livemode"], payment["sequence"]) == (False, 1)
        token = payment["checkout_token"]
        async with http.get(f"{platform.checkout_url}/c/{token}") as r:
            assert r.status == 200
            assert BANNER in await r.text()
        async with http.post(
            f"{platform.checkout_url}/c/{token}/pay", data={"provider": "sandbox"}, allow_redirects=False
        ) as r:
            assert r.status == 303, await r.text()
            provider_page = r.headers["Location"]
        async with http.post(provider_page, data={"outcome": "succeed"}, allow_redirects=False) as r:
            assert r.status == 303
        done = await tenant.wait_for_status(payment["id"], "SUCCEEDED")
        assert (done["livemode"], done["sequence"]) == (False, 3)

        # More payments written concurrently, then the log paged one event at a time.
        await asyncio.gather(*(tenant.create_payment(f"more-{i}", order_id=f"o{i}") for i in range(10)))
        paged: list[dict] = []
        after: str | None = None
        while True:
            page = await tenant.events(limit="1", **({"after": after} if after else {}))
            if not page:
                break
            paged += page
            after = page[-1]["id"]
        assert len(paged) == len({e["id"] for e in paged}) == 13
        assert paged == await tenant.events(limit="100")
        ours = [e for e in paged if e["data"]["payment"]["id"] == payment["id"]]
        assert [(e["type"], e["data"]["payment"]["sequence"]) for e in ours] == [
            ("payment.created", 1),
            ("payment.pending", 2),
            ("payment.succeeded", 3),
        ]
        assert all(e["livemode"] is False and e["data"]["payment"]["livemode"] is False for e in paged)
