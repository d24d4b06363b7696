"""The sandbox bank's callback sender against a real loopback receiver (aiohttp_server)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from billing_contracts.envelope import utcnow
from providers_svc.adapters.sandbox import SIGNATURE_HEADER, verify
from providers_svc.keys import callback_sender_key, uow_factory_key

SANDBOX_SECRET = "test-sandbox-secret-0123456789abcdef"


@dataclass
class Receiver:
    """Answers with the scripted statuses in order (then 200) and keeps every request it got."""

    statuses: list[int] = field(default_factory=list)
    requests: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((await request.read(), dict(request.headers)))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response({"received": status == 200}, status=status)


@pytest.fixture
async def receiver(aiohttp_server: Any) -> Receiver:
    rx = Receiver()
    app = web.Application()
    app.router.add_post("/billing/sandbox", rx.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    rx.url = str(server.make_url("")).rstrip("/")
    return rx


@pytest.fixture
def choose(start_payment: Callable[..., Awaitable[dict[str, Any]]]) -> Callable[..., Awaitable[str]]:
    """Start a payment and press one of the payer page buttons; return the transaction id."""

    async def press(client: Any, outcome: str = "succeed") -> str:
        payment = await start_payment(client)
        ptx: str = payment["provider_transaction_id"]
        response = await client.post(f"/sandbox/pay/{ptx}", data={"outcome": outcome}, allow_redirects=False)
        assert response.status == 303
        return ptx

    return press


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class TestCallbackSender:
    async def test_delivers_a_signed_callback(
        self, make_client: Any, receiver: Receiver, choose: Any, db_read: Any
    ) -> None:
        client = await make_client(public_gateway_url=receiver.url)
        ptx = await choose(client)
        sender = client.app[callback_sender_key]
        assert await sender.run_once() == 1
        [(body, headers)] = receiver.requests
        verify(SANDBOX_SECRET, headers[SIGNATURE_HEADER], body)
        assert headers["Content-Type"] == "application/json"
        [charge] = await db_read("charges")
        assert body.decode() == charge["callback_body"]
        assert json.loads(body)["transaction"] == ptx
        assert (charge["attempts"], charge["last_status"]) == (1, 200)
        assert charge["delivered_at"] is not None
        assert charge["claim_token"] is None
        # Delivered means done: nothing more to send.
        assert await sender.run_once() == 0
        assert len(receiver.requests) == 1

    async def test_retries_after_a_500(self, make_client: Any, receiver: Receiver, choose: Any, db_read: Any) -> None:
        receiver.statuses = [500]
        # A backoff of a second: the check that it is not due yet must not outlast it on a loaded machine.
        client = await make_client(public_gateway_url=receiver.url, sandbox_callback_retry_schedule=[1.0])
        await choose(client)
        sender = client.app[callback_sender_key]
        assert await sender.run_once() == 1
        [charge] = await db_read("charges")
        assert (charge["attempts"], charge["last_status"], charge["last_error"]) == (1, 500, "HTTP 500")
        assert charge["delivered_at"] is None
        # Not due again before the backoff has passed.
        assert await sender.run_once() == 0
        await asyncio.sleep(1.05)
        assert await sender.run_once() == 1
        [charge] = await db_read("charges")
        assert (charge["attempts"], charge["last_status"], charge["last_error"]) == (2, 200, None)
        assert charge["delivered_at"] is not None
        first, second = receiver.requests
        assert first[0] == second[0]  # same body, same event id: the receiver dedupes on it
        verify(SANDBOX_SECRET, second[1][SIGNATURE_HEADER], second[0])
        metrics = await (await client.get("/metrics")).text()
        assert 'sandbox_bank_callback_attempts_total{result="failed"} 1.0' in metrics
        assert 'sandbox_bank_callback_attempts_total{result="delivered"} 1.0' in metrics

    async def test_network_error_is_retried(self, make_client: Any, choose: Any, db_read: Any) -> None:
        client = await make_client(public_gateway_url=f"http://127.0.0.1:{free_port()}")
        await choose(client)
        assert await client.app[callback_sender_key].run_once() == 1
        [charge] = await db_read("charges")
        assert charge["delivered_at"] is None
        assert charge["last_status"] is None
        assert "ClientConnectorError" in charge["last_error"]
        assert charge["due_at"] is not None
        assert charge["gave_up_at"] is None

    async def test_gives_up_after_max_attempts(
        self, make_client: Any, receiver: Receiver, choose: Any, db_read: Any
    ) -> None:
        receiver.statuses = [503] * 10
        client = await make_client(
            public_gateway_url=receiver.url, sandbox_callback_retry_schedule=[0], sandbox_callback_max_attempts=3
        )
        await choose(client)
        sender = client.app[callback_sender_key]
        for _ in range(5):
            await sender.run_once()
        assert len(receiver.requests) == 3
        [charge] = await db_read("charges")
        assert charge["gave_up_at"] is not None
        assert charge["delivered_at"] is None

    async def test_pending_choice_is_sent_only_after_the_delay(
        self, make_client: Any, receiver: Receiver, choose: Any
    ) -> None:
        client = await make_client(public_gateway_url=receiver.url, sandbox_pending_delay=1.0)
        await choose(client, "pending")
        sender = client.app[callback_sender_key]
        assert await sender.run_once() == 0
        await asyncio.sleep(1.05)
        assert await sender.run_once() == 1
        assert json.loads(receiver.requests[0][0])["type"] == "payment.succeeded"

    async def test_a_cancelled_transaction_owes_no_callback(
        self, make_client: Any, receiver: Receiver, start_payment: Any, internal_headers: Any
    ) -> None:
        client = await make_client(public_gateway_url=receiver.url)
        payment = await start_payment(client)
        await client.post(f"/internal/payments/{payment['payment_id']}/cancel", headers=internal_headers())
        assert await client.app[callback_sender_key].run_once() == 0
        assert receiver.requests == []

    async def test_a_batch_records_every_delivery_and_every_failure_by_its_own_lease(
        self, make_client: Any, receiver: Receiver, choose: Any, db_read: Any
    ) -> None:
        # One pass sends four callbacks: three are taken (with two different 2xx statuses), one is
        # refused. The deliveries are recorded together per status, the failure on its own.
        receiver.statuses = [200, 202, 500, 200]
        client = await make_client(public_gateway_url=receiver.url, sandbox_callback_retry_schedule=[30])
        for _ in range(4):
            await choose(client)
        assert await client.app[callback_sender_key].run_once() == 4
        charges = await db_read("charges")
        by_status = sorted((c["last_status"], c["delivered_at"] is not None, c["last_error"]) for c in charges)
        assert by_status == [(200, True, None), (200, True, None), (202, True, None), (500, False, "HTTP 500")]
        assert all(c["claim_token"] is None and c["claimed_until"] is None for c in charges)
        metrics = await (await client.get("/metrics")).text()
        assert 'sandbox_bank_callback_attempts_total{result="delivered"} 3.0' in metrics

    async def test_a_sender_whose_lease_ran_out_records_nothing(
        self, make_client: Any, receiver: Receiver, choose: Any, db_read: Any
    ) -> None:
        client = await make_client(public_gateway_url=receiver.url)
        ptx = await choose(client)
        factory = client.app[uow_factory_key]
        async with factory() as uow:
            token, [due] = await uow.sandbox_charges.claim_due(utcnow(), limit=10, lease=timedelta(seconds=30))
        assert due.transaction_id == ptx
        async with factory() as uow:
            # Another sender took the callback over (its own token) meanwhile.
            await uow.sandbox_charges.mark_delivered([ptx], "not-" + token, 200, utcnow())
        [charge] = await db_read("charges")
        assert (charge["delivered_at"], charge["claim_token"]) == (None, token)
        async with factory() as uow:
            await uow.sandbox_charges.mark_delivered([ptx], token, 200, utcnow())
        [charge] = await db_read("charges")
        assert charge["delivered_at"] is not None and charge["claim_token"] is None

    async def test_concurrent_senders_deliver_each_callback_once(
        self, make_client: Any, receiver: Receiver, choose: Any
    ) -> None:
        first = await make_client(public_gateway_url=receiver.url)
        second = await make_client(public_gateway_url=receiver.url)
        ptxs = {await choose(first) for _ in range(6)}
        await asyncio.gather(first.app[callback_sender_key].run_once(), second.app[callback_sender_key].run_once())
        delivered = [json.loads(body)["transaction"] for body, _ in receiver.requests]
        assert sorted(delivered) == sorted(ptxs)

    async def test_worker_process_sends_what_another_process_recorded(
        self, make_client: Any, receiver: Receiver, choose: Any, db_read: Any, eventually: Any
    ) -> None:
        # The api process records the choice; a separate worker (as after a restart) finds and sends it.
        api = await make_client(roles=("api",), public_gateway_url=receiver.url)
        await choose(api)
        await make_client(roles=("worker",), public_gateway_url=receiver.url)

        async def delivered() -> bool:
            return all(row["delivered_at"] is not None for row in await db_read("charges"))

        await eventually(delivered)
        assert len(receiver.requests) == 1


class TestSenderWakeUps:
    """The sender has no short poll (issue 16: idle cost): a decision wakes it, also from another
    process (NOTIFY on the outbox channel), and it sleeps exactly until a delayed callback falls due."""

    async def test_a_decision_in_the_api_process_wakes_the_worker_at_once(
        self, make_client: Any, receiver: Receiver, choose: Any, db_read: Any, eventually: Any
    ) -> None:
        worker = await make_client(
            roles=("worker",), public_gateway_url=receiver.url, sandbox_callback_poll_interval=60
        )
        api = await make_client(roles=("api",), public_gateway_url=receiver.url, sandbox_callback_poll_interval=60)
        await asyncio.sleep(0.3)  # the worker's first pass is over: it sleeps for a minute now
        await choose(api)

        async def delivered() -> bool:
            # The receiver sees the request before the sender records its answer: wait for both.
            [charge] = await db_read("charges")
            return len(receiver.requests) == 1 and charge["delivered_at"] is not None

        await eventually(delivered, within=5)  # well before the 60 s fallback
        assert len(receiver.requests) == 1
        assert worker.app[callback_sender_key] is not api.app[callback_sender_key]

    async def test_a_delayed_callback_is_sent_when_due_without_a_wake_up(
        self, make_client: Any, receiver: Receiver, choose: Any, eventually: Any
    ) -> None:
        client = await make_client(
            roles=("api", "worker"),
            public_gateway_url=receiver.url,
            sandbox_pending_delay=1.5,
            sandbox_callback_poll_interval=60,
        )
        await choose(client, "pending")
        await asyncio.sleep(0.2)
        assert receiver.requests == []  # not due yet (1.3 s of margin on a loaded machine)

        async def sent() -> bool:
            return len(receiver.requests) == 1

        await eventually(sent, within=5)  # the sender slept until it fell due, not for 60 s
        assert json.loads(receiver.requests[0][0])["type"] == "payment.succeeded"

    async def test_next_due_is_the_earliest_owed_callback_or_lease_end(
        self, make_client: Any, receiver: Receiver, choose: Any
    ) -> None:
        client = await make_client(public_gateway_url=receiver.url, sandbox_pending_delay=30)
        factory = client.app[uow_factory_key]
        async with factory() as uow:
            assert await uow.sandbox_charges.next_due() is None  # nothing owed
        await choose(client, "pending")
        async with factory() as uow:
            upcoming = await uow.sandbox_charges.next_due()
        assert upcoming is not None
        assert 25 < (upcoming - utcnow()).total_seconds() <= 30

    async def test_an_outcome_recorded_by_the_api_process_is_relayed_at_once(
        self, make_client: Any, start_payment: Any, sandbox_callback: Any, db_read: Any, eventually: Any
    ) -> None:
        # The api role writes the outbox row of a provider outcome and NOTIFYs the workers: the
        # worker's relay publishes it at once, not after its poll interval (a minute here).
        await make_client(roles=("worker",), outbox_poll_interval=60)
        api = await make_client(roles=("api",), outbox_poll_interval=60)
        await asyncio.sleep(0.3)  # the worker's relay has made its first pass and sleeps
        payment = await start_payment(api)
        callback = sandbox_callback(payment["provider_transaction_id"])
        response = await api.post("/billing/sandbox", data=callback.body, headers=callback.headers)
        assert response.status == 200

        async def relayed() -> bool:
            return await db_read("outbox") == []

        await eventually(relayed, within=5)
