"""What every event consumer does first: parse the message into a contract event, or drop it; and note
what the event is about (log context) and how late it is taken (``bus_event_lag_seconds``)."""

from __future__ import annotations

import logging
from typing import Any

from billing_contracts.envelope import utcnow
from billing_contracts.events import ANY_EVENT, AnyEvent, parse_event
from pydantic import ValidationError

from billing_runtime.bus import Message
from billing_runtime.log_context import bind, log_context
from billing_runtime.metrics import Metrics

log = logging.getLogger(__name__)


def prepare_parser() -> None:
    """Build the validator of every event now (about 60 ms), not in the first message's handling: the
    contracts are built on first use (``billing_contracts.config``), so a process that never consumes
    never pays for them, and one that does pays at start, before it takes a message."""
    ANY_EVENT.rebuild()


def parse_or_drop(message: Message, metrics: Metrics) -> AnyEvent | None:
    """The message's event, or None for one no contract parses. Such a message can never be handled, so
    it is counted (``events_consumed{outcome="rejected"}``) and acknowledged rather than redelivered
    forever: it would poison the queue."""
    try:
        event = parse_event(message.body)
    except ValidationError:
        log.error("unparseable event %s on %s", message.message_id, message.routing_key)
        metrics.events_consumed.labels("unknown", "rejected").inc()
        return None
    # Within the delivery's scope (Plumbing binds event id and queue around every handler and resets
    # after it): the rest of the handling logs under the event's tenant and payment.
    bind(tenant_id=event.tenant_id, payment_id=payment_id_of(event))
    queue = log_context().get("queue")
    if queue is not None:
        metrics.event_lag.labels(queue).observe(max((utcnow() - event.occurred_at).total_seconds(), 0.0))
    return event


def payment_id_of(event: AnyEvent) -> str | None:
    """The payment an event is about, where it names one (``data.payment_id`` or ``data.payment.id``).
    Looked up in the models' declared fields: ``getattr`` with a default on a pydantic model that lacks
    the field raises and catches an AttributeError, which cost more than the rest of the parse."""
    data: Any = getattr(event, "data", None)
    fields = getattr(type(data), "model_fields", {})
    if "payment_id" in fields:
        found = data.payment_id
    elif "payment" in fields:
        payment = data.payment
        found = payment.id if "id" in getattr(type(payment), "model_fields", {}) else None
    else:
        found = None
    return found if isinstance(found, str) else None
