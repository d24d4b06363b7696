"""Refunds end to end through the gateway only, in both modes (issue 13): a sandbox payment is paid,
refunded in parts and in full; each refund is PENDING at once and ends as the sandbox bank decides;
the tenant's endpoint receives ``refund.*`` webhooks (verified with the Standard Webhooks verifier)
and ``/v1/events`` lists them. Concurrent refunds of one payment never take more than it."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import aiohttp
import pytest
from billing_runtime.internal_auth import INTERNAL_HEADER, sign_internal
from standardwebhooks.webhooks import Webhook

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def subscribe(http: aiohttp.ClientSession, platform: Any, auth: dict[str, str], url: str) -> str:
    """A webhook endpoint for every event type; its signing secret."""
    async with http.post(
        f"{platform.gateway_url}/v1/webhook-endpoints", json={"url": url, "events": ["*"]}, headers=auth
    ) as r:
        assert r.status == 201, await r.text()
        return str((await r.json())["secret"])


async def pay_at_sandbox(http: aiohttp.ClientSession, platform: Any, tenant: Any, **body: Any) -> dict:
    """A payment paid at the sandbox bank, once the tenant sees it SUCCEEDED (``tenant``: anything with
    ``create_payment`` and ``wait_for_status``, the dashboard tests' stand-in too)."""
    payment = await tenant.create_payment(secrets.token_hex(8), **body)
    async with http.post(
        f"{platform.checkout_url}/c/{payment['checkout_token']}/pay",
        data={"provider": "sandbox"},
        allow_redirects=False,
    ) as r:
        assert r.status == 303, await r.text()
        page = r.headers["Location"]
    async with http.post(page, data={"outcome": "succeed"}, allow_redirects=False) as r:
        assert r.status == 303, await r.text()
    done = await tenant.wait_for_status(payment["id"], "SUCCEEDED")
    assert done["status"] == "SUCCEEDED", done
    return done


async def refund(
    http: aiohttp.ClientSession, platform: Any, auth: dict[str, str], payment_id: str, key: str, **body: Any
) -> tuple[int, dict]:
    """``POST /v1/payments/{id}/refunds``: the status and the parsed body."""
    async with http.post(
        f"{platform.gateway_url}/v1/payments/{payment_id}/refunds",
        json=body,
        headers={**auth, "Idempotency-Key": key},
    ) as r:
        return r.status, await r.json(content_type=None)


async def get_refund(http: aiohttp.ClientSession, platform: Any, auth: dict[str, str], refund_id: str) -> dict:
    async with http.get(f"{platform.gateway_url}/v1/refunds/{refund_id}", headers=auth) as r:
        assert r.status == 200, await r.text()
        return dict(await r.json())


async def refunds_of(http: aiohttp.ClientSession, platform: Any, auth: dict[str, str], payment_id: str) -> list[dict]:
    async with http.get(
        f"{platform.gateway_url}/v1/payments/{payment_id}/refunds", params={"limit": "100"}, headers=auth
    ) as r:
        assert r.status == 200, await r.text()
        return list((await r.json())["data"])


async def settle(
    http: aiohttp.ClientSession, platform: Any, auth: dict[str, str], refund_id: str, timeout: float = 30
) -> dict:
    """The refund once it is final (SUCCEEDED or FAILED), or as it is when the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        current = await get_refund(http, platform, auth, refund_id)
        if current["status"] != "PENDING" or time.monotonic() > deadline:
            return current
        await asyncio.sleep(0.1)


async def verified_webhooks(receiver: Any, secret: str, wanted: dict[str, int], timeout: float = 30) -> list[dict]:
    """Every webhook the receiver got, each verified, once ``wanted`` (type → count) have arrived."""
    verifier = Webhook(secret)
    deadline = time.monotonic() + timeout
    while True:
        bodies = [verifier.verify(body, {k.lower(): v for k, v in h.items()}) for h, body in receiver.got]
        counts = {t: sum(1 for b in bodies if b["type"] == t) for t in wanted}
        if all(counts[t] >= n for t, n in wanted.items()) or time.monotonic() > deadline:
            assert counts == wanted, [b["type"] for b in bodies]
            return bodies
        await asyncio.sleep(0.1)


class TestSandboxRefunds:
    async def test_partial_then_the_rest_with_webhooks_and_the_event_log(
        self, platform: Any, new_tenant: Any, http: aiohttp.ClientSession, receiver: Any
    ) -> None:
        tenant = await new_tenant()
        secret = await subscribe(http, platform, tenant.auth, receiver.url)
        payment = await pay_at_sandbox(http, platform, tenant, amount=5000)

        status, first = await refund(http, platform, tenant.auth, payment["id"], "r-1", amount=2000, reason="damaged")
        assert status == 201, first
        assert (first["object"], first["status"], first["amount"], first["currency"]) == (
            "refund",
            "PENDING",
            2000,
            "USD",
        )
        assert (first["payment_id"], first["reason"]) == (payment["id"], "damaged")
        assert first["id"].startswith("rfnd_")
        first = await settle(http, platform, tenant.auth, first["id"])
        assert first["status"] == "SUCCEEDED", first
        partly = await tenant.payment(payment["id"])
        assert (partly["status"], partly["amount_refunded"]) == ("PARTIALLY_REFUNDED", 2000)

        # No amount: all that is left.
        status, rest = await refund(http, platform, tenant.auth, payment["id"], "r-2")
        assert status == 201, rest
        assert (rest["status"], rest["amount"]) == ("PENDING", 3000)
        rest = await settle(http, platform, tenant.auth, rest["id"])
        assert rest["status"] == "SUCCEEDED", rest
        done = await tenant.payment(payment["id"])
        assert (done["status"], done["amount_refunded"]) == ("REFUNDED", 5000)

        # A refunded payment is listed by its status, is no longer cancellable or payable, and its
        # pages still answer the payer.
        async with http.get(
            f"{platform.gateway_url}/v1/payments", params={"status": "REFUNDED"}, headers=tenant.auth
        ) as r:
            assert r.status == 200, await r.text()
            assert [p["id"] for p in (await r.json())["data"]] == [payment["id"]]
        async with http.post(f"{platform.gateway_url}/v1/payments/{payment['id']}/cancel", headers=tenant.auth) as r:
            assert r.status == 409, await r.text()
            assert (await r.json())["code"] == "invalid_state"
        token = payment["checkout_token"]
        for url in (
            f"{platform.gateway_url}/v1/checkout/{token}",
            f"{platform.checkout_url}/c/{token}",
            f"{platform.checkout_url}/c/{token}/return",
        ):
            async with http.get(url) as r:
                assert r.status == 200, (url, await r.text())
        async with http.get(f"{platform.gateway_url}/v1/checkout/{token}") as r:
            assert (await r.json())["status"] == "REFUNDED"
        async with http.post(
            f"{platform.checkout_url}/c/{token}/pay", data={"provider": "sandbox"}, allow_redirects=False
        ) as r:
            assert r.status == 409, await r.text()
        # Nothing is left to refund.
        status, problem = await refund(http, platform, tenant.auth, payment["id"], "r-3", amount=1)
        assert (status, problem["code"]) == (409, "invalid_state"), problem

        # The two reads agree, and with the final states.
        listed = await refunds_of(http, platform, tenant.auth, payment["id"])
        assert [r["id"] for r in listed] == [rest["id"], first["id"]]  # newest first
        assert listed == [
            await get_refund(http, platform, tenant.auth, rest["id"]),
            await get_refund(http, platform, tenant.auth, first["id"]),
        ]

        bodies = await verified_webhooks(
            receiver,
            secret,
            {"payment.succeeded": 1, "refund.created": 2, "refund.succeeded": 2, "refund.failed": 0},
        )
        refund_hooks = [b for b in bodies if b["type"].startswith("refund.")]
        for hook in refund_hooks:
            assert {"refund", "payment"} <= set(hook["data"])
            assert hook["data"]["payment"]["id"] == payment["id"]
        by_refund = {(b["type"], b["data"]["refund"]["id"]): b["data"] for b in refund_hooks}
        created, succeeded = by_refund["refund.created", first["id"]], by_refund["refund.succeeded", first["id"]]
        assert (created["refund"]["status"], succeeded["refund"]["status"]) == ("PENDING", "SUCCEEDED")
        assert succeeded["refund"]["sequence"] > created["refund"]["sequence"]
        # refund.created carries the payment as it was; refund.succeeded as the refund leaves it.
        assert (created["payment"]["status"], created["payment"]["amount_refunded"]) == ("SUCCEEDED", 0)
        assert (succeeded["payment"]["status"], succeeded["payment"]["amount_refunded"]) == (
            "PARTIALLY_REFUNDED",
            2000,
        )
        last = by_refund["refund.succeeded", rest["id"]]
        assert (last["payment"]["status"], last["payment"]["amount_refunded"]) == ("REFUNDED", 5000)
        assert last["refund"]["sequence"] > by_refund["refund.created", rest["id"]]["refund"]["sequence"]
        # The payment's sequence grows with each refund that moved money.
        paid_sequence = next(b for b in bodies if b["type"] == "payment.succeeded")["data"]["payment"]["sequence"]
        assert paid_sequence < succeeded["payment"]["sequence"] < last["payment"]["sequence"]

        # The event log lists the same events, in the order they happened.
        logged = await tenant.events(type="refund.created")
        logged += await tenant.events(type="refund.succeeded")
        assert {e["id"] for e in logged} == {b["id"] for b in refund_hooks}
        types = [e["type"] for e in await tenant.events() if e["type"].startswith("refund.")]
        assert types == ["refund.created", "refund.succeeded", "refund.created", "refund.succeeded"]

    async def test_a_declined_refund_fails_and_its_amount_is_refundable_again(
        self, platform: Any, new_tenant: Any, http: aiohttp.ClientSession, receiver: Any
    ) -> None:
        tenant = await new_tenant()
        secret = await subscribe(http, platform, tenant.auth, receiver.url)
        payment = await pay_at_sandbox(http, platform, tenant, amount=5000)

        status, failing = await refund(http, platform, tenant.auth, payment["id"], "f-1", reason="sandbox:fail")
        assert (status, failing["status"], failing["amount"]) == (201, "PENDING", 5000), failing
        # While it is pending it holds the whole payment.
        status, problem = await refund(http, platform, tenant.auth, payment["id"], "f-2", amount=100)
        assert (status, problem["code"]) == (409, "invalid_state"), problem
        failed = await settle(http, platform, tenant.auth, failing["id"])
        assert failed["status"] == "FAILED", failed
        assert failed["failure_code"]
        unchanged = await tenant.payment(payment["id"])
        assert (unchanged["status"], unchanged["amount_refunded"]) == ("SUCCEEDED", 0)

        bodies = await verified_webhooks(receiver, secret, {"refund.created": 1, "refund.failed": 1})
        hook = next(b for b in bodies if b["type"] == "refund.failed")
        assert hook["data"]["refund"]["id"] == failing["id"]
        assert hook["data"]["refund"]["status"] == "FAILED"
        assert hook["data"]["payment"]["amount_refunded"] == 0
        assert [e["id"] for e in await tenant.events(type="refund.failed")] == [hook["id"]]

        # The amount is refundable again: all of it.
        status, again = await refund(http, platform, tenant.auth, payment["id"], "f-3")
        assert (status, again["amount"]) == (201, 5000), again
        assert (await settle(http, platform, tenant.auth, again["id"]))["status"] == "SUCCEEDED"
        done = await tenant.payment(payment["id"])
        assert (done["status"], done["amount_refunded"]) == ("REFUNDED", 5000)


class TestRefundRequests:
    async def test_refusals_are_problems_with_stable_codes_and_refunds_stay_the_tenants(
        self, platform: Any, new_tenant: Any, http: aiohttp.ClientSession
    ) -> None:
        tenant, other = await new_tenant(), await new_tenant()
        unpaid = await tenant.create_payment("unpaid")
        status, problem = await refund(http, platform, tenant.auth, unpaid["id"], "u-1")
        assert (status, problem["code"]) == (409, "invalid_state"), problem
        payment = await pay_at_sandbox(http, platform, tenant, amount=5000)
        for body, code in (
            ({"amount": "10"}, "validation_error"),
            ({"amount": 0}, "validation_error"),
            ({"amount": 5001}, "amount_exceeds_refundable"),
            ({"reason": ""}, "validation_error"),
            ({"surprise": 1}, "validation_error"),
        ):
            status, problem = await refund(http, platform, tenant.auth, payment["id"], secrets.token_hex(4), **body)
            assert (status, problem["code"]) == (422, code), (body, problem)
        async with http.post(
            f"{platform.gateway_url}/v1/payments/{payment['id']}/refunds", json={}, headers=tenant.auth
        ) as r:
            assert r.status == 400, await r.text()
            assert r.headers["Content-Type"].startswith("application/problem+json")
        # Another tenant can neither refund the payment nor see its refunds.
        status, problem = await refund(http, platform, other.auth, payment["id"], "o-1")
        assert (status, problem["code"]) == (404, "not_found"), problem
        status, made = await refund(http, platform, tenant.auth, payment["id"], "t-1", amount=100)
        assert status == 201, made
        for path in (f"/v1/refunds/{made['id']}", f"/v1/payments/{payment['id']}/refunds", "/v1/refunds/rfnd_x%00"):
            async with http.get(platform.gateway_url + path, headers=other.auth) as r:
                assert r.status == 404, (path, await r.text())
                assert (await r.json())["code"] == "not_found"
        assert (await settle(http, platform, tenant.auth, made["id"]))["status"] == "SUCCEEDED"
        assert not await other.events()


class TestConcurrentRefunds:
    async def test_concurrent_partial_refunds_never_take_more_than_the_payment(
        self, platform: Any, new_tenant: Any, http: aiohttp.ClientSession
    ) -> None:
        tenant = await new_tenant()
        payment = await pay_at_sandbox(http, platform, tenant, amount=5000)
        # 16 refunds of 700 on a payment of 5000: at most 7 fit.
        answers = await asyncio.gather(
            *(refund(http, platform, tenant.auth, payment["id"], f"race-{i}", amount=700) for i in range(16))
        )
        accepted = [body for status, body in answers if status == 201]
        refused = [(status, body.get("code")) for status, body in answers if status != 201]
        assert sum(r["amount"] for r in accepted) <= 5000
        assert len(accepted) == 7, answers
        # Each refusal says why, in a stable code: never a 500.
        assert set(refused) <= {(422, "amount_exceeds_refundable"), (409, "invalid_state")}, refused

        final = [await settle(http, platform, tenant.auth, r["id"]) for r in accepted]
        assert {r["status"] for r in final} == {"SUCCEEDED"}
        settled = await tenant.payment(payment["id"])
        succeeded = sum(
            r["amount"]
            for r in await refunds_of(http, platform, tenant.auth, payment["id"])
            if r["status"] == "SUCCEEDED"
        )
        assert settled["amount_refunded"] == succeeded == 4900
        assert settled["amount_refunded"] <= settled["amount"]
        assert settled["status"] == "PARTIALLY_REFUNDED"

    async def test_concurrent_refunds_some_declined_settle_to_the_sum_of_those_that_succeeded(
        self, platform: Any, new_tenant: Any, http: aiohttp.ClientSession
    ) -> None:
        tenant = await new_tenant()
        payment = await pay_at_sandbox(http, platform, tenant, amount=5000)
        # A declined refund gives its amount back, so more may be accepted than fit at once; what the
        # provider returned must still add up to the payment's amount_refunded, within the payment.
        answers = await asyncio.gather(
            *(
                refund(
                    http,
                    platform,
                    tenant.auth,
                    payment["id"],
                    f"mix-{i}",
                    amount=600,
                    **({"reason": "sandbox:fail"} if i % 2 else {}),
                )
                for i in range(20)
            )
        )
        accepted = [body for status, body in answers if status == 201]
        refused = {(status, body.get("code")) for status, body in answers if status != 201}
        assert refused <= {(422, "amount_exceeds_refundable"), (409, "invalid_state")}, refused
        assert len(accepted) >= 8, answers
        final = [await settle(http, platform, tenant.auth, r["id"]) for r in accepted]
        assert {r["status"] for r in final} <= {"SUCCEEDED", "FAILED"}
        assert all(r["status"] == ("FAILED" if r["reason"] == "sandbox:fail" else "SUCCEEDED") for r in final)
        succeeded = sum(r["amount"] for r in final if r["status"] == "SUCCEEDED")
        settled = await tenant.payment(payment["id"])
        assert settled["amount_refunded"] == succeeded <= settled["amount"]
        assert settled["status"] == ("REFUNDED" if succeeded == 5000 else "PARTIALLY_REFUNDED")

    async def test_one_idempotency_key_makes_one_refund(
        self, platform: Any, new_tenant: Any, http: aiohttp.ClientSession
    ) -> None:
        tenant = await new_tenant()
        payment = await pay_at_sandbox(http, platform, tenant, amount=5000)
        # Sent at once: one request makes the refund; each other one replays it or, while it is still
        # running, is told so (409) and may retry.
        burst = await asyncio.gather(
            *(refund(http, platform, tenant.auth, payment["id"], "same", amount=1000) for _ in range(8))
        )
        made = [body for status, body in burst if status == 201]
        assert made and {r["id"] for r in made} == {made[0]["id"]}, burst
        assert all(status == 201 or body["code"] == "idempotency_key_in_use" for status, body in burst), burst
        first = made[0]
        # Retries afterwards replay it.
        again = [await refund(http, platform, tenant.auth, payment["id"], "same", amount=1000) for _ in range(3)]
        assert again == [(201, first)] * 3
        # The same key with another body is refused.
        status, problem = await refund(http, platform, tenant.auth, payment["id"], "same", amount=999)
        assert (status, problem["code"]) == (422, "idempotency_key_reused"), problem
        await settle(http, platform, tenant.auth, first["id"])
        listed = await refunds_of(http, platform, tenant.auth, payment["id"])
        assert [r["id"] for r in listed] == [first["id"]]
        assert (await tenant.payment(payment["id"]))["amount_refunded"] == 1000


class TestPendingRefunds:
    # The janitor that asks about pending refunds is reconciliation-svc's (not part of this platform):
    # the test plays it, calling providers-svc with a reconciliation token, which needs a known key.
    @pytest.mark.parametrize("platform", ["distributed"], indirect=True)
    async def test_a_pending_refund_holds_its_amount_until_a_sync_settles_it(
        self, platform: Any, new_tenant: Any, http: aiohttp.ClientSession, receiver: Any
    ) -> None:
        tenant = await new_tenant()
        secret = await subscribe(http, platform, tenant.auth, receiver.url)
        payment = await pay_at_sandbox(http, platform, tenant, amount=5000)
        status, pending = await refund(
            http, platform, tenant.auth, payment["id"], "p-1", amount=2000, reason="sandbox:pending"
        )
        assert status == 201, pending
        # The bank's pending answer records its id on the refund, which stays PENDING.
        deadline = time.monotonic() + 30
        while pending["provider_refund_id"] is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            pending = await get_refund(http, platform, tenant.auth, pending["id"])
        assert (pending["status"], pending["sequence"]) == ("PENDING", 2), pending
        assert pending["provider_refund_id"]
        status, problem = await refund(http, platform, tenant.auth, payment["id"], "p-2", amount=4000)
        assert (status, problem["code"], problem["amount_refundable"]) == (422, "amount_exceeds_refundable", 3000)

        sync = f"http://127.0.0.1:{platform.ports['providers']}/internal/refunds/{pending['id']}/sync"
        token = sign_internal(
            platform.internal_keys["providers_reconciliation"],
            issuer="reconciliation",
            audience="providers",
            tenant_id=None,
        )
        async with http.post(sync, headers={INTERNAL_HEADER: token}) as r:
            assert r.status == 200, await r.text()
            assert await r.json() == {"refund_id": pending["id"], "status": "succeeded", "published": True}
        settled = await settle(http, platform, tenant.auth, pending["id"])
        assert settled["status"] == "SUCCEEDED", settled
        done = await tenant.payment(payment["id"])
        assert (done["status"], done["amount_refunded"]) == ("PARTIALLY_REFUNDED", 2000)
        bodies = await verified_webhooks(receiver, secret, {"refund.created": 1, "refund.succeeded": 1})
        assert next(b for b in bodies if b["type"] == "refund.succeeded")["data"]["refund"]["id"] == pending["id"]
        # Asked again, the verdict is known and published already.
        async with http.post(sync, headers={INTERNAL_HEADER: token}) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["published"] is False
