"""HTTP input parsing (422 naming every bad field) and the JSON shapes of the responses."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from billing_contracts.problems import FieldError
from billing_runtime.errors import ProblemError
from pydantic import BaseModel, ValidationError

from webhook_dispatcher.db.models import Attempt, Delivery, Endpoint, WebhookEvent
from webhook_dispatcher.services.fanout import rfc3339

ModelT = TypeVar("ModelT", bound=BaseModel)
_ID = re.compile(r"^[a-z]{2,8}_[0-9a-z]{1,40}$")


def field_errors(exc: ValidationError) -> list[FieldError]:
    errors = []
    for err in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(p) for p in err["loc"]) or "body"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        errors.append(FieldError(field=field, message=message))
    return errors


def parse(model: type[ModelT], data: dict[str, Any]) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = field_errors(exc)
        raise ProblemError(422, "validation_error", f"{errors[0].field}: {errors[0].message}", errors=errors) from exc


def valid_id(raw: str) -> bool:
    """Ids that cannot exist answer 404 without a query."""
    return bool(_ID.fullmatch(raw))


def query_int(raw: str | None, name: str, *, default: int, lo: int, hi: int) -> int:
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw) or not lo <= int(raw) <= hi:
        message = f"must be an integer from {lo} to {hi}"
        raise ProblemError(
            422, "validation_error", f"{name} {message}", errors=[FieldError(field=name, message=message)]
        )
    return int(raw)


def query_choice(raw: str | None, name: str, choices: frozenset[str] | tuple[str, ...]) -> str | None:
    if raw is None:
        return None
    if raw not in choices:
        message = f"must be one of {', '.join(sorted(choices))}"
        raise ProblemError(
            422, "validation_error", f"{name} {message}", errors=[FieldError(field=name, message=message)]
        )
    return raw


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
