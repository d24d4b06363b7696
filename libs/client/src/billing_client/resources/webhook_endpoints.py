"""``/v1/webhook-endpoints``: where the tenant's webhooks go, their secrets, tests and replays."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from billing_client.calls import UNSET, Call, Unset, compact, get, path
from billing_client.models import DeletedObject, WebhookDelivery, WebhookEndpoint, WebhookReplay
from billing_client.pagination import AsyncPager, ListCall, Page, Pager
from billing_client.sending import AsyncSend, Send

# The endpoint calls take no Idempotency-Key; those whose repetition would do something twice
# (another endpoint, another secret, another replay) are marked not repeatable (see retries.py).


def create_call(
    url: str, events: Sequence[str], description: str | None, enabled: bool | None
) -> Call[WebhookEndpoint]:
    body = compact(url=url, events=list(events), description=description, enabled=enabled)
    return Call("POST", "/v1/webhook-endpoints", WebhookEndpoint.model_validate, json=body, repeatable=False)


def list_call(limit: int | None, starting_after: str | None) -> ListCall[WebhookEndpoint]:
    params = compact(limit=limit, starting_after=starting_after)
    return ListCall("/v1/webhook-endpoints", WebhookEndpoint.model_validate, params)


def update_call(
    endpoint_id: str,
    url: str | None,
    events: Sequence[str] | None,
    description: str | Unset | None,
    enabled: bool | None,
) -> Call[WebhookEndpoint]:
    body: dict[str, Any] = compact(url=url, events=list(events) if events is not None else None, enabled=enabled)
    if not isinstance(description, Unset):
        body["description"] = description  # None clears it
    return Call("PATCH", path("/v1/webhook-endpoints/{}", endpoint_id), WebhookEndpoint.model_validate, json=body)


def delete_call(endpoint_id: str) -> Call[DeletedObject]:
    return Call("DELETE", path("/v1/webhook-endpoints/{}", endpoint_id), DeletedObject.model_validate)


def rotate_secret_call(endpoint_id: str) -> Call[WebhookEndpoint]:
    return Call(
        "POST",
        path("/v1/webhook-endpoints/{}/rotate-secret", endpoint_id),
        WebhookEndpoint.model_validate,
        repeatable=False,
    )


def test_call(endpoint_id: str) -> Call[WebhookDelivery]:
    # A second webhook.test is harmless: repeatable.
    return Call("POST", path("/v1/webhook-endpoints/{}/test", endpoint_id), WebhookDelivery.model_validate)


def _rfc3339(when: datetime | str) -> str:
    if isinstance(when, str):
        return when
    if when.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def replay_call(endpoint_id: str, since: datetime | str, status: str | None) -> Call[WebhookReplay]:
    body = compact(since=_rfc3339(since), status=status)
    return Call(
        "POST",
        path("/v1/webhook-endpoints/{}/replay", endpoint_id),
        WebhookReplay.model_validate,
        json=body,
        repeatable=False,
    )


class WebhookEndpoints:
    """``client.webhook_endpoints`` of the sync client."""

    def __init__(self, send: Send) -> None:
        self._send = send

    def create(
        self,
        *,
        url: str,
        events: Sequence[str] = ("*",),
        description: str | None = None,
        enabled: bool | None = None,
    ) -> WebhookEndpoint:
        """Register an endpoint; its ``secret`` is in this answer only: keep it."""
        return self._send(create_call(url, events, description, enabled))

    def list(self, *, limit: int | None = None, starting_after: str | None = None) -> Pager[WebhookEndpoint]:
        return Pager(self._page, list_call(limit, starting_after))

    def retrieve(self, endpoint_id: str) -> WebhookEndpoint:
        return self._send(get(path("/v1/webhook-endpoints/{}", endpoint_id), WebhookEndpoint))

    def update(
        self,
        endpoint_id: str,
        *,
        url: str | None = None,
        events: Sequence[str] | None = None,
        description: str | Unset | None = UNSET,
        enabled: bool | None = None,
    ) -> WebhookEndpoint:
        """Change what is given; ``description=None`` clears the description."""
        return self._send(update_call(endpoint_id, url, events, description, enabled))

    def delete(self, endpoint_id: str) -> DeletedObject:
        return self._send(delete_call(endpoint_id))

    def rotate_secret(self, endpoint_id: str) -> WebhookEndpoint:
        """A new secret (in this answer only); webhooks are signed with both for a while."""
        return self._send(rotate_secret_call(endpoint_id))

    def test(self, endpoint_id: str) -> WebhookDelivery:
        """Send a ``webhook.test`` event to this endpoint now."""
        return self._send(test_call(endpoint_id))

    def replay(self, endpoint_id: str, *, since: datetime | str, status: str | None = None) -> WebhookReplay:
        """Deliver again the endpoint's deliveries since ``since`` (``status``: "failed", the default, or "all")."""
        return self._send(replay_call(endpoint_id, since, status))

    def _page(self, call: Call[Page[WebhookEndpoint]]) -> Page[WebhookEndpoint]:
        return self._send(call)


class AsyncWebhookEndpoints:
    """``client.webhook_endpoints`` of the async client."""

    def __init__(self, send: AsyncSend) -> None:
        self._send = send

    async def create(
        self,
        *,
        url: str,
        events: Sequence[str] = ("*",),
        description: str | None = None,
        enabled: bool | None = None,
    ) -> WebhookEndpoint:
        """Register an endpoint; its ``secret`` is in this answer only: keep it."""
        return await self._send(create_call(url, events, description, enabled))

    def list(self, *, limit: int | None = None, starting_after: str | None = None) -> AsyncPager[WebhookEndpoint]:
        return AsyncPager(self._page, list_call(limit, starting_after))

    async def retrieve(self, endpoint_id: str) -> WebhookEndpoint:
        return await self._send(get(path("/v1/webhook-endpoints/{}", endpoint_id), WebhookEndpoint))

    async def update(
        self,
        endpoint_id: str,
        *,
        url: str | None = None,
        events: Sequence[str] | None = None,
        description: str | Unset | None = UNSET,
        enabled: bool | None = None,
    ) -> WebhookEndpoint:
        """Change what is given; ``description=None`` clears the description."""
        return await self._send(update_call(endpoint_id, url, events, description, enabled))

    async def delete(self, endpoint_id: str) -> DeletedObject:
        return await self._send(delete_call(endpoint_id))

    async def rotate_secret(self, endpoint_id: str) -> WebhookEndpoint:
        """A new secret (in this answer only); webhooks are signed with both for a while."""
        return await self._send(rotate_secret_call(endpoint_id))

    async def test(self, endpoint_id: str) -> WebhookDelivery:
        """Send a ``webhook.test`` event to this endpoint now."""
        return await self._send(test_call(endpoint_id))

    async def replay(self, endpoint_id: str, *, since: datetime | str, status: str | None = None) -> WebhookReplay:
        """Deliver again the endpoint's deliveries since ``since`` (``status``: "failed", the default, or "all")."""
        return await self._send(replay_call(endpoint_id, since, status))

    async def _page(self, call: Call[Page[WebhookEndpoint]]) -> Page[WebhookEndpoint]:
        return await self._send(call)
