"""``billing-embedded``: the whole platform in one process (``make run``); ``billing-embedded
dead-letters list | replay`` for the dead letters its outboxes keep."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from billing_runtime.bus import MemoryBus
from billing_runtime.dead_letters_cli import OutboxDeadLetters, dead_letters_main
from billing_runtime.running import configure_logging, serve
from billing_runtime.running import run as run_loop  # `run` here is the platform's own coroutine
from payments_svc.db.models import outbox as payments_outbox
from providers_svc.db.models import outbox as providers_outbox
from webhook_dispatcher.db.models import outbox as webhooks_outbox

from billing_embedded.platform import EmbeddedConfig, build_apps, build_config, migrate


def banner(config: EmbeddedConfig) -> str:
    gw = config.gateway_url
    return f"""
  Billing platform (embedded mode) is running.

    Gateway API     {gw}
    Checkout pages  {config.checkout_url}
    Data            {config.data_dir.resolve()}  (SQLite files and generated secrets)
    Admin token     {config.admin_token}

  Register a tenant, then trade its app name and secret for a JWT:

    curl -s -X POST {gw}/admin/tenants -H 'Authorization: Bearer {config.admin_token}' \\
         -H 'Content-Type: application/json' -d '{{"app_name": "shop-1", "display_name": "Shop One"}}'
    curl -s -X POST {gw}/v1/auth/token -H 'Content-Type: application/json' \\
         -d '{{"app_name": "shop-1", "secret": "<secret from the answer above>"}}'

  The README walks through the rest of the money path. Ctrl-C stops it cleanly.
"""


async def run() -> None:
    config = build_config(Path(os.environ.get("BILLING_DATA_DIR", ".data")))
    await migrate(config)
    bus = MemoryBus()
    await bus.start()
    apps = build_apps(config, bus)

    async def ready() -> None:
        print(banner(config), flush=True)

    try:
        await serve(apps, ready=ready)
    finally:
        await bus.close()


def dead_letters(argv: list[str]) -> int:
    """``billing-embedded dead-letters list | replay``: the dead letters every service's outbox keeps
    (the platform may be running: a replayed row is published by its relay's next pass)."""
    config = build_config(Path(os.environ.get("BILLING_DATA_DIR", ".data")))
    run_loop(migrate(config))  # as every start does: the outboxes have their dead-letter columns
    sources = [
        OutboxDeadLetters(config.payments.database_url, payments_outbox),
        OutboxDeadLetters(config.providers.database_url, providers_outbox),
        OutboxDeadLetters(config.webhooks.database_url, webhooks_outbox),
    ]
    return dead_letters_main("billing-embedded", argv, sources)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    configure_logging(os.environ.get("BILLING_LOG_LEVEL", "WARNING"))
    if args[:1] == ["dead-letters"]:
        raise SystemExit(dead_letters(args[1:]))
    run_loop(run())


if __name__ == "__main__":
    main()
