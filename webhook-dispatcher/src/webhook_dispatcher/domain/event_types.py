"""The public webhook event types (API.md "Webhooks to tenants") and endpoint filters."""

from __future__ import annotations

from billing_contracts.events import EVENT_CLASSES

WEBHOOK_TEST = "webhook.test"
ENDPOINT_DISABLED = "endpoint.disabled"

PUBLIC_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "payment.created",
        "payment.pending",
        "payment.succeeded",
        "payment.failed",
        "payment.expired",
        "payment.cancelled",
        "refund.created",
        "refund.succeeded",
        "refund.failed",
        "dispute.created",
        "dispute.closed",
        WEBHOOK_TEST,
        ENDPOINT_DISABLED,
    }
)

# The bus events that become webhooks: every public type a contract class exists for (payment.* today;
# refund.* and dispute.* join automatically once their contracts are registered).
FORWARDED_SOURCES = frozenset({"payments"})


def is_forwarded(event_type: str) -> bool:
    return event_type in PUBLIC_EVENT_TYPES and event_type in EVENT_CLASSES


def matches(filter_: list[str], event_type: str) -> bool:
    """``["*"]`` takes every type except ``webhook.test``, which goes only to the endpoint it tests."""
    if event_type == WEBHOOK_TEST:
        return False
    return "*" in filter_ or event_type in filter_
