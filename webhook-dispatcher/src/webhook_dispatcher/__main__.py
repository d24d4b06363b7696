"""``webhook-dispatcher migrate | api | worker | all`` (``all`` = api and worker in one process), and
``webhook-dispatcher dead-letters list | replay`` for the dead letters of its queue, and
``webhook-dispatcher rotate-keys`` to finish an encryption key rotation."""

from __future__ import annotations

from pathlib import Path

from billing_runtime.db import create_engine
from billing_runtime.key_ring import KeyRing
from billing_runtime.key_rotation import reencrypt_columns
from billing_runtime.running import service_main

from webhook_dispatcher.app import create_app
from webhook_dispatcher.events.consumers import EVENTS_QUEUE
from webhook_dispatcher.settings import Settings

SERVICE_ROOT = Path(__file__).resolve().parents[2]


async def rotate_keys(settings: Settings) -> int:
    """Every endpoint's signing secrets (current and previous) re-encrypted with the first
    WEBHOOKS_ENCRYPTION_KEY."""
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        ring = KeyRing(settings.encryption_key.get_secret_value())
        columns = ("secret_encrypted", "previous_secret_encrypted")
        return await reencrypt_columns(engine, ring, "webhook_endpoints", "id", columns)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    service_main(
        "webhook-dispatcher",
        argv,
        settings_factory=Settings,
        create_app=create_app,
        service_root=SERVICE_ROOT,
        dead_letter_queues=[EVENTS_QUEUE],
        rotate_keys=rotate_keys,
    )


if __name__ == "__main__":
    main()
