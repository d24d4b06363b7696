"""The refund lease (PROVIDERS_REFUND_LEASE_SECONDS): comfortably longer than the longest refund attempt
(refused otherwise at startup), and an attempt never waits on its provider past it, since another
caller may then claim the refund and send it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from providers_svc.domain.refunds import RefundStatus, worst_refund_attempt
from providers_svc.keys import directory_key, refunds_key, uow_factory_key
from providers_svc.services.refunds import Refunds
from providers_svc.settings import Settings
from providers_svc.simulators.octo import OctoBook, create_octo_app
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import TENANT, mark_paid, refund_created

Rows = Callable[[], Awaitable[list[dict[str, Any]]]]


class TestLeaseSettings:
    def test_the_default_lease_is_twice_the_longest_attempt_at_least(self, settings: Settings) -> None:
        assert settings.refund_lease_seconds >= 2 * worst_refund_attempt(settings.provider_timeout)
        assert worst_refund_attempt(15.0) == 120.0

    def test_a_lease_shorter_than_twice_the_longest_attempt_is_refused(self, settings: Settings) -> None:
        values = settings.model_dump()
        with pytest.raises(ValueError, match=r"PROVIDERS_REFUND_LEASE_SECONDS .* twice the longest refund attempt"):
            Settings(**{**values, "provider_timeout": 60.0, "refund_lease_seconds": 300.0})
        assert (
            Settings(**{**values, "provider_timeout": 30.0, "refund_lease_seconds": 480.0}).refund_lease_seconds == 480
        )


@pytest.mark.postgres
class TestLeaseBoundsTheCall:
    async def test_an_attempt_stops_waiting_at_its_lease_and_the_refund_stays_requested(
        self,
        aiohttp_server: Callable[..., Awaitable[TestServer]],
        make_client: Any,
        internal_headers: Any,
        engine: AsyncEngine,
        refunds_of: Rows,
    ) -> None:
        shop_id, secret = 4244, "octo-shop-secret-for-lease-tests"
        book = OctoBook(shops={shop_id: secret})
        slow = {"now": False}

        @web.middleware
        async def slowly(request: web.Request, handler: Any) -> web.StreamResponse:
            if slow["now"]:
                await asyncio.sleep(3)
            response: web.StreamResponse = await handler(request)
            return response

        octo_app = create_octo_app(book)
        octo_app.middlewares.append(slowly)
        server = await aiohttp_server(octo_app)
        client = await make_client(enabled_providers=["sandbox", "octo"])
        created = await client.post(
            "/admin/provider-accounts",
            json={
                "provider": "octo", "name": "Slow Octo (test)", "environment": "test", "currencies": ["UZS"],
                "credentials": {"shop_id": str(shop_id), "secret": secret},
                "settings": {"api_base": str(server.make_url("")).rstrip("/")},
            },
            headers=internal_headers(None, issuer="gateway"),
        )  # fmt: skip
        assert created.status == 201, await created.text()
        assigned = await client.put(
            f"/admin/tenants/{TENANT}/provider-accounts/octo",
            json={"provider_account_id": (await created.json())["id"]},
            headers=internal_headers(TENANT, issuer="gateway"),
        )
        assert assigned.status == 200
        body = {"payment_id": "pay_octoslow0001", "provider": "octo", "amount": 300_000, "currency": "UZS",
                "return_url": "http://127.0.0.1:8080/r"}  # fmt: skip
        started = await (await client.post("/internal/payments/start", json=body, headers=internal_headers())).json()
        book.pay(started["provider_reference"])
        await mark_paid(engine, started["provider_transaction_id"])

        app = client.app
        short = Refunds(app[uow_factory_key], app[directory_key], lease=timedelta(seconds=0.5))
        event = refund_created("pay_octoslow0001", provider="octo", amount=300_000, currency="UZS")
        slow["now"] = True
        began = time.monotonic()
        assert await short.accept(event) == "requested"
        assert time.monotonic() - began < 2  # not the provider's 3 s: the lease's 0.5 s
        [row] = await refunds_of()
        assert (row["status"], row["attempts"], row["claim_token"]) == ("requested", 1, None)

        slow["now"] = False
        after = await app[refunds_key].send(event.data.refund.id)
        assert after is not None and after.status is RefundStatus.SUCCEEDED
