"""Run aiohttp applications until SIGINT/SIGTERM, shutting down gracefully (in-flight requests finish)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

# Re-exported: every service imports it from here.
from billing_runtime.log_format import configure_logging as configure_logging
from billing_runtime.migrations import upgrade
from billing_runtime.secret_policy import load_settings
from billing_runtime.settings import ServiceSettings
from billing_runtime.startup import log_startup
from billing_runtime.tracing import configure_tracing

log = logging.getLogger(__name__)


def run(main: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run`` on uvloop where it is installed (every service entry point goes through here):
    the services spend much of each request in the event loop and its socket calls, which libuv does
    in C. Falls back to the standard loop elsewhere (e.g. Windows)."""
    settle_heap()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - only on platforms without uvloop
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


# Young-generation collections every this many allocations instead of CPython's 700: a request
# allocates hundreds of short-lived objects, and the default had the collector running several times
# per request (~4 % of payments-api's CPU under load, measured with py-spy --native).
GC_GEN0_THRESHOLD = 10_000


def settle_heap() -> None:
    """Move what exists at start-up (imported modules, classes, compiled SQL) out of the cyclic garbage
    collector's view (``gc.freeze``): it lives as long as the process, and rescanning it in every full
    collection is pure cost. Collection itself stays on for what requests create."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


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


def service_main(
    prog: str,
    argv: list[str] | None,
    *,
    settings_factory: Callable[[], ServiceSettings],
    create_app: Callable[..., web.Application],
    service_root: Path,
    dead_letter_queues: Sequence[str] = (),
    rotate_keys: Callable[[Any], Coroutine[Any, Any, int]] | None = None,
) -> None:
    """The ``<service> migrate | api | worker | all | dead-letters`` command line shared by the services
    whose API and worker roles run on one port each (``all`` = both roles in one process);
    ``dead-letters list|replay`` reads the broker's dead letters of ``dead_letter_queues``;
    ``rotate-keys`` (when ``rotate_keys`` is given) re-encrypts what is stored with the first key."""
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["dead-letters"]:
        configure_logging("WARNING")
        raise SystemExit(dead_letters_command(prog, given[1:], settings_factory().bus_url, dead_letter_queues))

    parser = argparse.ArgumentParser(prog=prog)
    commands = ["migrate", "api", "worker", "all", *(["rotate-keys"] if rotate_keys is not None else [])]
    parser.add_argument("command", choices=commands)
    args = parser.parse_args(argv)
    # Settings are read from the environment here, once, and passed down (never a global). Missing,
    # short or published secrets stop the process here, naming their variables.
    settings = load_settings(settings_factory, prog)
    configure_logging(settings.log_level)
    if args.command == "migrate":
        upgrade(service_root, settings.database_url)
        return
    if args.command == "rotate-keys":
        assert rotate_keys is not None
        count = asyncio.run(rotate_keys(settings))
        print(f"{prog}: {count} stored ciphertexts re-encrypted with the first key; older keys may now be dropped")
        return
    roles = {"api": ("api",), "worker": ("worker",), "all": ("api", "worker")}[args.command]
    configure_tracing(prog)
    app = create_app(settings, roles=roles)
    bus = settings.bus_url if "worker" in roles else None
    log_startup(prog, args.command, [(settings.host, settings.port)], database_url=settings.database_url, bus_url=bus)
    run(serve([(app, settings.host, settings.port)]))


def dead_letters_command(prog: str, argv: list[str], bus_url: str, queues: Sequence[str]) -> int:
    """``<service> dead-letters ...`` on the broker; the embedded mode keeps its dead letters in the
    services' outboxes and has a command of its own."""
    from billing_runtime.dead_letters_cli import BrokerDeadLetters, dead_letters_main, parser

    parser(prog).parse_args(argv)  # usage errors and --help before anything else
    if bus_url.startswith("memory"):
        print(
            f"{prog}: the bus is in-process (embedded mode), whose dead letters are kept in the outboxes: "
            "use `billing-embedded dead-letters`",
            file=sys.stderr,
        )
        return 2
    return dead_letters_main(prog, argv, [BrokerDeadLetters(bus_url, queues)])
