"""HTTP input parsing (422 naming every bad field) and the JSON shapes of the responses."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from billing_runtime import paging
from billing_runtime.paging import ListPaging, list_paging
from billing_runtime.problems import ProblemError
from pydantic import BaseModel

from webhook_dispatcher.api.responses import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryDetail,
    WebhookEndpoint,
    WebhookEndpointWithSecret,
)
from webhook_dispatcher.db.models import Attempt, Delivery, Endpoint, WebhookEvent

ModelT = TypeVar("ModelT", bound=BaseModel)
T = TypeVar("T")
_ID = re.compile(r"^[a-z]{2,8}_[0-9a-z]{1,40}$")


def valid_id(raw: str) -> bool:
    """Ids that cannot exist answer 404 without a query."""
    return bool(_ID.fullmatch(raw))


def endpoint_json(endpoint: Endpoint, secret: str | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": endpoint.events,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "livemode": endpoint.livemode,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }
    if secret is not None:
        return WebhookEndpointWithSecret(**fields, secret=secret).model_dump(mode="json")
    return WebhookEndpoint(**fields).model_dump(mode="json")


def _delivery_fields(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "endpoint_id": delivery.endpoint_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "status": delivery.status,
        "attempt_count": delivery.attempt_count,
        "next_attempt_at": delivery.next_attempt_at,
        "last_attempt_at": delivery.last_attempt_at,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "livemode": delivery.livemode,
        "created_at": delivery.created_at,
        "updated_at": delivery.updated_at,
    }


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    return WebhookDelivery(**_delivery_fields(delivery)).model_dump(mode="json")


def _attempt(attempt: Attempt) -> WebhookAttempt:
    return WebhookAttempt(
        number=attempt.number,
        started_at=attempt.started_at,
        outcome=attempt.outcome,
        status_code=attempt.status_code,
        error=attempt.error,
        latency_ms=attempt.latency_ms,
        response_body=attempt.response_body,
        manual=attempt.manual,
    )


def delivery_detail_json(delivery: Delivery, event: WebhookEvent, attempts: list[Attempt]) -> dict[str, Any]:
    detail = WebhookDeliveryDetail(
        **_delivery_fields(delivery), event=json.loads(event.body), attempts=[_attempt(a) for a in attempts]
    )
    return detail.model_dump(mode="json")


def page(data: list[dict[str, Any]], *, limit: int, offset: int, has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "limit": limit, "offset": offset, "has_more": has_more}


def list_query(query: Mapping[str, str]) -> ListPaging:
    """``limit``, ``offset`` (capped) or one of Stripe's cursors (``billing_runtime.paging``)."""
    return list_paging(query)


def list_page(query: ListPaging, rows: Sequence[T], serialize: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
    shown, has_more = query.page(rows)
    return page([serialize(r) for r in shown], limit=query.limit, offset=query.offset, has_more=has_more)


def unknown_cursor(query: ListPaging) -> ProblemError:
    assert query.cursor is not None
    return paging.unknown_cursor(query.cursor)
