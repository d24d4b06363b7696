"""Exchange names and routing keys. Routing key = ``<source>.<event_type>.v<schema_version>``."""

from __future__ import annotations

EVENTS_EXCHANGE = "billing.events"
DEAD_LETTER_EXCHANGE = "billing.events.dlx"


def routing_key(source: str, event_type: str, schema_version: int) -> str:
    """Return the topic routing key of an event, e.g. ``payments.payment.created.v1``."""
    return f"{source}.{event_type}.v{schema_version}"
