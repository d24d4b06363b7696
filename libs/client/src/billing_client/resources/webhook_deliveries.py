"""``/v1/webhook-deliveries``: every delivery of a webhook and each of its attempts."""

from __future__ import annotations

from billing_client.calls import Call, compact, get, path
from billing_client.models import WebhookDelivery
from billing_client.pagination import AsyncPager, ListCall, Page, Pager
from billing_client.sending import AsyncSend, Send


def list_call(
    endpoint_id: str | None, status: str | None, event_type: str | None, limit: int | None, starting_after: str | None
) -> ListCall[WebhookDelivery]:
    params = compact(
        endpoint_id=endpoint_id, status=status, event_type=event_type, limit=limit, starting_after=starting_after
    )
    return ListCall("/v1/webhook-deliveries", WebhookDelivery.model_validate, params)


def retry_call(delivery_id: str) -> Call[WebhookDelivery]:
    # One more attempt is harmless (receivers drop a webhook-id they have seen): repeatable.
    return Call("POST", path("/v1/webhook-deliveries/{}/retry", delivery_id), WebhookDelivery.model_validate)


class WebhookDeliveries:
    """``client.webhook_deliveries`` of the sync client."""

    def __init__(self, send: Send) -> None:
        self._send = send

    def list(
        self,
        *,
        endpoint_id: str | None = None,
        status: str | None = None,
        event_type: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> Pager[WebhookDelivery]:
        """Every delivery matching the filters (``status``: pending, succeeded, failed), newest first."""
        return Pager(self._page, list_call(endpoint_id, status, event_type, limit, starting_after))

    def retrieve(self, delivery_id: str) -> WebhookDelivery:
        """One delivery with the event sent and every attempt."""
        return self._send(get(path("/v1/webhook-deliveries/{}", delivery_id), WebhookDelivery))

    def retry(self, delivery_id: str) -> WebhookDelivery:
        """One attempt now, whatever the delivery's state."""
        return self._send(retry_call(delivery_id))

    def _page(self, call: Call[Page[WebhookDelivery]]) -> Page[WebhookDelivery]:
        return self._send(call)


class AsyncWebhookDeliveries:
    """``client.webhook_deliveries`` of the async client."""

    def __init__(self, send: AsyncSend) -> None:
        self._send = send

    def list(
        self,
        *,
        endpoint_id: str | None = None,
        status: str | None = None,
        event_type: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> AsyncPager[WebhookDelivery]:
        """Every delivery matching the filters, newest first (``async for``)."""
        return AsyncPager(self._page, list_call(endpoint_id, status, event_type, limit, starting_after))

    async def retrieve(self, delivery_id: str) -> WebhookDelivery:
        """One delivery with the event sent and every attempt."""
        return await self._send(get(path("/v1/webhook-deliveries/{}", delivery_id), WebhookDelivery))

    async def retry(self, delivery_id: str) -> WebhookDelivery:
        """One attempt now, whatever the delivery's state."""
        return await self._send(retry_call(delivery_id))

    async def _page(self, call: Call[Page[WebhookDelivery]]) -> Page[WebhookDelivery]:
        return await self._send(call)
