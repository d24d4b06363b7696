"""``billing-embedded``: the whole platform in one process (``make run``); ``billing-embedded
dead-letters list | replay`` for the dead letters its outboxes keep."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from pathlib import Path

import aiohttp
from billing_runtime.bus import MemoryBus
from billing_runtime.dead_letters_cli import OutboxDeadLetters, dead_letters_main
from billing_runtime.running import configure_logging, serve, stop_settings
from billing_runtime.running import run as run_loop  # `run` here is the platform's own coroutine
from billing_runtime.tracing import configure_tracing
from payments_svc.db.models import outbox as payments_outbox
from providers_svc.db.models import outbox as providers_outbox
from webhook_dispatcher.db.models import outbox as webhooks_outbox

from billing_embedded.database import DatabaseServer, DataDirectoryInUse, attached_server
from billing_embedded.demo_shop import DemoShop
from billing_embedded.demo_tenant import DemoTenantError, ensure_demo_tenant
from billing_embedded.platform import DATABASES, EmbeddedConfig, build_apps, build_config, migrate

log = logging.getLogger("billing_embedded")


def banner(config: EmbeddedConfig, demo_note: str = "") -> str:
    gw = config.gateway_url
    return f"""
  Billing platform (embedded mode) is running.

    Gateway API     {gw}
    API reference   {gw}/docs  (the OpenAPI 3.1 document: {gw}/openapi.json)
    Checkout pages  {config.checkout_url}
    Dashboard       {config.checkout_url}/dashboard  (a tenant signs in with its app name and secret)
    Data            {config.data_dir.resolve()}  (PostgreSQL's data and generated secrets)
    Database        PostgreSQL on the Unix socket in {config.database_socket}
    Admin token     {config.admin_token}

  Register a tenant, then trade its app name and secret for a JWT:

    curl -s -X POST {gw}/admin/tenants -H 'Authorization: Bearer {config.admin_token}' \\
         -H 'Content-Type: application/json' -d '{{"app_name": "shop-1", "display_name": "Shop One"}}'
    curl -s -X POST {gw}/v1/auth/token -H 'Content-Type: application/json' \\
         -d '{{"app_name": "shop-1", "secret": "<secret from the answer above>"}}'

  Discrepancies the reconciliation found (admin):

    curl -s {gw}/admin/reconciliation/discrepancies -H 'Authorization: Bearer {config.admin_token}'

{_webhooks_note(config)}
{demo_note}  A test tenant's checkout offers the sandbox, and Payme, Click and Octo through their simulators (a UZS
  payment): each simulator plays its provider against our real callback endpoint.
  The README walks through the rest of the money path. Ctrl-C stops it cleanly.
"""


def _webhooks_note(config: EmbeddedConfig) -> str:
    if config.webhooks.allow_loopback:
        return (
            "  Webhooks may reach receivers on this machine (WEBHOOKS_ALLOW_LOOPBACK=true), except the\n"
            "  platform's own ports; set WEBHOOKS_ALLOW_LOOPBACK=false to refuse loopback too.\n"
        )
    return (
        "  Webhooks to this machine (loopback) are refused; set WEBHOOKS_ALLOW_LOOPBACK=true for a\n"
        "  receiver here (make run does).\n"
    )


async def set_up_demo(demo: DemoShop, config: EmbeddedConfig) -> str:
    """The demo shop's tenant made ready (created on the first start), and what the banner says of it."""
    assert demo.session is not None
    try:
        tenant = await ensure_demo_tenant(
            demo.session,
            gateway_url=config.gateway_url,
            admin_token=config.admin_token,
            data_dir=config.data_dir,
            origin=demo.settings.origin,
        )
    except (DemoTenantError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning("the demo shop is off: its tenant could not be set up: %s", exc)
        return "  Demo shop         off: its tenant could not be set up (see the log above).\n\n"
    demo.tenant = tenant
    return f"""  Demo shop         {demo.settings.url}  (BILLING_DEMO=false turns it off)
    its tenant      app name {tenant.app_name}, secret {tenant.secret}
                    (a test tenant; allowed origin {demo.settings.origin}; kept in {config.data_dir / "secrets.json"})
  Press Pay there: the SDK opens the checkout in a modal; pay with a simulator in the window it opens.

"""


def data_dir() -> Path:
    return Path(os.environ.get("BILLING_DATA_DIR", ".data"))


async def run(server: DatabaseServer) -> None:
    """The platform on ``server`` (its lock held): the server started, every service's database
    created and migrated, the services served until a stop signal, then the server stopped (last,
    after every service has drained)."""
    began = time.monotonic()
    stale = sorted(p.name for p in server.data_dir.glob("*.db"))
    if stale:
        # Data files of the versions before the PostgreSQL server: never read, never migrated.
        log.warning("ignoring %s in %s (data of an earlier version; remove them)", ", ".join(stale), server.data_dir)
    await asyncio.to_thread(server.start)
    try:
        await asyncio.to_thread(server.create_databases, list(DATABASES))
        config = build_config(server.data_dir, server)
        await migrate(config)
        bus = MemoryBus()
        await bus.start()
        demo = DemoShop(config.demo) if config.demo is not None else None
        apps = build_apps(config, bus, demo)

        async def ready() -> None:
            # Every service listens by now: the demo tenant is set up through the gateway's admin API.
            demo_note = await set_up_demo(demo, config) if demo is not None else ""
            print(banner(config, demo_note), flush=True)
            log.info("ready in %.1f s", time.monotonic() - began)

        try:
            # One process, one grace period: the gateway's (GATEWAY_SHUTDOWN_GRACE_SECONDS, ..._DELAY_...).
            await serve(apps, ready=ready, **stop_settings(config.gateway))
        finally:
            await bus.close()
    finally:
        await asyncio.to_thread(server.stop)


def dead_letters(argv: list[str]) -> int:
    """``billing-embedded dead-letters list | replay``: the dead letters every service's outbox keeps
    (the platform may be running: a replayed row is published by its relay's next pass)."""
    with attached_server(data_dir()) as server:
        config = build_config(server.data_dir, server)
        server.create_databases(list(DATABASES))
        run_loop(migrate(config))  # as every start does: the outboxes have their dead-letter columns
        sources = [
            OutboxDeadLetters(config.payments.database_url, payments_outbox),
            OutboxDeadLetters(config.providers.database_url, providers_outbox),
            OutboxDeadLetters(config.webhooks.database_url, webhooks_outbox),
        ]
        return dead_letters_main("billing-embedded", argv, sources)


USAGE = """usage: billing-embedded [dead-letters ...]

  (no command)   start the whole platform in one process, with the PostgreSQL server it keeps
                 under BILLING_DATA_DIR (default .data/); Ctrl-C stops both (make run)
  dead-letters   list [--json] | replay (--id <event id> ... | --all): the dead letters the
                 outboxes keep (the platform may be running)

Settings come from the environment (README, "Two ways to run")."""


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] in (["-h"], ["--help"]):
        print(USAGE)
        raise SystemExit(0)
    if args and args[0] != "dead-letters":
        # Never start a platform on a command it does not know (a typo would start one).
        print(f"billing-embedded: unknown command {args[0]!r}\n{USAGE}", file=sys.stderr)
        raise SystemExit(2)
    # Text by default: the embedded mode is for a person at a terminal (BILLING_LOG_FORMAT=json for a pipeline).
    configure_logging(os.environ.get("BILLING_LOG_LEVEL", "WARNING"), default_format="text")
    try:
        if args[:1] == ["dead-letters"]:
            raise SystemExit(dead_letters(args[1:]))
        server = DatabaseServer(data_dir())
        server.lock()
    except DataDirectoryInUse as exc:
        print(f"billing-embedded: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    try:
        configure_tracing("billing-embedded")
        run_loop(run(server))
    finally:
        server.unlock()


if __name__ == "__main__":
    main()
