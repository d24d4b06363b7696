"""``reconciliation-svc migrate | api | worker | all`` (``all`` = api and worker in one process), and
``reconciliation-svc dead-letters list | replay`` for the dead letters of its queue."""

from __future__ import annotations

from pathlib import Path

from billing_runtime.running import service_main

from reconciliation_svc.app import create_app
from reconciliation_svc.events.consumers import EVENTS_QUEUE
from reconciliation_svc.settings import Settings

SERVICE_ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> None:
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
