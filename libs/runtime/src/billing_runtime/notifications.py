"""Relay wake-ups over PostgreSQL NOTIFY/LISTEN, each on a dedicated asyncpg connection that is opened
again (with a bounded backoff) whenever it drops: a database restart or outage must not leave the
relays deaf, or every event waits for the next poll."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import asyncpg

log = logging.getLogger(__name__)


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class Notifier:
    """Sends ``NOTIFY <channel>`` on its own connection after commits, coalescing bursts: while one
    NOTIFY is in flight, and for ``min_interval`` after it, any number of further requests collapse
    into one more.

    The pause trades a few milliseconds of publish latency for batches: without it, under load every
    commit woke the relays for a pass of one or two rows (claim, publish, delete), and that per-pass
    work competed with the API for the same CPUs.

    A NOTIFY that fails (the connection dropped) is sent again on the next connection.
    """

    def __init__(
        self, url: str, channel: str, *, min_interval: float = 0.02, first_delay: float = 0.05, max_delay: float = 1.0
    ) -> None:
        self.url = _dsn(url)
        self.channel = channel
        self.min_interval = min_interval
        self.first_delay = first_delay
        self.max_delay = max_delay
        self._wanted = asyncio.Event()
        # The PostgreSQL backend that sends our NOTIFYs, once connected: a listener in the same process
        # can tell its own notifications (the process already woke itself) from other processes'.
        self.server_pid: int | None = None

    def request(self) -> None:
        self._wanted.set()

    def sent(self, pid: int) -> bool:
        """Whether a notification from backend ``pid`` is one of ours."""
        return pid == self.server_pid

    async def run(self) -> None:

        delay = self.first_delay
        while True:
            try:
                conn = await asyncpg.connect(self.url)
            except Exception as exc:
                log.warning("notifier cannot connect (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_delay)
                continue
            delay = self.first_delay
            self.server_pid = conn.get_server_pid()
            try:
                while True:
                    await self._wanted.wait()
                    self._wanted.clear()
                    try:
                        await conn.execute(f'NOTIFY "{self.channel}"')
                    except Exception:
                        self._wanted.set()
                        raise
                    await asyncio.sleep(self.min_interval)
            except Exception as exc:
                log.warning("notifier connection lost (%s); reconnecting", exc)
            finally:
                await _close(conn)


class NotificationListener:
    """LISTEN on ``channel``; ``callback`` on every notification not ``ignore``d (by sending pid), and
    once after each reconnection (a notification sent while it was away is lost)."""

    def __init__(
        self,
        url: str,
        channel: str,
        callback: Callable[[], None],
        *,
        ignore: Callable[[int], bool] | None = None,
        first_delay: float = 0.05,
        max_delay: float = 1.0,
        keepalive: float = 5.0,
    ) -> None:
        self.url = _dsn(url)
        self.channel = channel
        self.callback = callback
        self.ignore = ignore
        self.first_delay = first_delay
        self.max_delay = max_delay
        # How often an idle connection is probed: a dropped one is not always reported at once.
        self.keepalive = keepalive
        self.connections = 0  # opened so far (tests and logs)
        self._conn: Any = None
        self._lost = asyncio.Event()

    @property
    def connected(self) -> bool:
        """Whether notifications can arrive now (the connection is open and not known to be lost)."""
        return self._conn is not None and not self._lost.is_set() and not self._conn.is_closed()

    def _on_notify(self, _conn: object, pid: int, _channel: str, _payload: str) -> None:
        if self.ignore is None or not self.ignore(pid):
            self.callback()

    async def connect(self) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            self._lost.clear()
            conn.add_termination_listener(lambda _c: self._lost.set())
            await conn.add_listener(self.channel, self._on_notify)
        except BaseException:
            # The LISTEN failed, or the listener is being closed (its task cancelled) while it ran: the
            # connection is nobody's now, and left open the garbage collector would find it later and
            # warn in whatever runs then. Dropped, not closed politely: the server may be going away.
            conn.terminate()
            raise
        self._conn = conn
        self.connections += 1

    async def run(self) -> None:
        """Watch the connection (``connect`` first) and open it again whenever it drops."""
        while True:
            await self._watch()
            await _close(self._conn)
            self._conn = None
            delay = self.first_delay
            while self._conn is None:
                try:
                    await self.connect()
                except Exception as exc:
                    log.warning("LISTEN %s cannot reconnect (%s); retrying in %.2fs", self.channel, exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.max_delay)
            log.warning("LISTEN %s reconnected", self.channel)
            self.callback()

    async def _watch(self) -> None:
        while self._conn is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.keepalive):
                    await self._lost.wait()
            if self._lost.is_set() or self._conn is None or self._conn.is_closed():
                log.warning("LISTEN %s connection lost", self.channel)
                return
            try:
                await self._conn.fetchval("SELECT 1", timeout=self.keepalive)
            except Exception as exc:
                log.warning("LISTEN %s connection lost (%s)", self.channel, exc)
                return

    async def close(self) -> None:
        await _close(self._conn)
        self._conn = None

    @contextlib.asynccontextmanager
    async def running(self, task_name: str) -> AsyncIterator[None]:
        """Connected (or, with the database away, trying to) and kept connected while the block runs;
        closed after. A cache that trusts its copies only while ``connected`` is safe either way."""
        try:
            await self.connect()
        except Exception as exc:
            log.warning("LISTEN %s cannot connect yet (%s); retrying in the background", self.channel, exc)
        watcher = asyncio.create_task(self.run(), name=task_name)
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await self.close()


async def _close(conn: Any) -> None:
    if conn is None:
        return
    try:
        await conn.close(timeout=1)
    except Exception:
        # A server that went away may not answer the goodbye: drop the socket, or the connection is
        # left for the garbage collector to find open.
        conn.terminate()


async def listen_for_notifications(
    url: str, channel: str, callback: Callable[[], None], *, ignore: Callable[[int], bool] | None = None
) -> Callable[[], object]:
    """Subscribe to PostgreSQL NOTIFY on ``channel`` with a dedicated connection, kept open again after
    it drops; ``ignore`` drops notifications by the sending backend's pid (e.g. ``Notifier.sent``:
    this process's own).

    Connects once before returning when it can (a worker started during a database outage comes up and
    keeps trying in the background); returns an async closer. Polling still runs beside it, so a lost
    notification only delays an event.
    """
    listener = NotificationListener(url, channel, callback, ignore=ignore)
    try:
        await listener.connect()
    except Exception as exc:
        log.warning("LISTEN %s cannot connect yet (%s); retrying in the background", channel, exc)
    task = asyncio.create_task(listener.run(), name=f"listen:{channel}")

    async def close() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await listener.close()

    return close


class Copies(Protocol):
    """A process's copy of some rows (provider accounts, webhook endpoints), trusted only while changes
    can reach it: ``invalidate`` drops it, ``listening`` says whether the LISTEN connection is up."""

    listening: Callable[[], bool]

    def invalidate(self) -> None: ...


def invalidated_on_notify(url: str, channel: str, copies: Copies) -> Callable[[object], AsyncIterator[None]]:
    """A cleanup context (``app.cleanup_ctx``) that LISTENs on ``channel`` while the app runs and drops
    ``copies`` on every notification (and after every reconnection); the copies are trusted only while
    that connection is up, and never after the app stopped."""

    async def ctx(_app: object) -> AsyncIterator[None]:
        listener = NotificationListener(url, channel, copies.invalidate)
        copies.listening = lambda: listener.connected
        try:
            async with listener.running(f"{channel}:changes"):
                yield
        finally:
            copies.listening = lambda: False

    return ctx
