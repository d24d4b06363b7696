"""The tenant dashboard on a real platform (the embedded one): every page renders with the tenant's
data, and each action (refund, cancel, endpoint create / edit / rotate / test, delivery retry, replay)
is checked through the public API afterwards (capture too)."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from .dashboard_support import Browser, Tenant, hidden, new_tenant_with_secret
from .test_refunds import pay_at_sandbox

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def platform(embedded_platform: Any) -> Any:
    return embedded_platform


@pytest.fixture
async def tenant(platform: Any, http: aiohttp.ClientSession) -> Tenant:
    return await new_tenant_with_secret(http, platform.gateway_url, platform.admin_token)


@pytest.fixture
async def browser(platform: Any, tenant: Tenant) -> AsyncIterator[Browser]:
    browser = Browser(platform.checkout_url)
    try:
        status, _, response = await browser.sign_in(tenant.app_name, tenant.secret)
        assert status == 303, response.headers
        assert response.headers["Location"] == "/dashboard/payments"
        yield browser
    finally:  # a failed sign-in must not leave its client session to the garbage collector
        await browser.close()


class TenantApi:
    """The tenant's own view through the gateway, to check what the dashboard did."""

    def __init__(self, http: aiohttp.ClientSession, platform: Any, tenant: Tenant) -> None:
        self.http, self.platform, self.tenant = http, platform, tenant

    async def get(self, path: str, **params: str) -> Any:
        async with self.http.get(f"{self.platform.gateway_url}{path}", params=params, headers=self.tenant.auth) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async def post(self, path: str, body: dict[str, Any], **headers: str) -> Any:
        async with self.http.post(
            f"{self.platform.gateway_url}{path}", json=body, headers={**self.tenant.auth, **headers}
        ) as r:
            assert r.status in (200, 201, 202), await r.text()
            return await r.json()

    async def create_payment(self, **body: Any) -> dict[str, Any]:
        payload = {"amount": 5000, "currency": "USD", "order_id": f"order-{secrets.token_hex(3)}", **body}
        return dict(await self.post("/v1/payments", payload, **{"Idempotency-Key": secrets.token_hex(8)}))

    async def wait_for_status(self, payment_id: str, wanted: str, timeout: float = 30) -> dict[str, Any]:
        for _ in range(int(timeout * 10)):
            payment = await self.get(f"/v1/payments/{payment_id}")
            if payment["status"] == wanted:
                return dict(payment)
            await asyncio.sleep(0.1)
        raise AssertionError(f"payment stayed {payment['status']}")


@pytest.fixture
def api(http: aiohttp.ClientSession, platform: Any, tenant: Tenant) -> TenantApi:
    return TenantApi(http, platform, tenant)


def assert_dashboard_page(response: aiohttp.ClientResponse, page: str) -> None:
    assert response.headers["Cache-Control"] == "no-store"
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "form-action 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "Traceback" not in page
    assert '<a class="skip-link" href="#main">' in page
    assert '<main id="main"' in page


class TestPages:
    async def test_every_page_renders_empty_for_a_new_tenant(self, browser: Browser) -> None:
        for path, empty in (
            ("/dashboard/payments", "No payments yet"),
            ("/dashboard/webhooks", "No endpoints yet"),
            ("/dashboard/deliveries", "No deliveries yet"),
            ("/dashboard/events", "No events"),
            ("/dashboard/providers", "Sandbox"),
            ("/dashboard/docs", "billing_client"),
        ):
            status, page, response = await browser.get(path)
            assert status == 200, (path, page)
            assert empty in page, path
            assert_dashboard_page(response, page)
            # Our one script file; code shown in the docs is text, never markup.
            assert page.count("<script") == 1, path

    async def test_payments_list_filters_and_pages(self, browser: Browser, api: TenantApi) -> None:
        made = [await api.create_payment(order_id=f"ord-{i}") for i in range(23)]
        status, page, _ = await browser.get("/dashboard/payments")
        assert status == 200
        assert made[-1]["id"] in page and made[3]["id"] in page and made[2]["id"] not in page
        older = re.search(r'href="(/dashboard/payments\?starting_after=[^"]+)"', page)
        assert older, page
        status, page2, _ = await browser.get(older.group(1).replace("&amp;", "&"))
        assert status == 200
        assert made[0]["id"] in page2 and made[-1]["id"] not in page2
        assert "ending_before=" in page2
        status, filtered, _ = await browser.get("/dashboard/payments?order_id=ord-7&status=CREATED")
        assert made[7]["id"] in filtered and made[8]["id"] not in filtered
        status, none, _ = await browser.get("/dashboard/payments?status=SUCCEEDED")
        assert "No payments match these filters" in none
        status, bad, _ = await browser.get("/dashboard/payments?status=<script>")
        assert status == 400
        assert "<script>" not in bad

    async def test_payment_detail_shows_history_attempts_refunds_and_webhooks(
        self,
        browser: Browser,
        api: TenantApi,
        http: aiohttp.ClientSession,
        platform: Any,
        tenant: Tenant,
        receiver: Any,
    ) -> None:
        await api.post("/v1/webhook-endpoints", {"url": receiver.url, "events": ["*"]})

        class _Tenant:
            async def create_payment(self, key: str, **body: Any) -> dict[str, Any]:
                return await api.create_payment(**body)

            async def wait_for_status(self, payment_id: str, wanted: str) -> dict[str, Any]:
                return await api.wait_for_status(payment_id, wanted)

        paid = await pay_at_sandbox(http, platform, _Tenant())
        await receiver.wait("payment.succeeded")
        status, page, response = await browser.get(f"/dashboard/payments/{paid['id']}")
        assert status == 200, page
        assert_dashboard_page(response, page)
        for text in ("payment.created", "payment.succeeded", "SUCCEEDED", "$50.00", "Refund", "Webhooks sent"):
            assert text in page, text
        # GET /v1/payments/{id}/attempts (a gateway without it: "Attempts not available").
        assert re.search(r"att_\w+</th>\s*<td>sandbox</td>\s*<td>succeeded</td>", page), page
        assert "/dashboard/deliveries/wd_" in page

    async def test_unknown_payment_is_a_404_page(self, browser: Browser) -> None:
        for path in ("/dashboard/payments/pay_doesnotexist1234", "/dashboard/payments/nope", "/dashboard/nothing"):
            status, page, response = await browser.get(path)
            assert status == 404, path
            assert "Not found" in page
            assert response.content_type == "text/html"


class TestActions:
    async def _paid(self, http: aiohttp.ClientSession, platform: Any, api: TenantApi) -> dict[str, Any]:
        class _Tenant:
            async def create_payment(self, key: str, **body: Any) -> dict[str, Any]:
                return await api.create_payment(**body)

            async def wait_for_status(self, payment_id: str, wanted: str) -> dict[str, Any]:
                return await api.wait_for_status(payment_id, wanted)

        return await pay_at_sandbox(http, platform, _Tenant())

    async def test_partial_refund_replays_on_double_submit(
        self, browser: Browser, api: TenantApi, http: aiohttp.ClientSession, platform: Any
    ) -> None:
        paid = await self._paid(http, platform, api)
        page_path = f"/dashboard/payments/{paid['id']}"
        _, page, _ = await browser.get(page_path)
        form = {"csrf_token": hidden(page, "csrf_token"), "idempotency_key": hidden(page, "idempotency_key")}
        form.update(amount="1500", reason="requested_by_customer")
        first = await browser.post(f"{page_path}/refund", form)
        second = await browser.post(f"{page_path}/refund", form)  # the same form sent twice
        assert first[0] == second[0] == 303
        assert first[2].headers["Location"].endswith("notice=refund_created")
        refunds = (await api.get(f"/v1/payments/{paid['id']}/refunds"))["data"]
        assert [(r["amount"], r["reason"]) for r in refunds] == [(1500, "requested_by_customer")]
        _, after, _ = await browser.get(page_path + "?notice=refund_created")
        assert refunds[0]["id"] in after and "Refund requested" in after

    async def test_full_refund_and_a_refused_one(
        self, browser: Browser, api: TenantApi, http: aiohttp.ClientSession, platform: Any
    ) -> None:
        paid = await self._paid(http, platform, api)
        page_path = f"/dashboard/payments/{paid['id']}"
        status, _, response = await browser.submit(
            page_path, f"{page_path}/refund", {"idempotency_key": "dash-refund-" + secrets.token_hex(8)}
        )
        assert status == 303 and "notice=refund_created" in response.headers["Location"]
        refunds = (await api.get(f"/v1/payments/{paid['id']}/refunds"))["data"]
        assert [r["amount"] for r in refunds] == [5000]
        # Nothing left: the platform refuses and the page says why, changing nothing.
        status, _, response = await browser.submit(
            page_path,
            f"{page_path}/refund",
            {"idempotency_key": "dash-refund-" + secrets.token_hex(8), "amount": "100"},
        )
        assert status == 303 and "error=" in response.headers["Location"]
        _, page, _ = await browser.get(response.headers["Location"])
        assert 'role="alert"' in page
        assert len((await api.get(f"/v1/payments/{paid['id']}/refunds"))["data"]) == 1

    async def test_capture_part_of_an_authorized_payment(
        self, browser: Browser, api: TenantApi, http: aiohttp.ClientSession, platform: Any
    ) -> None:
        payment = await api.create_payment(capture_method="manual")
        async with http.post(
            f"{platform.checkout_url}/c/{payment['checkout_token']}/pay",
            data={"provider": "sandbox"},
            allow_redirects=False,
        ) as r:
            assert r.status == 303, await r.text()
            bank_page = r.headers["Location"]
        async with http.post(bank_page, data={"outcome": "succeed"}, allow_redirects=False) as r:
            assert r.status == 303, await r.text()
        await api.wait_for_status(payment["id"], "AUTHORIZED")
        page_path = f"/dashboard/payments/{payment['id']}"
        _, page, _ = await browser.get(page_path)
        assert "Authorized, to capture" in page and 'action="' + page_path + '/capture"' in page
        form = {"csrf_token": hidden(page, "csrf_token"), "idempotency_key": hidden(page, "idempotency_key")}
        assert form["idempotency_key"].startswith("dash-capture-")  # the capture form's (no refund form yet)
        form.update(amount="3000")
        first = await browser.post(f"{page_path}/capture", form)
        second = await browser.post(f"{page_path}/capture", form)  # the same form sent twice: replayed
        assert first[0] == second[0] == 303
        assert first[2].headers["Location"].endswith("notice=captured")
        captured = await api.wait_for_status(payment["id"], "SUCCEEDED")
        assert (captured["amount_captured"], captured["amount_capturable"]) == (3000, 0)
        _, after, _ = await browser.get(page_path + "?notice=captured")
        assert "Payment captured" in after and 'action="' + page_path + '/capture"' not in after

    async def test_cancel(self, browser: Browser, api: TenantApi) -> None:
        payment = await api.create_payment()
        page_path = f"/dashboard/payments/{payment['id']}"
        status, _, response = await browser.submit(page_path, f"{page_path}/cancel", {})
        assert status == 303 and response.headers["Location"].endswith("notice=cancelled")
        assert (await api.get(f"/v1/payments/{payment['id']}"))["status"] == "CANCELLED"

    async def test_endpoint_create_edit_rotate_test_retry_and_replay(
        self, browser: Browser, api: TenantApi, receiver: Any
    ) -> None:
        status, page, response = await browser.submit(
            "/dashboard/webhooks",
            "/dashboard/webhooks",
            {"url": receiver.url, "description": "orders", "all_events": "yes"},
        )
        assert status == 200, page
        assert response.headers["Cache-Control"] == "no-store"
        secret = hidden_value(page, "secret-value")
        assert secret.startswith("whsec_")
        [endpoint] = (await api.get("/v1/webhook-endpoints"))["data"]
        assert (endpoint["url"], endpoint["events"], endpoint["description"]) == (receiver.url, ["*"], "orders")
        ep_page = f"/dashboard/webhooks/{endpoint['id']}"
        # Shown once: the endpoint's page never shows it again.
        _, shown, _ = await browser.get(ep_page)
        assert secret not in shown

        status, _, response = await browser.submit(
            ep_page, ep_page, {"events": "payment.succeeded", "description": "paid only", "enabled": "yes"}
        )
        assert status == 303
        edited = await api.get(f"/v1/webhook-endpoints/{endpoint['id']}")
        assert (edited["events"], edited["description"], edited["enabled"]) == (
            ["payment.succeeded"],
            "paid only",
            True,
        )

        status, rotated, _ = await browser.submit(ep_page, f"{ep_page}/rotate-secret", {})
        assert status == 200
        new_secret = hidden_value(rotated, "secret-value")
        assert new_secret.startswith("whsec_") and new_secret != secret

        status, _, response = await browser.submit(ep_page, f"{ep_page}/test", {})
        assert status == 303 and response.headers["Location"].endswith("notice=test_sent")
        await receiver.wait("webhook.test")
        deliveries: list[dict[str, Any]] = []
        for _ in range(100):
            deliveries = (await api.get("/v1/webhook-deliveries", endpoint_id=endpoint["id"]))["data"]
            if deliveries and deliveries[0]["status"] == "succeeded":
                break
            await asyncio.sleep(0.1)
        [delivery] = deliveries

        status, listed, _ = await browser.get(
            f"/dashboard/deliveries?endpoint_id={endpoint['id']}&event_type=webhook.test"
        )
        assert status == 200 and delivery["id"] in listed
        d_page = f"/dashboard/deliveries/{delivery['id']}"
        status, detail, _ = await browser.get(d_page)
        assert status == 200 and "Attempt 1" in detail and "204" in detail
        status, _, response = await browser.submit(d_page, f"{d_page}/retry", {})
        assert status == 303 and response.headers["Location"].endswith("notice=retried")
        after: dict[str, Any] = {}
        for _ in range(100):
            # The receiver sees the retry before the dispatcher records its attempt: wait for both.
            after = await api.get(f"/v1/webhook-deliveries/{delivery['id']}")
            if len(receiver.types()) >= 2 and len(after["attempts"]) >= 2:
                break
            await asyncio.sleep(0.1)
        assert len(after["attempts"]) >= 2

        status, _, response = await browser.submit(
            ep_page, f"{ep_page}/replay", {"since": "2020-01-01T00:00", "status": "all"}
        )
        assert status == 303 and response.headers["Location"].endswith("notice=replayed")


def hidden_value(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*value="([^"]+)"', page)
    assert found, page
    return found.group(1)


class TestDistributed:
    """The same dashboard on the distributed platform: checkout-web as its own process, migrated, with
    its database and session keys from its environment."""

    async def test_sign_in_and_every_page(self, distributed_platform: Any, http: aiohttp.ClientSession) -> None:
        tenant = await new_tenant_with_secret(http, distributed_platform.gateway_url, distributed_platform.admin_token)
        api = TenantApi(http, distributed_platform, tenant)
        payment = await api.create_payment()
        browser = Browser(distributed_platform.checkout_url)
        try:
            status, _, _ = await browser.sign_in(tenant.app_name, tenant.secret)
            assert status == 303
            for path in (
                "/dashboard/payments",
                f"/dashboard/payments/{payment['id']}",
                "/dashboard/webhooks",
                "/dashboard/deliveries",
                "/dashboard/events",
                "/dashboard/providers",
                "/dashboard/docs",
            ):
                status, page, response = await browser.get(path)
                assert status == 200, (path, page)
                assert_dashboard_page(response, page)
            _, detail, _ = await browser.get(f"/dashboard/payments/{payment['id']}")
            assert "payment.created" in detail
        finally:
            await browser.close()
