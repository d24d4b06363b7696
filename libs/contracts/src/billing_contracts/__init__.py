"""Message contracts shared by every service: versioned events, routing, webhook signing, problems."""

from billing_contracts.envelope import EventBase, new_event_id, utcnow
from billing_contracts.events import ANY_EVENT, EVENT_CLASSES, AnyEvent, parse_event
from billing_contracts.problems import FieldError, ProblemDetails
from billing_contracts.routing import DEAD_LETTER_EXCHANGE, EVENTS_EXCHANGE, routing_key

__all__ = [
    "ANY_EVENT",
    "DEAD_LETTER_EXCHANGE",
    "EVENTS_EXCHANGE",
    "EVENT_CLASSES",
    "AnyEvent",
    "EventBase",
    "FieldError",
    "ProblemDetails",
    "new_event_id",
    "parse_event",
    "routing_key",
    "utcnow",
]
