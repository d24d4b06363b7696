"""``billing-embedded``: the whole platform in one process (``make run``)."""

from __future__ import annotations

import os
from pathlib import Path

from billing_runtime.bus import MemoryBus
from billing_runtime.running import configure_logging, serve
from billing_runtime.running import run as run_loop  # `run` here is the platform's own coroutine

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

{_webhooks_note(config)}
  The README walks through the rest of the money path. Ctrl-C stops it cleanly.
"""


def _webhooks_note(config: EmbeddedConfig) -> str:
    if config.webhooks.allow_loopback:
        return (
            "  Webhooks may reach receivers on this machine (WEBHOOKS_ALLOW_LOOPBACK=true), except the\n"
            "  platform's own ports; set WEBHOOKS_ALLOW_LOOPBACK=false to refuse loopback too.\n"
        )
    return "  Webhooks to loopback are refused (WEBHOOKS_ALLOW_LOOPBACK=false).\n"


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


def main() -> None:
    configure_logging(os.environ.get("BILLING_LOG_LEVEL", "WARNING"))
    run_loop(run())


if __name__ == "__main__":
    main()
