"""A Click reversal whose answer was lost (Click has no idempotency key and refuses a second reversal):
the retry asks the payment's status first and records the reversal Click made; a repeated reversal that
Click refuses leaves the refund unanswered (never failed) and is an anomaly, once. The app talks to the
Click simulator (mounted in providers-svc) through a loopback proxy that loses answers on demand."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from billing_runtime.bus import MemoryBus
from billing_runtime.testing import free_port
from providers_svc.app import create_app
from providers_svc.db.click_simulator import ClickSimulatorReversalRow
from providers_svc.db.models import AnomalyRow, outbox
from providers_svc.domain.refunds import RefundStatus
from providers_svc.keys import refunds_key
from providers_svc.settings import Settings
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import TENANT, refund_created
from .test_regional_refunds import paid_with_simulator

pytestmark = pytest.mark.postgres

Client = TestClient[web.Request, web.Application]
Rows = Callable[[], Awaitable[list[dict[str, Any]]]]


@dataclass
class Proxy:
    """Between the app and its own simulators: ``lose`` loses the answer of a reversal Click made
    (forwarded, then a 502), ``drop`` loses the request before it reaches Click (a 502 only)."""

    target: str = ""
    lose: bool = False
    drop: bool = False
    reversals: list[int] = field(default_factory=list)

    async def forward(self, request: web.Request) -> web.Response:
        is_reversal = request.method == "DELETE" and "/payment/reversal/" in request.path
        if is_reversal and self.drop:
            return web.Response(status=502)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        sent = await request.read()
        async with (
            aiohttp.ClientSession() as http,
            http.request(request.method, self.target + request.path_qs, headers=headers, data=sent) as answer,
        ):
            body, status, kind = await answer.read(), answer.status, answer.headers.get("Content-Type")
        if is_reversal:
            self.reversals.append(status)
            if self.lose:
                return web.Response(status=502)
        return web.Response(body=body, status=status, headers={"Content-Type": kind or "application/json"})


@pytest.fixture
async def proxied(
    aiohttp_client: Any, aiohttp_server: Callable[..., Awaitable[TestServer]], engine: AsyncEngine, bus: MemoryBus,
    settings: Settings,
) -> tuple[Client, Proxy]:  # fmt: skip
    proxy = Proxy()
    front = web.Application()
    front.router.add_route("*", "/{tail:.*}", proxy.forward)
    server = await aiohttp_server(front)
    app_settings = settings.model_copy(
        update={"enabled_providers": ["sandbox", "click"], "public_gateway_url": str(server.make_url("")).rstrip("/")}
    )
    port = free_port()
    client: Client = await aiohttp_client(
        create_app(app_settings, engine=engine, bus=bus, roles=("api",)), server_kwargs={"port": port}
    )
    proxy.target = f"http://127.0.0.1:{port}"
    return client, proxy


async def outbox_events(engine: AsyncEngine, routing_key: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(outbox.c.body).where(outbox.c.routing_key == routing_key).order_by(outbox.c.id)
        )
        return [json.loads(body) for body in rows.scalars()]


REFUND_UPDATED = "providers.provider.refund.updated.v1"
ANOMALY_RECORDED = "providers.provider.anomaly.recorded.v1"


class TestClickLostAnswers:
    async def test_a_reversal_whose_answer_was_lost_is_recorded_succeeded_on_the_retry(
        self, proxied: tuple[Client, Proxy], internal_headers: Any, engine: AsyncEngine, refunds_of: Rows
    ) -> None:
        client, proxy = proxied
        payment = await paid_with_simulator(client, internal_headers(TENANT), "click", 250_000)
        event = refund_created(payment["payment_id"], provider="click", amount=250_000, currency="UZS")
        refunds = client.app[refunds_key]

        proxy.lose = True
        assert await refunds.accept(event) == "requested"  # Click reversed it; we never heard
        assert proxy.reversals == [200]
        proxy.lose = False

        # The retrier's attempt: Click's status says reversed, so nothing is reversed again.
        after = await refunds.send(event.data.refund.id)
        assert after is not None and after.status is RefundStatus.SUCCEEDED
        assert proxy.reversals == [200]
        async with engine.connect() as conn:
            reversals = (await conn.execute(select(ClickSimulatorReversalRow.__table__))).mappings().all()
        assert [(r["outcome"]) for r in reversals] == ["reversed"]
        [published] = await outbox_events(engine, REFUND_UPDATED)
        assert (published["data"]["status"], published["data"]["provider_refund_id"]) == (
            "succeeded",
            str(reversals[0]["click_paydoc_id"]),
        )
        assert await outbox_events(engine, ANOMALY_RECORDED) == []
        [row] = await refunds_of()
        assert (row["status"], row["attempts"]) == ("succeeded", 2)

    async def test_a_refused_repeat_is_never_a_failure_and_is_one_anomaly(
        self, proxied: tuple[Client, Proxy], internal_headers: Any, engine: AsyncEngine, refunds_of: Rows
    ) -> None:
        client, proxy = proxied
        payment = await paid_with_simulator(client, internal_headers(TENANT), "click", 250_000)
        # The card's bank refuses reversals (the simulator's sandbox:fail), and the first attempt's
        # answer is lost: on the retry Click's refusal cannot tell what the first attempt did.
        event = refund_created(
            payment["payment_id"], provider="click", amount=250_000, currency="UZS", reason="sandbox:fail"
        )
        refunds = client.app[refunds_key]
        proxy.drop = True
        assert await refunds.accept(event) == "requested"
        proxy.drop = False

        for _ in range(2):
            after = await refunds.send(event.data.refund.id)
            assert after is not None and after.status is RefundStatus.REQUESTED
        assert proxy.reversals == [406, 406]
        [row] = await refunds_of()
        assert (row["status"], row["published_status"], row["attempts"]) == ("requested", None, 3)
        assert await outbox_events(engine, REFUND_UPDATED) == []
        [anomaly] = await outbox_events(engine, ANOMALY_RECORDED)
        data = anomaly["data"]
        assert (data["kind"], data["outcome"], data["refund_id"], data["payment_id"]) == (
            "unexpected_outcome",
            "refund",
            event.data.refund.id,
            payment["payment_id"],
        )
        async with engine.connect() as conn:
            rows = (await conn.execute(select(AnomalyRow.id, AnomalyRow.kind))).all()
        assert [(r.id, r.kind) for r in rows] == [(data["anomaly_id"], "unexpected_outcome")]
