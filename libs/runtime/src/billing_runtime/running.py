"""Run aiohttp applications until SIGINT/SIGTERM, shutting down gracefully (in-flight requests finish)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypedDict

from aiohttp import web

# Re-exported: every service imports it from here.
from billing_runtime.log_format import configure_logging as configure_logging
from billing_runtime.migrations import upgrade
from billing_runtime.secret_policy import load_settings
from billing_runtime.settings import ServiceSettings
from billing_runtime.shutdown import DEFAULT_GRACE_SECONDS, Shutdown, shutdown_key
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
    grace: float = DEFAULT_GRACE_SECONDS,
    delay: float = 0.0,
) -> None:
    """Start every (app, host, port) and block until SIGTERM or SIGINT; then stop gracefully within
    ``grace`` seconds (``billing_runtime.shutdown``): ``/readyz`` fails at once, the listeners close
    after ``delay``, in-flight requests finish, every cleanup context runs (the plumbing drains its
    consumers, loops and outbox) and this returns, so the process exits 0. A second signal exits at
    once (status 1), as does a drain still running when the grace period is over."""
    shutdown = Shutdown(grace=grace, delay=delay)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            log.warning("second %s while stopping: exiting now, without draining", sig.name)
            _exit_now(EXIT_FORCED)
        log.info("%s: stopping within %.0fs (pre-drain delay %.0fs)", sig.name, grace, delay)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal, sig)
    for app, _, _ in apps:
        app[shutdown_key] = shutdown
    runners: list[web.AppRunner] = []
    watchdog: asyncio.TimerHandle | None = None
    try:
        for app, host, port in apps:
            runner = web.AppRunner(app, shutdown_timeout=grace, access_log=None)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, host, port).start()
        if ready is not None:
            await ready()
        await stop.wait()
        shutdown.begin()
        watchdog = loop.call_later(grace, _overdue, grace)
        if delay:
            # Out of rotation (/readyz 503) but still serving what the balancer sends meanwhile.
            await asyncio.sleep(delay)
    finally:
        shutdown.begin()  # also when start-up failed: the cleanups drain against the same deadline
        # In start order: the public entry, listed first, stops taking requests (and finishes the ones
        # it has, which may call the others) before what it calls.
        for runner in runners:
            # In-flight requests may take what is left of the grace period, no more. aiohttp reads
            # the runner's timeout only when cleaning up, and offers no public way to change it.
            runner._shutdown_timeout = max(shutdown.remaining(), 0.1)
            await runner.cleanup()
        if watchdog is not None:
            watchdog.cancel()
            assert shutdown.started is not None
            log.info("stopped in %.1fs", time.monotonic() - shutdown.started)


# Exit status of a stop forced by a second signal, or by a drain that outlived the grace period.
EXIT_FORCED = 1


def _overdue(grace: float) -> None:
    log.error("still draining after the %.0fs grace period: exiting now", grace)
    _exit_now(EXIT_FORCED)


def _exit_now(status: int) -> None:
    # No cleanup may run (it is what hangs or what the operator wants skipped): what is committed is
    # kept, what is not rolls back, and unacknowledged messages go back to their queues.
    logging.shutdown()
    os._exit(status)


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
    if given[:1] == ["dead-letters"] and dead_letter_queues:

        def bus_url() -> str:
            return load_settings(settings_factory, prog).bus_url

        configure_logging("WARNING")
        raise SystemExit(dead_letters_command(prog, given[1:], bus_url, dead_letter_queues))

    parser = argparse.ArgumentParser(prog=prog)
    commands = ["migrate", "api", "worker", "all"]
    meanings = ["migrate: alembic upgrade head", "api, worker: that role alone", "all: both in one process"]
    if rotate_keys is not None:
        commands.append("rotate-keys")
        meanings.append("rotate-keys: re-encrypt what is stored with the first key")
    if dead_letter_queues:
        # Run before this parser (it has its own), listed here so that --help shows it.
        commands.append("dead-letters")
        meanings.append(f"dead-letters list | replay: its queues' dead letters ({prog} dead-letters --help)")
    parser.add_argument("command", choices=commands, help="; ".join(meanings))
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
    run(serve([(app, settings.host, settings.port)], **stop_settings(settings)))


class StopSettings(TypedDict):
    grace: float
    delay: float


def stop_settings(settings: ServiceSettings) -> StopSettings:
    """``serve``'s grace period and pre-drain delay from a service's settings
    (``<PREFIX>_SHUTDOWN_GRACE_SECONDS``, ``<PREFIX>_SHUTDOWN_DELAY_SECONDS``)."""
    return {"grace": settings.shutdown_grace_seconds, "delay": settings.shutdown_delay_seconds}


def dead_letters_command(prog: str, argv: list[str], bus_url: str | Callable[[], str], queues: Sequence[str]) -> int:
    """``<service> dead-letters ...`` on the broker; the embedded mode keeps its dead letters in the
    services' outboxes and has a command of its own. ``bus_url`` may be a function reading the
    settings: it is called after the arguments are parsed, so --help needs no settings."""
    from billing_runtime.dead_letters_cli import BrokerDeadLetters, dead_letters_main, parser

    parser(prog).parse_args(argv)  # usage errors and --help before anything else
    if callable(bus_url):
        bus_url = bus_url()
    if bus_url.startswith("memory"):
        print(
            f"{prog}: the bus is in-process (embedded mode), whose dead letters are kept in the outboxes: "
            "use `billing-embedded dead-letters`",
            file=sys.stderr,
        )
        return 2
    return dead_letters_main(prog, argv, [BrokerDeadLetters(bus_url, queues)])
