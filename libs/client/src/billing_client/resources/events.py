"""``/v1/events``: the tenant's event log, oldest first, for backfill."""

from __future__ import annotations

from billing_client.calls import Call, compact
from billing_client.models import Event
from billing_client.pagination import AsyncPager, ListCall, Page, Pager
from billing_client.sending import AsyncSend, Send


def list_call(after: str | None, type_: str | None, limit: int | None) -> ListCall[Event]:
    # The log pages with ``after``: the id of the last event seen. Keep it, and a later
    # ``list(after=it)`` resumes with nothing missed however many events were written meanwhile.
    params = compact(after=after, type=type_, limit=limit)
    return ListCall("/v1/events", Event.model_validate, params, cursor="after")


class Events:
    """``client.events`` of the sync client."""

    def __init__(self, send: Send) -> None:
        self._send = send

    def list(self, *, after: str | None = None, type: str | None = None, limit: int | None = None) -> Pager[Event]:
        """Every event after the event ``after`` (from the first if omitted), oldest first."""
        return Pager(self._page, list_call(after, type, limit))

    def _page(self, call: Call[Page[Event]]) -> Page[Event]:
        return self._send(call)


class AsyncEvents:
    """``client.events`` of the async client."""

    def __init__(self, send: AsyncSend) -> None:
        self._send = send

    def list(self, *, after: str | None = None, type: str | None = None, limit: int | None = None) -> AsyncPager[Event]:
        """Every event after the event ``after`` (from the first if omitted), oldest first (``async for``)."""
        return AsyncPager(self._page, list_call(after, type, limit))

    async def _page(self, call: Call[Page[Event]]) -> Page[Event]:
        return await self._send(call)
