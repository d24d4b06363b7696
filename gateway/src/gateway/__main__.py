"""``gateway migrate`` (alembic upgrade head) and ``gateway api`` (serve)."""

from __future__ import annotations

import argparse
from pathlib import Path

from billing_runtime.migrations import upgrade
from billing_runtime.running import configure_logging, run, serve, stop_settings
from billing_runtime.secret_policy import load_settings
from billing_runtime.startup import log_startup
from billing_runtime.tracing import configure_tracing

from gateway.app import create_app
from gateway.ops import create_ops_app
from gateway.settings import Settings

# gateway/src/gateway/__main__.py → gateway/ (where alembic.ini lives)
SERVICE_ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gateway", description="The billing platform's public gateway.")
    parser.add_argument("command", choices=["migrate", "api"])
    args = parser.parse_args(argv)

    settings = load_settings(Settings, "gateway")
    configure_logging(settings.log_level)
    if args.command == "migrate":
        upgrade(SERVICE_ROOT, settings.database_url)
    else:
        configure_tracing("gateway")
        app = create_app(settings)
        apps = [(app, settings.host, settings.port)]
        if settings.ops_port is not None:
            apps.append((create_ops_app(app), settings.ops_host, settings.ops_port))
        upstreams = (
            f"payments {settings.payments_url}, providers {settings.providers_url}, webhooks {settings.webhooks_url}"
        )
        log_startup(
            "gateway",
            "api",
            [(host, port) for _, host, port in apps],
            database_url=settings.database_url,
            extra=[f"upstreams {upstreams}"],
        )
        run(serve(apps, **stop_settings(settings)))


if __name__ == "__main__":
    main()
