"""What every event consumer does first: parse the message into a contract event, or drop it."""

from __future__ import annotations

import logging

from billing_contracts.events import AnyEvent, parse_event
from pydantic import ValidationError

from billing_runtime.bus import Message
from billing_runtime.metrics import Metrics

log = logging.getLogger(__name__)


def parse_or_drop(message: Message, metrics: Metrics) -> AnyEvent | None:
    """The message's event, or None for one no contract parses. Such a message can never be handled, so
    it is counted (``events_consumed{outcome="rejected"}``) and acknowledged rather than redelivered
    forever: it would poison the queue."""
    try:
        return parse_event(message.body)
    except ValidationError:
        log.error("unparseable event %s on %s", message.message_id, message.routing_key)
        metrics.events_consumed.labels("unknown", "rejected").inc()
        return None
