"""The public webhook event types (API.md "Webhooks to tenants") and endpoint filters."""

from __future__ import annotations

import functools
from collections.abc import Collection

from billing_contracts.events import EVENT_CLASSES

WEBHOOK_TEST = "webhook.test"
ENDPOINT_DISABLED = "endpoint.disabled"

PUBLIC_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "payment.created",
        "payment.pending",
        "payment.authorized",
        "payment.succeeded",
        "payment.failed",
        "payment.expired",
        "payment.cancelled",
        "payment.attempt_failed",
        "refund.created",
        "refund.succeeded",
        "refund.failed",
        "dispute.created",
        "dispute.closed",
        WEBHOOK_TEST,
        ENDPOINT_DISABLED,
    }
)

# This service's own source: the events it publishes (``endpoint.disabled``) it fans out itself when it
# writes them, so it never consumes them back from the bus.
OWN_SOURCE = "webhooks"


@functools.cache
def forwarded_types() -> dict[str, str]:
    """The bus events that become webhooks, by type, with their source: every public type a contract
    exists for (payment.* and dispute.* today; refund.* joins once its contracts are registered)."""
    return {
        event_type: cls.model_fields["source"].default
        for event_type, cls in EVENT_CLASSES.items()
        if event_type in PUBLIC_EVENT_TYPES and cls.model_fields["source"].default != OWN_SOURCE
    }


def binding_keys() -> list[str]:
    """What the dispatcher's queue binds: each forwarded type from its source, any schema version (a new
    public contract needs no code). Not the whole source: its internal events (anomalies) are not for
    tenants and would only cost the dispatcher a parse and a drop each."""
    return [f"{source}.{event_type}.*" for event_type, source in sorted(forwarded_types().items())]


def is_forwarded(event_type: str, source: str) -> bool:
    return forwarded_types().get(event_type) == source


def matches(filter_: Collection[str], event_type: str) -> bool:
    """``["*"]`` takes every type except ``webhook.test``, which goes only to the endpoint it tests."""
    if event_type == WEBHOOK_TEST:
        return False
    return "*" in filter_ or event_type in filter_
