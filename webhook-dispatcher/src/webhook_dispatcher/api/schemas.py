"""HTTP input parsing (422 naming every bad field) and the JSON shapes of the responses."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel

from webhook_dispatcher.db.models import Attempt, Delivery, Endpoint, WebhookEvent
from webhook_dispatcher.services.fanout import rfc3339

ModelT = TypeVar("ModelT", bound=BaseModel)
_ID = re.compile(r"^[a-z]{2,8}_[0-9a-z]{1,40}$")


def valid_id(raw: str) -> bool:
    """Ids that cannot exist answer 404 without a query."""
    return bool(_ID.fullmatch(raw))


def _time(value: Any) -> str | None:
    return None if value is None else rfc3339(value)


def endpoint_json(endpoint: Endpoint, secret: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": endpoint.id,
        "object": "webhook_endpoint",
        "url": endpoint.url,
        "events": endpoint.events,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "livemode": endpoint.livemode,
        "created_at": _time(endpoint.created_at),
        "updated_at": _time(endpoint.updated_at),
    }
    if secret is not None:
        body["secret"] = secret
    return body


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "object": "webhook_delivery",
        "endpoint_id": delivery.endpoint_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "status": delivery.status,
        "attempt_count": delivery.attempt_count,
        "next_attempt_at": _time(delivery.next_attempt_at),
        "last_attempt_at": _time(delivery.last_attempt_at),
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "livemode": delivery.livemode,
        "created_at": _time(delivery.created_at),
        "updated_at": _time(delivery.updated_at),
    }


def attempt_json(attempt: Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "started_at": _time(attempt.started_at),
        "outcome": attempt.outcome,
        "status_code": attempt.status_code,
        "error": attempt.error,
        "latency_ms": attempt.latency_ms,
        "response_body": attempt.response_body,
        "manual": attempt.manual,
    }


def delivery_detail_json(delivery: Delivery, event: WebhookEvent, attempts: list[Attempt]) -> dict[str, Any]:
    return {
        **delivery_json(delivery),
        "event": json.loads(event.body),
        "attempts": [attempt_json(a) for a in attempts],
    }


def page(data: list[dict[str, Any]], *, limit: int, offset: int, has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "limit": limit, "offset": offset, "has_more": has_more}
