"""``payments-svc migrate | api | worker | all`` (``all`` = api and worker in one process), and
``payments-svc dead-letters list | replay`` for the dead letters of its queues."""

from __future__ import annotations

from pathlib import Path

from billing_runtime.running import service_main

from payments_svc.app import create_app
from payments_svc.events.consumers import LOGGED_EVENTS_QUEUE, PROVIDER_EVENTS_QUEUE
from payments_svc.settings import Settings

SERVICE_ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> None:
    service_main(
        "payments-svc",
        argv,
        settings_factory=Settings,
        create_app=create_app,
        service_root=SERVICE_ROOT,
        dead_letter_queues=[PROVIDER_EVENTS_QUEUE, LOGGED_EVENTS_QUEUE],
    )


if __name__ == "__main__":
    main()
