"""Wake-ups over PostgreSQL NOTIFY/LISTEN on the real server: a listener hears other processes'
notifications and, when told, skips the ones its own process sent (which already woke it directly)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
from billing_runtime.outbox import Notifier, listen_for_notifications
from billing_runtime.testing import PG_DSN, require_port


@contextlib.asynccontextmanager
async def running(notifier: Notifier) -> AsyncIterator[Notifier]:
    task = asyncio.create_task(notifier.run())
    try:
        while notifier.server_pid is None:
            await asyncio.sleep(0.01)
        yield notifier
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
def channel() -> str:
    require_port("127.0.0.1", 5432, "PostgreSQL")
    return f"wake_{secrets.token_hex(4)}"


async def test_a_listener_skips_its_own_processes_notifications_but_hears_the_others(channel) -> None:
    heard = asyncio.Event()
    async with running(Notifier(PG_DSN, channel)) as ours, running(Notifier(PG_DSN, channel)) as theirs:
        close = await listen_for_notifications(PG_DSN, channel, heard.set, ignore=ours.sent)
        try:
            ours.request()
            await asyncio.sleep(0.3)  # delivered on loopback within milliseconds, had it not been skipped
            assert not heard.is_set()
            theirs.request()
            async with asyncio.timeout(5):
                await heard.wait()
        finally:
            await close()


async def test_without_a_filter_every_notification_wakes_the_listener(channel) -> None:
    heard = asyncio.Event()
    async with running(Notifier(PG_DSN, channel)) as ours:
        close = await listen_for_notifications(PG_DSN, channel, heard.set)
        try:
            ours.request()
            async with asyncio.timeout(5):
                await heard.wait()
        finally:
            await close()


class _UnansweredConnection:
    """An asyncpg connection whose server went away: the polite close fails."""

    def __init__(self) -> None:
        self.terminated = False

    async def close(self, timeout: float) -> None:
        raise ConnectionResetError("the server closed the connection")

    def terminate(self) -> None:
        self.terminated = True


async def test_a_connection_whose_close_fails_is_terminated_not_left_open() -> None:
    # Left open, the garbage collector would find it later and warn in whatever runs then.
    from billing_runtime.notifications import _close

    conn = _UnansweredConnection()
    await _close(conn)
    assert conn.terminated


async def test_a_listen_that_fails_after_connecting_leaves_no_connection_open() -> None:
    # The reconnect loop of a listener being closed is cancelled at any await, the LISTEN included: the
    # connection it had just opened must not outlive it. A LISTEN the server refuses (a NUL in the
    # channel's name) fails at the same point, deterministically.
    import gc
    import warnings

    from billing_runtime.notifications import NotificationListener

    require_port("127.0.0.1", 5432, "PostgreSQL")
    opened: list[object] = []
    listener = NotificationListener(PG_DSN, "bad\x00channel", lambda: None)
    real_connect = asyncpg.connect

    async def recording_connect(*args: object, **kwargs: object) -> object:
        conn = await real_connect(*args, **kwargs)
        opened.append(conn)
        return conn

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(asyncpg, "connect", recording_connect)
        with pytest.raises(asyncpg.PostgresError):
            await listener.connect()
    [conn] = opened
    assert conn.is_closed()  # type: ignore[attr-defined]
    assert not listener.connected
    opened.clear()
    del conn
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert not [w for w in caught if "unclosed connection" in str(w.message)]
