"""Trace context across hops: an HTTP request's ``traceparent`` is continued by the handler, kept with
the outbox rows the request writes, published as the message's header, and continued by the consumer,
on the in-process bus and on RabbitMQ; a real tracer records the same chain as parent and child spans."""

import asyncio
import json

import aio_pika
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from billing_contracts.envelope import utcnow
from billing_contracts.events import PaymentData, PaymentSnapshot
from billing_contracts.events.payments import PaymentCreatedV1
from billing_runtime import tracing
from billing_runtime.app import service_app
from billing_runtime.bus import MemoryBus, Message
from billing_runtime.bus.rabbit import RabbitBus
from billing_runtime.consuming import parse_or_drop
from billing_runtime.db import make_sessionmaker
from billing_runtime.log_context import log_context
from billing_runtime.metrics import Metrics
from billing_runtime.outbox import OutboxRelay
from billing_runtime.plumbing import observed
from billing_runtime.uow import UnitOfWork
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"


def _payment_created(payment_id: str = "pay_1") -> PaymentCreatedV1:
    now = utcnow()
    snap = PaymentSnapshot(
        id=payment_id,
        status="CREATED",
        amount=100,
        currency="USD",
        order_id="o-1",
        created_at=now,
        updated_at=now,
        expires_at=now,
    )
    return PaymentCreatedV1(tenant_id="ten_t", data=PaymentData(payment=snap))


def _traceparent_parts(value: str | None) -> tuple[str, str, str, str]:
    assert value is not None
    version, trace_id, span_id, flags = value.split("-")
    return version, trace_id, span_id, flags


class TestWithoutATracer:
    def test_a_span_continues_the_callers_trace_with_a_span_of_its_own(self) -> None:
        with tracing.span("work", parent=tracing.extract({"traceparent": TRACEPARENT})):
            ids = tracing.current_ids()
            outgoing: dict[str, str] = {}
            tracing.inject(outgoing)
        assert ids is not None
        assert ids[0] == TRACE_ID
        assert ids[1] != CALLER_SPAN
        _, trace_id, span_id, flags = _traceparent_parts(outgoing.get("traceparent"))
        assert (trace_id, span_id, flags) == (TRACE_ID, ids[1], "01")
        assert tracing.current_ids() is None  # nothing leaks past the span

    @pytest.mark.parametrize("carrier", [{}, {"traceparent": "garbage"}, {"traceparent": "00-" + "0" * 32 + "-1-01"}])
    def test_without_a_valid_traceparent_a_new_trace_starts(self, carrier: dict[str, str]) -> None:
        seen = set()
        for _ in range(2):
            with tracing.span("work", parent=tracing.extract(carrier)):
                ids = tracing.current_ids()
                assert ids is not None
                seen.add(ids[0])
        assert len(seen) == 2
        assert TRACE_ID not in seen

    def test_nested_spans_share_the_trace(self) -> None:
        with tracing.span("outer"):
            outer = tracing.current_ids()
            with tracing.span("inner"):
                inner = tracing.current_ids()
        assert outer is not None and inner is not None
        assert outer[0] == inner[0]
        assert outer[1] != inner[1]

    def test_outside_any_span_nothing_is_injected(self) -> None:
        headers: dict[str, str] = {}
        tracing.inject(headers)
        assert headers == {}
        assert tracing.current_traceparent() is None

    def test_exporting_needs_an_endpoint(self) -> None:
        assert tracing.configure_tracing("test", {}) is False
        assert tracing.configure_tracing("test", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) is False


def _app_capturing(seen: list[tuple[tuple[str, str] | None, dict[str, str], str | None]]) -> web.Application:
    app = service_app(Metrics("test"), checks={}, internal_secret=None, internal_audience="test")

    async def handler(request: web.Request) -> web.Response:
        seen.append((tracing.current_ids(), dict(log_context()), tracing.current_traceparent()))
        return web.json_response({})

    app.router.add_get("/things/{payment_id}", handler)
    return app


class TestHttp:
    async def test_the_handler_continues_the_requests_trace(self) -> None:
        seen: list[tuple[tuple[str, str] | None, dict[str, str], str | None]] = []
        async with TestClient(TestServer(_app_capturing(seen))) as client:
            r = await client.get("/things/pay_7", headers={"traceparent": TRACEPARENT, "X-Request-Id": "req_42"})
            assert r.status == 200
            r = await client.get("/things/pay_8")
            assert r.status == 200
        (first_ids, first_context, _), (second_ids, _, _) = seen
        assert first_ids is not None and first_ids[0] == TRACE_ID
        assert first_context == {"request_id": "req_42", "payment_id": "pay_7"}
        assert second_ids is not None and second_ids[0] != TRACE_ID  # no traceparent: a trace of its own


class TestOutboxAndBus:
    async def test_the_trace_survives_the_outbox_and_reaches_the_consumer(self, engine, schema) -> None:
        metrics = Metrics("test")
        event = _payment_created("pay_ob")
        with tracing.span("request", parent=tracing.extract({"traceparent": TRACEPARENT})):
            writer = tracing.current_ids()
            async with UnitOfWork(make_sessionmaker(engine), schema.outbox) as uow:
                uow.emit(event)
                await uow.commit()
        assert writer is not None
        async with engine.connect() as conn:
            stored = (await conn.execute(select(schema.outbox.c.traceparent))).scalar_one()
        assert _traceparent_parts(stored)[1:3] == (TRACE_ID, writer[1])

        got: list[tuple[tuple[str, str] | None, dict[str, str]]] = []

        async def handler(message: Message) -> None:
            assert parse_or_drop(message, metrics) is not None
            got.append((tracing.current_ids(), dict(log_context())))

        bus = MemoryBus()
        await bus.subscribe("test.q", ["payments.#"], observed("test.q", handler))
        # The relay runs outside any request: the trace comes from the row, not from the relay's context.
        assert await OutboxRelay(engine, schema.outbox, bus).run_once() == 1
        [(ids, context)] = got
        assert ids is not None and ids[0] == TRACE_ID and ids[1] != writer[1]
        assert context == {"event_id": event.event_id, "queue": "test.q", "tenant_id": "ten_t", "payment_id": "pay_ob"}
        assert log_context() == {}
        lag_count = metrics.registry.get_sample_value("bus_event_lag_seconds_count", {"queue": "test.q"})
        assert lag_count == 1

    @pytest.mark.rabbitmq
    async def test_rabbitmq_carries_the_traceparent_header(self, rabbit_url, queue_name) -> None:
        publisher, consumer = RabbitBus(rabbit_url), RabbitBus(rabbit_url)
        await publisher.start()
        await consumer.start()
        got: list[tuple[str, str] | None] = []
        try:

            async def handler(message: Message) -> None:
                got.append(tracing.current_ids())

            await consumer.subscribe(queue_name, [f"{queue_name}.#"], observed(queue_name, handler))
            await publisher.publish(
                Message(f"{queue_name}.x.v1", b"{}", "evt_traced", headers={"traceparent": TRACEPARENT})
            )
            for _ in range(200):
                if got:
                    break
                await asyncio.sleep(0.05)
            assert got and got[0] is not None and got[0][0] == TRACE_ID
            assert await consumer.queue_depth(queue_name) == 0
        finally:
            await consumer.close()
            await publisher.close()
            connection = await aio_pika.connect(rabbit_url)
            async with connection:
                channel = await connection.channel()
                for name in (queue_name, f"{queue_name}.dlq"):
                    await channel.queue_delete(name)


class TestWithARealTracer:
    @pytest.fixture
    def exporter(self):  # type: ignore[no-untyped-def]
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracing.use_tracer_provider(provider)
        yield exporter
        tracing.use_tracer_provider(None)

    async def test_server_and_consumer_spans_form_one_trace(self, exporter) -> None:
        seen: list[tuple[tuple[str, str] | None, dict[str, str], str | None]] = []
        async with TestClient(TestServer(_app_capturing(seen))) as client:
            r = await client.get("/things/pay_1", headers={"traceparent": TRACEPARENT})
            assert r.status == 200
        [(_, _, handler_traceparent)] = seen

        async def handler(message: Message) -> None:
            return None

        consumer = observed("test.q", handler)
        await consumer(
            Message("payments.payment.created.v1", b"{}", "evt_1", {"traceparent": handler_traceparent or ""})
        )
        server, consume = exporter.get_finished_spans()
        assert server.name == "GET /things/{payment_id}"
        assert server.kind is SpanKind.SERVER
        assert f"{server.context.trace_id:032x}" == TRACE_ID
        assert f"{server.parent.span_id:016x}" == CALLER_SPAN
        assert consume.name == "consume test.q"
        assert consume.kind is SpanKind.CONSUMER
        assert consume.context.trace_id == server.context.trace_id
        assert consume.parent.span_id == server.context.span_id


def test_json_lines_carry_the_trace_id() -> None:
    import logging

    from billing_runtime.log_format import JsonFormatter

    with tracing.span("x", parent=tracing.extract({"traceparent": TRACEPARENT})):
        line = JsonFormatter().format(logging.LogRecord("t", logging.INFO, __file__, 1, "m", None, None))
    assert json.loads(line)["trace_id"] == TRACE_ID
