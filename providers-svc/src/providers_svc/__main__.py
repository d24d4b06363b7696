"""``providers-svc [migrate|api|worker|all]``: builds Settings() once and runs the chosen process."""

from __future__ import annotations

import argparse
from pathlib import Path

from billing_runtime.migrations import upgrade
from billing_runtime.running import configure_logging, run, serve
from billing_runtime.secret_policy import load_settings
from billing_runtime.startup import log_startup

from providers_svc.app import create_app
from providers_svc.settings import Settings

# providers-svc/ (holds alembic.ini and migrations/): src/providers_svc/__main__.py → three levels up.
SERVICE_ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="providers-svc", description="Payment providers service")
    parser.add_argument(
        "command",
        nargs="?",
        default="all",
        choices=["migrate", "api", "worker", "all"],
        help="migrate: alembic upgrade head; api: HTTP only; worker: outbox relay + sandbox bank sender "
        "(health routes on worker_port); all: both in one process (default)",
    )
    args = parser.parse_args(argv)
    settings = load_settings(Settings, "providers-svc")
    configure_logging(settings.log_level)
    if args.command == "migrate":
        upgrade(SERVICE_ROOT, settings.database_url)
        return
    if args.command == "worker":
        apps = [(create_app(settings, roles=("worker",)), settings.host, settings.worker_port)]
    elif args.command == "api":
        apps = [(create_app(settings, roles=("api",)), settings.host, settings.port)]
    else:
        apps = [(create_app(settings), settings.host, settings.port)]
    bus = settings.bus_url if args.command in ("worker", "all") else None
    listeners = [(host, port) for _, host, port in apps]
    log_startup("providers-svc", args.command, listeners, database_url=settings.database_url, bus_url=bus)
    run(serve(apps))


if __name__ == "__main__":
    main()
