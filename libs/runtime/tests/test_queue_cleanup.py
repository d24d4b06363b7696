"""The tests' queue cleanup (``billing_runtime.testing_status.delete_queues``): it removes what a test
declared, and a broker that refuses or never answers neither fails the test nor holds the suite."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import aio_pika
import pytest
from billing_runtime.bus.letters import dlq_name
from billing_runtime.testing import free_port, require_rabbitmq
from billing_runtime.testing_status import delete_queues, put_dead_letter


async def _exists(url: str, name: str) -> bool:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        try:
            await channel.declare_queue(name, passive=True)
        except aio_pika.exceptions.ChannelClosed:
            return False
        return True


@pytest.mark.rabbitmq
async def test_the_queue_and_its_dead_letters_are_deleted(queue_name: str) -> None:
    url = require_rabbitmq()
    await put_dead_letter(url, queue_name)  # declares <queue>.dlq
    assert await _exists(url, dlq_name(queue_name))
    await delete_queues(url, queue_name)  # the queue itself was never declared: no error either
    assert not await _exists(url, dlq_name(queue_name))


async def test_a_refused_connection_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="billing_runtime.testing_status"):
        await delete_queues(f"amqp://guest:guest@127.0.0.1:{free_port()}/", "q")
    assert "queues q left after the test" in caplog.text


async def test_a_broker_that_never_answers_is_left_after_the_bound(caplog: pytest.LogCaptureFixture) -> None:
    # A listener that accepts the connection and says nothing (no AMQP greeting ever comes).
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="billing_runtime.testing_status"):
            await delete_queues(f"amqp://guest:guest@127.0.0.1:{port}/", "q", bound=0.3)
        assert time.monotonic() - started < 5
        assert "queues q left after the test" in caplog.text
    finally:
        server.close()
        await server.wait_closed()
