"""``webhook-dispatcher migrate | api | worker | all`` (``all`` = api and worker in one process)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from billing_runtime.migrations import upgrade
from billing_runtime.running import configure_logging, serve

from webhook_dispatcher.app import create_app
from webhook_dispatcher.settings import Settings

SERVICE_ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="webhook-dispatcher")
    parser.add_argument("command", choices=["migrate", "api", "worker", "all"])
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level)
    if args.command == "migrate":
        upgrade(SERVICE_ROOT, settings.database_url)
        return
    roles = {"api": ("api",), "worker": ("worker",), "all": ("api", "worker")}[args.command]
    app = create_app(settings, roles=roles)
    asyncio.run(serve([(app, settings.host, settings.port)]))


if __name__ == "__main__":
    main()
