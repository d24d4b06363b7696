"""``checkout-web serve``: the hosted payment page as its own process."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from billing_runtime.running import configure_logging, run, serve, stop_settings
from billing_runtime.secret_policy import load_settings
from billing_runtime.startup import log_startup
from billing_runtime.tracing import configure_tracing

from checkout_web.app import create_app
from checkout_web.settings import Settings


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="checkout-web", description="Hosted payment page and checkout.js")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the pages (settings from CHECKOUT_* environment variables)")
    parser.parse_args(argv)
    settings = load_settings(Settings, "checkout-web")
    configure_logging(settings.log_level)
    configure_tracing("checkout-web")
    log_startup("checkout-web", "serve", [(settings.host, settings.port)], extra=[f"gateway {settings.gateway_url}"])
    run(serve([(create_app(settings), settings.host, settings.port)], **stop_settings(settings)))


if __name__ == "__main__":
    main()
