"""``webhook-dispatcher migrate | api | worker | all`` (``all`` = api and worker in one process), and
``webhook-dispatcher dead-letters list | replay`` for the dead letters of its queue."""

from __future__ import annotations

from pathlib import Path

from billing_runtime.running import service_main

from webhook_dispatcher.app import create_app
from webhook_dispatcher.events.consumers import EVENTS_QUEUE
from webhook_dispatcher.settings import Settings

SERVICE_ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> None:
    service_main(
        "webhook-dispatcher",
        argv,
        settings_factory=Settings,
        create_app=create_app,
        service_root=SERVICE_ROOT,
        dead_letter_queues=[EVENTS_QUEUE],
    )


if __name__ == "__main__":
    main()
