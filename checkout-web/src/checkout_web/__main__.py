"""``checkout-web migrate`` (alembic upgrade head on its database) and ``checkout-web serve`` (the
hosted payment page and the tenant dashboard as their own process)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from billing_runtime.migrations import upgrade
from billing_runtime.running import configure_logging, run, serve, stop_settings
from billing_runtime.secret_policy import load_settings
from billing_runtime.startup import log_startup
from billing_runtime.tracing import configure_tracing

from checkout_web.app import create_app
from checkout_web.settings import Settings

# checkout-web/src/checkout_web/__main__.py → checkout-web/ (where alembic.ini lives)
SERVICE_ROOT = Path(__file__).resolve().parents[2]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="checkout-web", description="Hosted payment page, checkout.js, dashboard")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="alembic upgrade head on CHECKOUT_DATABASE_URL, then exit")
    commands.add_parser("serve", help="serve the pages (settings from CHECKOUT_* environment variables)")
    args = parser.parse_args(argv)
    settings = load_settings(Settings, "checkout-web")
    configure_logging(settings.log_level)
    if args.command == "migrate":
        upgrade(SERVICE_ROOT, settings.database_url)
        return
    configure_tracing("checkout-web")
    log_startup(
        "checkout-web",
        "serve",
        [(settings.host, settings.port)],
        database_url=settings.database_url,
        extra=[f"gateway {settings.gateway_url}"],
    )
    run(serve([(create_app(settings), settings.host, settings.port)], **stop_settings(settings)))


if __name__ == "__main__":
    main()
