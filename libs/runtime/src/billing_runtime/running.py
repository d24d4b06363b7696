"""Run aiohttp applications until SIGINT/SIGTERM, shutting down gracefully (in-flight requests finish)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


async def serve(
    apps: list[tuple[web.Application, str, int]],
    *,
    ready: Callable[[], Awaitable[None]] | None = None,
    shutdown_timeout: float = 10.0,
) -> None:
    """Start every (app, host, port) and block until a stop signal; then stop accepting, let in-flight
    requests finish (up to ``shutdown_timeout``) and run every cleanup context."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    runners: list[web.AppRunner] = []
    try:
        for app, host, port in apps:
            runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout, access_log=None)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, host, port).start()
        if ready is not None:
            await ready()
        await stop.wait()
        log.info("stopping")
    finally:
        # In start order: the public entry, listed first, stops taking requests before what it calls.
        for runner in runners:
            await runner.cleanup()
