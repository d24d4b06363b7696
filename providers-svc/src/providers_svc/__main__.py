"""``providers-svc [migrate|api|worker|all|rotate-keys]``: builds Settings() once and runs the chosen
process; ``providers-svc dead-letters list|replay`` for the dead letters of its queue."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from billing_runtime.db import create_engine
from billing_runtime.key_ring import KeyRing
from billing_runtime.key_rotation import reencrypt_columns
from billing_runtime.migrations import upgrade
from billing_runtime.running import configure_logging, dead_letters_command, run, serve, stop_settings
from billing_runtime.secret_policy import load_settings
from billing_runtime.startup import log_startup
from billing_runtime.tracing import configure_tracing

from providers_svc.app import create_app
from providers_svc.events.consumers import REFUND_REQUESTS_QUEUE
from providers_svc.settings import Settings

# providers-svc/ (holds alembic.ini and migrations/): src/providers_svc/__main__.py → three levels up.
SERVICE_ROOT = Path(__file__).resolve().parents[2]


async def rotate_keys(settings: Settings) -> int:
    """Every provider account's credentials re-encrypted with the first PROVIDERS_CREDENTIALS_KEYS key."""
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        ring = KeyRing(settings.credentials_keys.get_secret_value())
        return await reencrypt_columns(engine, ring, "provider_accounts", "id", ("credentials_ciphertext",))
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["dead-letters"]:

        def bus_url() -> str:
            return load_settings(Settings, "providers-svc").bus_url

        configure_logging("WARNING")
        raise SystemExit(dead_letters_command("providers-svc", given[1:], bus_url, [REFUND_REQUESTS_QUEUE]))
    parser = argparse.ArgumentParser(prog="providers-svc", description="Payment providers service")
    parser.add_argument(
        "command",
        nargs="?",
        default="all",
        # dead-letters is run above (it has its own parser), listed here so that --help shows it.
        choices=["migrate", "api", "worker", "all", "rotate-keys", "dead-letters"],
        help="migrate: alembic upgrade head; api: HTTP only; worker: outbox relay + sandbox bank sender "
        "(health routes on worker_port); all: both in one process (default); rotate-keys: re-encrypt every "
        "provider account's credentials with the first PROVIDERS_CREDENTIALS_KEYS key; dead-letters list | "
        "replay: its queue's dead letters (providers-svc dead-letters --help)",
    )
    args = parser.parse_args(argv)
    settings = load_settings(Settings, "providers-svc")
    configure_logging(settings.log_level)
    if args.command == "migrate":
        upgrade(SERVICE_ROOT, settings.database_url)
        return
    if args.command == "rotate-keys":
        count = asyncio.run(rotate_keys(settings))
        print(f"providers-svc: {count} provider accounts re-encrypted with the first key; older keys may go")
        return
    configure_tracing("providers-svc")
    if args.command == "worker":
        apps = [(create_app(settings, roles=("worker",)), settings.host, settings.worker_port)]
    elif args.command == "api":
        apps = [(create_app(settings, roles=("api",)), settings.host, settings.port)]
    else:
        apps = [(create_app(settings), settings.host, settings.port)]
    bus = settings.bus_url if args.command in ("worker", "all") else None
    listeners = [(host, port) for _, host, port in apps]
    log_startup("providers-svc", args.command, listeners, database_url=settings.database_url, bus_url=bus)
    run(serve(apps, **stop_settings(settings)))


if __name__ == "__main__":
    main()
