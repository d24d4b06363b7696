"""Refund requests on the sandbox: the consumer's flow (store, commit, ask, record and publish in one
transaction), the test-mode outcome rule, redeliveries, the janitor's sync, and the worker's wiring on
the in-process bus."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from billing_runtime.bus import MemoryBus, Message
from providers_svc.db.refunds import ProviderRefundRow, RefundVerdict
from providers_svc.domain.refunds import RefundStatus
from providers_svc.keys import refunds_key
from providers_svc.services.refunds import RefundRequestError
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import TENANT, as_message, mark_paid, refund_created

pytestmark = pytest.mark.postgres

Rows = Callable[[], Awaitable[list[dict[str, Any]]]]


async def paid_sandbox_payment(client: Any, start_payment: Any, engine: AsyncEngine) -> dict[str, Any]:
    started: dict[str, Any] = await start_payment(client)
    await mark_paid(engine, started["provider_transaction_id"])
    return started


class TestSandboxRefunds:
    async def test_a_refund_succeeds_and_is_published_once(
        self, make_client: Any, start_payment: Any, engine: AsyncEngine, refunds_of: Rows, refund_events: Rows
    ) -> None:
        client = await make_client()
        started = await paid_sandbox_payment(client, start_payment, engine)
        event = refund_created(started["payment_id"], provider="sandbox", amount=1500, currency="USD")
        assert await client.app[refunds_key].accept(event) == "succeeded"

        [row] = await refunds_of()
        assert (row["id"], row["status"], row["published_status"], row["amount"], row["tenant_id"]) == (
            event.data.refund.id,
            "succeeded",
            "succeeded",
            1500,
            TENANT,
        )
        assert row["provider_transaction_id"] == started["provider_transaction_id"]
        [published] = await refund_events()
        data = published["data"]
        assert published["tenant_id"] == TENANT
        assert (data["refund_id"], data["status"], data["observed_via"], data["amount"]) == (
            event.data.refund.id,
            "succeeded",
            "api",
            1500,
        )
        assert data["provider_refund_id"] == f"sbref_{event.data.refund.id}"

        # A redelivery of the request republishes nothing and asks nobody.
        assert await client.app[refunds_key].accept(event) == "duplicate"
        assert len(await refund_events()) == 1

    async def test_a_refund_the_provider_started_is_announced_but_never_asked_for(
        self, make_client: Any, start_payment: Any, engine: AsyncEngine, refunds_of: Rows, refund_events: Rows
    ) -> None:
        # payments-svc publishes refund.created for a refund the provider made itself (here as Stripe's
        # dashboard or Payme's cancel would be), carrying the provider's id: it was made already.
        client = await make_client()
        started = await paid_sandbox_payment(client, start_payment, engine)
        event = refund_created(
            started["payment_id"], provider="sandbox", amount=1500, currency="USD", provider_refund_id="sbref_theirs"
        )
        assert await client.app[refunds_key].accept(event) == "provider_started"
        assert await refunds_of() == []
        assert await refund_events() == []

    async def test_reason_sandbox_fail_fails_the_refund(
        self, make_client: Any, start_payment: Any, engine: AsyncEngine, refund_events: Rows
    ) -> None:
        client = await make_client()
        started = await paid_sandbox_payment(client, start_payment, engine)
        event = refund_created(
            started["payment_id"], provider="sandbox", amount=5000, currency="USD", reason="sandbox:fail"
        )
        assert await client.app[refunds_key].accept(event) == "failed"
        [published] = await refund_events()
        assert published["data"]["status"] == "failed"
        assert published["data"]["failure_code"] == "sandbox_refund_declined"

    async def test_reason_sandbox_pending_is_pending_until_the_janitor_asks(
        self,
        make_client: Any,
        start_payment: Any,
        engine: AsyncEngine,
        refund_events: Rows,
        internal_headers: Callable[..., dict[str, str]],
    ) -> None:
        client = await make_client()
        started = await paid_sandbox_payment(client, start_payment, engine)
        event = refund_created(
            started["payment_id"], provider="sandbox", amount=5000, currency="USD", reason="sandbox:pending"
        )
        refund_id = event.data.refund.id
        assert await client.app[refunds_key].accept(event) == "pending"
        assert [e["data"]["status"] for e in await refund_events()] == ["pending"]

        janitor = internal_headers(None, issuer="reconciliation")
        response = await client.post(f"/internal/refunds/{refund_id}/sync", headers=janitor)
        assert response.status == 200, await response.text()
        assert await response.json() == {"refund_id": refund_id, "status": "succeeded", "published": True}
        events = await refund_events()
        assert [(e["data"]["status"], e["data"]["observed_via"]) for e in events] == [
            ("pending", "api"),
            ("succeeded", "status_check"),
        ]
        again = await client.post(f"/internal/refunds/{refund_id}/sync", headers=janitor)
        assert await again.json() == {"refund_id": refund_id, "status": "succeeded", "published": False}
        assert len(await refund_events()) == 2

    async def test_sync_answers_404_and_only_to_reconciliation(
        self, make_client: Any, internal_headers: Callable[..., dict[str, str]]
    ) -> None:
        client = await make_client()
        missing = await client.post(
            "/internal/refunds/rfnd_nope/sync", headers=internal_headers(None, issuer="reconciliation")
        )
        assert missing.status == 404
        assert (await missing.json())["code"] == "refund_not_found"
        forbidden = await client.post("/internal/refunds/rfnd_nope/sync", headers=internal_headers(None))
        assert forbidden.status == 403
        stranger = await client.post(
            "/internal/refunds/rfnd_nope/sync", headers=internal_headers(None, issuer="webhooks")
        )
        assert stranger.status == 401

    async def test_an_unpaid_transaction_fails_the_refund_without_asking(
        self, make_client: Any, start_payment: Any, refund_events: Rows
    ) -> None:
        client = await make_client()
        started = await start_payment(client)  # still pending: the bank took nothing
        event = refund_created(started["payment_id"], provider="sandbox", amount=5000, currency="USD")
        assert await client.app[refunds_key].accept(event) == "failed"
        [published] = await refund_events()
        assert published["data"]["failure_code"] == "not_paid"

    async def test_a_request_for_no_transaction_of_the_tenant_is_poison(
        self, make_client: Any, start_payment: Any, engine: AsyncEngine, refunds_of: Rows
    ) -> None:
        client = await make_client()
        started = await paid_sandbox_payment(client, start_payment, engine)
        foreign = refund_created(
            started["payment_id"], provider="sandbox", amount=5000, currency="USD", tenant_id="ten_bbbbbbbbbbbbbbbb"
        )
        with pytest.raises(RefundRequestError):
            await client.app[refunds_key].accept(foreign)
        assert await refunds_of() == []


class TestWorkerWiring:
    async def test_the_worker_consumes_refund_requests_and_relays_the_verdict(
        self, make_client: Any, start_payment: Any, engine: AsyncEngine, bus: MemoryBus, eventually: Any
    ) -> None:
        seen: list[Message] = []

        async def capture(message: Message) -> None:
            seen.append(message)

        await bus.subscribe("test.refund-verdicts", ["providers.provider.refund.updated.v1"], capture)
        client = await make_client(roles=("api", "worker"))
        started = await paid_sandbox_payment(client, start_payment, engine)
        event = refund_created(started["payment_id"], provider="sandbox", amount=5000, currency="USD")
        await bus.publish(as_message(event))
        await bus.publish(as_message(event))  # at-least-once: a redelivery

        async def delivered() -> bool:
            return bool(seen)

        await eventually(delivered)
        await asyncio.sleep(0.3)
        assert len(seen) == 1
        assert b'"refund_id":"' + event.data.refund.id.encode() in seen[0].body
        ready = await client.get("/readyz")
        assert ready.status == 200


class TestRetrier:
    async def test_a_refund_left_requested_is_sent_by_the_retrier_once_due(
        self, make_client: Any, start_payment: Any, engine: AsyncEngine, refunds_of: Rows, refund_events: Rows
    ) -> None:
        client = await make_client()
        started = await paid_sandbox_payment(client, start_payment, engine)
        # A replica where the sandbox is not enabled cannot reach the payment's provider.
        without = await make_client(enabled_providers=["payme"])
        event = refund_created(started["payment_id"], provider="sandbox", amount=5000, currency="USD")
        assert await without.app[refunds_key].accept(event) == "requested"
        assert await client.app[refunds_key].retry_due() == 0  # not due yet: 30 s after the first try
        assert await refund_events() == []

        async with engine.begin() as conn:
            await conn.execute(
                update(ProviderRefundRow).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert await client.app[refunds_key].retry_due() == 1
        [row] = await refunds_of()
        assert (row["status"], row["attempts"]) == ("succeeded", 2)
        assert [e["data"]["status"] for e in await refund_events()] == ["succeeded"]


class TestVerdictWithoutTheProvidersId:
    async def test_a_failure_without_an_id_keeps_the_id_a_pending_verdict_gave(
        self, make_client: Any, start_payment: Any, engine: AsyncEngine, refunds_of: Rows, refund_events: Rows
    ) -> None:
        client = await make_client()
        started = await paid_sandbox_payment(client, start_payment, engine)
        event = refund_created(
            started["payment_id"], provider="sandbox", amount=5000, currency="USD", reason="sandbox:pending"
        )
        refunds = client.app[refunds_key]
        assert await refunds.accept(event) == "pending"
        known = f"sbref_{event.data.refund.id}"
        assert (await refunds_of())[0]["provider_refund_id"] == known

        # A provider's refusal that names no refund of its own (as a rejected call does).
        failed = RefundVerdict(
            status=RefundStatus.FAILED,
            provider_refund_id=None,
            failure_code="sandbox_refund_declined",
            failure_message="declined",
            provider_updated_at=datetime.now(UTC),
        )
        after = await refunds.record(event.data.refund.id, failed, observed_via="status_check")
        assert after is not None and after.status is RefundStatus.FAILED
        [row] = await refunds_of()
        assert (row["status"], row["provider_refund_id"]) == ("failed", known)
        assert [(e["data"]["status"], e["data"]["provider_refund_id"]) for e in await refund_events()] == [
            ("pending", known),
            ("failed", known),
        ]
