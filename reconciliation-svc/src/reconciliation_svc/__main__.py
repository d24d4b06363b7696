"""``reconciliation-svc migrate | api | worker | all`` (``all`` = api and worker in one process),
``reconciliation-svc dead-letters list | replay`` for the dead letters of its queue, and
``reconciliation-svc reconcile ... | runs ...`` (cli.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from billing_runtime.running import service_main

from reconciliation_svc import cli
from reconciliation_svc.app import create_app
from reconciliation_svc.events.consumers import EVENTS_QUEUE
from reconciliation_svc.settings import Settings

SERVICE_ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> None:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] and given[0] in cli.COMMANDS:
        raise SystemExit(cli.main(given, Settings))
    service_main(
        "reconciliation-svc",
        argv,
        settings_factory=Settings,
        create_app=create_app,
        service_root=SERVICE_ROOT,
        dead_letter_queues=[EVENTS_QUEUE],
    )


if __name__ == "__main__":
    main()
