from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from checkout_web.settings import Settings

TERMINAL = ["AUTHORIZED", "SUCCEEDED", "FAILED", "EXPIRED", "CANCELLED"]


def provider_buttons(html: str) -> list[str]:
    return re.findall(r'<button[^>]*name="provider" value="([^"]*)"', html)


def assert_human_page(html: str) -> None:
    assert html.lstrip().startswith("<!doctype html>")
    assert "Traceback" not in html
    assert '"code"' not in html


class TestPayPage:
    async def test_shows_merchant_amount_and_one_button_per_provider(self, client: TestClient, token: str) -> None:
        response = await client.get(f"/c/{token}")
        html = await response.text()
        assert response.status == 200
        assert response.content_type == "text/html"
        assert "Shop One" in html
        assert "$50.00" in html
        assert "Two tickets" in html
        assert provider_buttons(html) == ["sandbox", "click"]
        assert "Pay with Sandbox (test)" in html
        assert f'action="/c/{token}/pay"' in html
        assert 'method="post"' in html

    async def test_formats_the_amount_for_its_currency(self, client: TestClient, fake_gateway: Any) -> None:
        token = fake_gateway.add(amount=150000, currency="UZS", currency_exponent=2)
        assert "1 500.00 UZS" in await (await client.get(f"/c/{token}")).text()

    async def test_html_in_the_description_and_names_is_escaped(self, client: TestClient, fake_gateway: Any) -> None:
        token = fake_gateway.add(
            description='<script>alert("x")</script><b>bold</b>',
            merchant={"display_name": "<img src=x onerror=alert(1)>"},
            providers=[{"name": "sandbox", "display_name": '"><script>1</script>'}],
        )
        html = await (await client.get(f"/c/{token}")).text()
        assert "<script>alert" not in html
        assert "<b>bold</b>" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html

    async def test_no_description_no_empty_paragraph(self, client: TestClient, fake_gateway: Any) -> None:
        token = fake_gateway.add(description=None)
        html = await (await client.get(f"/c/{token}")).text()
        assert 'class="description"' not in html

    async def test_provider_pending_shows_status_and_lets_the_payer_continue(
        self, client: TestClient, fake_gateway: Any
    ) -> None:
        token = fake_gateway.add(status="PROVIDER_PENDING")
        response = await client.get(f"/c/{token}")
        html = await response.text()
        assert response.status == 200
        assert "already been started" in html
        assert f'href="/c/{token}/return"' in html
        assert "Continue paying" in html
        assert provider_buttons(html) == ["sandbox", "click"]

    async def test_after_a_failed_attempt_says_so_and_offers_the_providers_again(
        self, client: TestClient, fake_gateway: Any
    ) -> None:
        token = fake_gateway.add(
            status="CREATED",
            failure_message="<b>Insufficient funds</b>",
            failed_provider="payme",
            providers=[{"name": "click", "display_name": "Click"}],
        )
        response = await client.get(f"/c/{token}")
        html = await response.text()
        assert response.status == 200
        assert "Your payment with Payme did not go through." in html
        assert "&lt;b&gt;Insufficient funds&lt;/b&gt;" in html
        assert "Choose a way to pay" in html
        assert provider_buttons(html) == ["click"]

    async def test_a_never_tried_payment_shows_no_failure(self, client: TestClient, fake_gateway: Any) -> None:
        html = await (await client.get(f"/c/{fake_gateway.add()}")).text()
        assert "did not go through" not in html

    async def test_no_providers_explains_instead_of_an_empty_form(self, client: TestClient, fake_gateway: Any) -> None:
        token = fake_gateway.add(providers=[])
        html = await (await client.get(f"/c/{token}")).text()
        assert provider_buttons(html) == []
        assert "No payment method is available" in html

    @pytest.mark.parametrize("status", TERMINAL)
    async def test_terminal_status_shows_a_message_page(
        self, client: TestClient, fake_gateway: Any, status: str
    ) -> None:
        token = fake_gateway.add(status=status, failure_message="Card declined" if status == "FAILED" else None)
        response = await client.get(f"/c/{token}")
        html = await response.text()
        assert response.status == 200
        assert_human_page(html)
        assert provider_buttons(html) == []
        assert 'href="https://shop.example/thanks"' in html
        assert "Return to Shop One" in html

    @pytest.mark.parametrize(
        ("status", "words"),
        [
            ("SUCCEEDED", "Payment confirmed"),
            ("AUTHORIZED", "Payment authorized"),
            ("FAILED", "Card declined"),
            ("EXPIRED", "expired"),
            ("CANCELLED", "cancelled"),
            ("REFUNDED", "refunded"),
        ],
    )
    async def test_terminal_message_says_what_happened(
        self, client: TestClient, fake_gateway: Any, status: str, words: str
    ) -> None:
        token = fake_gateway.add(status=status, failure_message="Card declined" if status == "FAILED" else None)
        assert words in await (await client.get(f"/c/{token}")).text()

    async def test_unsafe_return_url_is_not_linked(self, client: TestClient, fake_gateway: Any) -> None:
        token = fake_gateway.add(status="SUCCEEDED", return_url="javascript:alert(1)")
        html = await (await client.get(f"/c/{token}")).text()
        assert "javascript:" not in html
        assert "Return to" not in html


class TestUnknownAndMalformedTokens:
    async def test_unknown_token_is_a_404_page(self, client: TestClient, fake_gateway: Any) -> None:
        response = await client.get("/c/" + "a" * 24)
        html = await response.text()
        assert response.status == 404
        assert response.content_type == "text/html"
        assert "Payment link not found" in html
        assert_human_page(html)
        assert fake_gateway.get_calls == ["a" * 24]

    @pytest.mark.parametrize(
        "path",
        [
            "/c/short",
            "/c/" + "a" * 129,
            "/c/" + "a" * 20 + "%2E%2E",
            "/c/" + "a" * 20 + "%3Cscript%3E",
            "/c/short/pay",
            "/c/short/return",
            "/c/..%2F..%2Fadmin%2Ftenants",
        ],
    )
    async def test_malformed_token_is_a_404_without_a_gateway_call(
        self, client: TestClient, fake_gateway: Any, path: str
    ) -> None:
        response = await client.get(path, allow_redirects=False)
        assert response.status == 404
        assert "Payment link not found" in await response.text()
        assert fake_gateway.calls == 0

    async def test_malformed_token_on_pay_post_makes_no_gateway_call(
        self, client: TestClient, fake_gateway: Any
    ) -> None:
        response = await client.post("/c/bad!token/pay", data={"provider": "sandbox"})
        assert response.status == 404
        assert fake_gateway.calls == 0

    async def test_unknown_path_is_a_404_page_not_json(self, client: TestClient) -> None:
        response = await client.get("/nowhere")
        assert response.status == 404
        assert response.content_type == "text/html"


class TestPay:
    async def test_redirects_303_to_the_provider_and_sends_the_provider(
        self, client: TestClient, fake_gateway: Any, token: str
    ) -> None:
        response = await client.post(f"/c/{token}/pay", data={"provider": "click"}, allow_redirects=False)
        assert response.status == 303
        assert response.headers["Location"] == f"https://sandbox.example/pay/{token}?p=click"
        assert fake_gateway.pay_calls == [(token, {"provider": "click"})]

    async def test_forwards_the_request_id(self, client: TestClient, fake_gateway: Any, token: str) -> None:
        await client.get(f"/c/{token}", headers={"X-Request-Id": "req_from_edge"})
        assert fake_gateway.request_ids == ["req_from_edge"]

    async def test_conflict_shows_the_current_state(self, client: TestClient, fake_gateway: Any, token: str) -> None:
        fake_gateway.set_status(token, "SUCCEEDED")
        response = await client.post(f"/c/{token}/pay", data={"provider": "sandbox"}, allow_redirects=False)
        html = await response.text()
        assert response.status == 409
        assert "Payment confirmed" in html
        assert_human_page(html)

    async def test_conflict_on_a_payable_checkout_offers_the_way_back(
        self, client: TestClient, fake_gateway: Any, token: str
    ) -> None:
        fake_gateway.pay_problems[token] = (409, "invalid_state")
        response = await client.post(f"/c/{token}/pay", data={"provider": "sandbox"}, allow_redirects=False)
        html = await response.text()
        assert response.status == 409
        assert f'href="/c/{token}"' in html

    async def test_provider_not_allowed_is_a_422_page(self, client: TestClient, token: str) -> None:
        response = await client.post(f"/c/{token}/pay", data={"provider": "stripe"}, allow_redirects=False)
        assert response.status == 422
        assert "not available" in await response.text()

    @pytest.mark.parametrize("data", [{}, {"provider": ""}, {"provider": "<x>"}, {"provider": "a" * 65}])
    async def test_missing_or_malformed_provider_is_a_400_without_a_gateway_call(
        self, client: TestClient, fake_gateway: Any, token: str, data: dict[str, str]
    ) -> None:
        response = await client.post(f"/c/{token}/pay", data=data, allow_redirects=False)
        assert response.status == 400
        assert fake_gateway.pay_calls == []

    async def test_gateway_503_is_a_friendly_try_again_page(
        self, client: TestClient, fake_gateway: Any, token: str
    ) -> None:
        fake_gateway.pay_problems[token] = (503, "upstream_unavailable")
        response = await client.post(f"/c/{token}/pay", data={"provider": "sandbox"}, allow_redirects=False)
        html = await response.text()
        assert response.status == 503
        assert "try again" in html.lower()
        assert f'href="/c/{token}"' in html
        assert_human_page(html)

    @pytest.mark.parametrize("redirect_url", ["javascript:alert(1)", "/relative/path", "data:text/html,x"])
    async def test_redirect_that_is_not_absolute_http_is_refused(
        self, client: TestClient, fake_gateway: Any, token: str, redirect_url: str
    ) -> None:
        fake_gateway.redirect_url = redirect_url
        response = await client.post(f"/c/{token}/pay", data={"provider": "sandbox"}, allow_redirects=False)
        assert response.status == 502
        assert "Location" not in response.headers
        assert_human_page(await response.text())

    async def test_get_of_the_pay_url_goes_back_to_the_options(self, client: TestClient, token: str) -> None:
        response = await client.get(f"/c/{token}/pay", allow_redirects=False)
        assert response.status == 303
        assert response.headers["Location"] == f"/c/{token}"


class TestGatewayDown:
    @pytest.fixture
    async def down_client(
        self, make_client: Callable[[Settings], Awaitable[TestClient]], closed_port: int, settings: Settings
    ) -> TestClient:
        return await make_client(
            settings.model_copy(update={"gateway_url": f"http://127.0.0.1:{closed_port}", "request_timeout": 5})
        )

    @pytest.mark.parametrize("path", ["/c/" + "a" * 24, "/c/" + "a" * 24 + "/return"])
    async def test_page_is_a_friendly_503_quickly(self, down_client: TestClient, path: str) -> None:
        started = time.monotonic()
        response = await down_client.get(path)
        html = await response.text()
        assert time.monotonic() - started < 2
        assert response.status == 503
        assert "Please try again" in html
        assert f'href="{path}"' in html
        assert_human_page(html)

    async def test_pay_is_a_friendly_503_linking_back_to_the_options(self, down_client: TestClient) -> None:
        token = "a" * 24
        response = await down_client.post(f"/c/{token}/pay", data={"provider": "sandbox"}, allow_redirects=False)
        assert response.status == 503
        assert f'href="/c/{token}"' in await response.text()

    async def test_slow_gateway_is_a_503_after_the_timeout(
        self,
        make_client: Callable[[Settings], Awaitable[TestClient]],
        fake_gateway: Any,
        token: str,
        settings: Settings,
    ) -> None:
        fake_gateway.delay = 3
        client = await make_client(settings.model_copy(update={"request_timeout": 0.3}))
        started = time.monotonic()
        response = await client.get(f"/c/{token}")
        assert response.status == 503
        assert time.monotonic() - started < 2

    async def test_broken_answer_is_a_502_page(self, client: TestClient, fake_gateway: Any) -> None:
        token = fake_gateway.add(amount="lots")
        response = await client.get(f"/c/{token}")
        assert response.status == 502
        assert_human_page(await response.text())


class TestReturnPage:
    async def test_pending_renders_waiting_for_the_provider_and_polls(
        self, client: TestClient, fake_gateway: Any
    ) -> None:
        token = fake_gateway.add(status="PROVIDER_PENDING")
        response = await client.get(f"/c/{token}/return")
        html = await response.text()
        assert response.status == 200
        assert "Waiting for confirmation from the provider" in html
        assert "does not confirm a payment" in html
        assert 'fetch("status.json"' in html
        assert "1500" in html
        # The way back to the merchant appears only once the outcome is final.
        assert re.search(r'id="return-link"[^>]*hidden', html)

    async def test_succeeded_renders_the_outcome_and_the_way_back_without_polling(
        self, client: TestClient, fake_gateway: Any
    ) -> None:
        token = fake_gateway.add(status="SUCCEEDED")
        html = await (await client.get(f"/c/{token}/return")).text()
        assert "Payment confirmed" in html
        assert "status.json" not in html
        assert re.search(r'<a id="return-link"[^>]*href="https://shop.example/thanks">Return to Shop One</a>', html)

    async def test_failed_shows_the_failure_message_escaped(self, client: TestClient, fake_gateway: Any) -> None:
        token = fake_gateway.add(status="FAILED", failure_message="<b>Card declined</b>")
        html = await (await client.get(f"/c/{token}/return")).text()
        assert "Payment failed" in html
        assert "&lt;b&gt;Card declined&lt;/b&gt;" in html

    async def test_back_to_payable_shows_the_failure_and_the_options(
        self, client: TestClient, fake_gateway: Any
    ) -> None:
        token = fake_gateway.add(status="CREATED", failure_message="Card declined", failed_provider="octo")
        html = await (await client.get(f"/c/{token}/return")).text()
        assert "Reason given by the provider: Card declined" in html
        assert re.search(r'<a id="options-link" class="button" href="/c/[^"]+">Choose a payment method</a>', html)

    async def test_without_return_url_no_link(self, client: TestClient, fake_gateway: Any) -> None:
        token = fake_gateway.add(status="SUCCEEDED", return_url=None)
        html = await (await client.get(f"/c/{token}/return")).text()
        assert "return-link" not in html

    async def test_status_copy_for_the_script_is_escaped_json(self, client: TestClient, fake_gateway: Any) -> None:
        token = fake_gateway.add(status="PROVIDER_PENDING", merchant={"display_name": "</script><script>x()"})
        html = await (await client.get(f"/c/{token}/return")).text()
        assert "</script><script>x()" not in html

    async def test_unknown_token_is_a_404_page(self, client: TestClient) -> None:
        response = await client.get("/c/" + "b" * 24 + "/return")
        assert response.status == 404


class TestStatusJson:
    async def test_proxies_only_status_and_failure_message(
        self, client: TestClient, fake_gateway: Any, token: str
    ) -> None:
        response = await client.get(f"/c/{token}/status.json")
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
        assert await response.json() == {"status": "CREATED", "failure_message": None}

    async def test_follows_the_live_status(self, client: TestClient, fake_gateway: Any, token: str) -> None:
        fake_gateway.set_status(token, "FAILED", "Insufficient funds")
        assert await (await client.get(f"/c/{token}/status.json")).json() == {
            "status": "FAILED",
            "failure_message": "Insufficient funds",
        }

    async def test_unknown_token_is_a_404_problem(self, client: TestClient) -> None:
        response = await client.get("/c/" + "c" * 24 + "/status.json")
        assert response.status == 404
        assert response.content_type == "application/problem+json"
        assert (await response.json())["code"] == "not_found"

    async def test_malformed_token_is_a_404_without_a_gateway_call(self, client: TestClient, fake_gateway: Any) -> None:
        response = await client.get("/c/nope/status.json")
        assert response.status == 404
        assert fake_gateway.calls == 0

    async def test_gateway_down_is_a_503_problem(
        self, make_client: Callable[[Settings], Awaitable[TestClient]], closed_port: int, settings: Settings
    ) -> None:
        client = await make_client(settings.model_copy(update={"gateway_url": f"http://127.0.0.1:{closed_port}"}))
        response = await client.get("/c/" + "a" * 24 + "/status.json")
        assert response.status == 503
        assert (await response.json())["code"] == "upstream_unavailable"
        assert response.headers["Retry-After"] == "2"
