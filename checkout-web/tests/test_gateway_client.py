from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from checkout_web.gateway_client import (
    CheckoutNotFound,
    CheckoutNotPayable,
    GatewayClient,
    GatewayUnavailable,
    ProviderNotAllowed,
    UnexpectedGatewayResponse,
)
from yarl import URL


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
        yield session


@pytest.fixture
def gateway(session: aiohttp.ClientSession, fake_gateway: Any) -> GatewayClient:
    return GatewayClient(session, URL(fake_gateway.url))


class TestGetCheckout:
    async def test_returns_the_typed_view(self, gateway: GatewayClient, fake_gateway: Any, token: str) -> None:
        checkout = await gateway.get_checkout(token, request_id="req_abc")
        assert checkout.status == "CREATED"
        assert checkout.amount == 5000
        assert checkout.merchant.display_name == "Shop One"
        assert [p.name for p in checkout.providers] == ["sandbox", "click"]
        assert fake_gateway.request_ids == ["req_abc"]

    async def test_unknown_fields_and_statuses_are_tolerated(self, gateway: GatewayClient, fake_gateway: Any) -> None:
        token = fake_gateway.add(status="DISPUTED", new_field={"x": 1})
        assert (await gateway.get_checkout(token)).status == "DISPUTED"

    async def test_unknown_token_raises_not_found(self, gateway: GatewayClient) -> None:
        with pytest.raises(CheckoutNotFound) as info:
            await gateway.get_checkout("a" * 20)
        assert info.value.code == "not_found"

    @pytest.mark.parametrize("amount", ["5000", 50.0, -1, None])
    async def test_amount_that_is_not_a_non_negative_integer_is_unexpected(
        self, gateway: GatewayClient, fake_gateway: Any, amount: object
    ) -> None:
        token = fake_gateway.add(amount=amount)
        with pytest.raises(UnexpectedGatewayResponse):
            await gateway.get_checkout(token)

    async def test_closed_port_raises_unavailable(self, session: aiohttp.ClientSession, closed_port: int) -> None:
        gateway = GatewayClient(session, URL(f"http://127.0.0.1:{closed_port}"))
        with pytest.raises(GatewayUnavailable):
            await gateway.get_checkout("a" * 20)

    async def test_slow_gateway_raises_unavailable(self, gateway: GatewayClient, fake_gateway: Any, token: str) -> None:
        fake_gateway.delay = 3
        with pytest.raises(GatewayUnavailable):
            await gateway.get_checkout(token)

    async def test_base_url_path_is_kept(self, session: aiohttp.ClientSession, fake_gateway: Any) -> None:
        gateway = GatewayClient(session, URL(fake_gateway.url) / "prefix")
        with pytest.raises(UnexpectedGatewayResponse):
            # The fake serves no /prefix routes, so aiohttp answers a bare 404.
            await gateway.get_checkout("a" * 20)
        assert fake_gateway.get_calls == []

    async def test_404_that_is_not_a_problem_is_a_deployment_fault(
        self, session: aiohttp.ClientSession, fake_gateway: Any
    ) -> None:
        gateway = GatewayClient(session, URL(fake_gateway.url) / "wrong")
        with pytest.raises(UnexpectedGatewayResponse):
            await gateway.pay("a" * 20, "sandbox")


class TestPay:
    async def test_returns_redirect_and_sends_provider(
        self, gateway: GatewayClient, fake_gateway: Any, token: str
    ) -> None:
        result = await gateway.pay(token, "sandbox")
        assert result.redirect_url.startswith("https://sandbox.example/pay/")
        assert fake_gateway.pay_calls == [(token, {"provider": "sandbox"})]

    async def test_not_payable_raises_with_the_code(
        self, gateway: GatewayClient, fake_gateway: Any, token: str
    ) -> None:
        fake_gateway.set_status(token, "SUCCEEDED")
        with pytest.raises(CheckoutNotPayable) as info:
            await gateway.pay(token, "sandbox")
        assert info.value.code == "invalid_state"

    async def test_provider_not_allowed(self, gateway: GatewayClient, token: str) -> None:
        with pytest.raises(ProviderNotAllowed):
            await gateway.pay(token, "stripe")

    @pytest.mark.parametrize(
        ("status", "error"),
        [
            (503, GatewayUnavailable),
            (429, GatewayUnavailable),
            (500, UnexpectedGatewayResponse),
            (400, UnexpectedGatewayResponse),
        ],
    )
    async def test_other_statuses(
        self, gateway: GatewayClient, fake_gateway: Any, token: str, status: int, error: type[Exception]
    ) -> None:
        fake_gateway.pay_problems[token] = (status, "whatever")
        with pytest.raises(error):
            await gateway.pay(token, "sandbox")
