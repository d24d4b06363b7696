"""Auto-paging over the API's cursor lists: iterate, and the next page is fetched when one runs out.

Every list answers ``{"data": [...], "has_more": bool}``; the next page starts after the last id seen
(``starting_after`` on most lists, ``after`` on the event log), which stays correct however many
objects are written meanwhile and however deep one pages (offsets are capped by the server).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Protocol, TypeVar

from billing_client.calls import Call, Params


class HasId(Protocol):
    @property
    def id(self) -> str: ...


ItemT = TypeVar("ItemT", bound=HasId)


@dataclass(frozen=True)
class Page(Generic[ItemT]):
    data: list[ItemT]
    has_more: bool

    @property
    def next_cursor(self) -> str | None:
        return self.data[-1].id if self.has_more and self.data else None


@dataclass(frozen=True)
class ListCall(Generic[ItemT]):
    """A list operation: its path and filters, how to read an item, and the name of its cursor."""

    path: str
    item: Callable[[Any], ItemT]
    params: Params = field(default_factory=dict)
    cursor: str = "starting_after"

    def page(self, after: str | None) -> Call[Page[ItemT]]:
        params = dict(self.params)
        if after is not None:
            params[self.cursor] = after
        return Call("GET", self.path, self._read, params=params)

    def first(self) -> str | None:
        value = self.params.get(self.cursor)
        return None if value is None else str(value)

    def _read(self, body: Any) -> Page[ItemT]:
        return Page([self.item(x) for x in body["data"]], bool(body.get("has_more")))

    def without_cursor(self) -> ListCall[ItemT]:
        return replace(self, params={k: v for k, v in self.params.items() if k != self.cursor})


class Pager(Generic[ItemT]):
    """Iterates every item of a list (sync), fetching page after page; ``pages()`` yields whole pages."""

    def __init__(self, send: Callable[[Call[Page[ItemT]]], Page[ItemT]], spec: ListCall[ItemT]) -> None:
        self._send = send
        self._spec = spec

    def pages(self) -> Iterator[Page[ItemT]]:
        cursor = self._spec.first()
        spec = self._spec.without_cursor()
        while True:
            page = self._send(spec.page(cursor))
            yield page
            cursor = page.next_cursor
            if cursor is None:
                return

    def __iter__(self) -> Iterator[ItemT]:
        for page in self.pages():
            yield from page.data


class AsyncPager(Generic[ItemT]):
    """Iterates every item of a list (``async for``), fetching page after page; ``pages()`` yields pages."""

    def __init__(self, send: Callable[[Call[Page[ItemT]]], Awaitable[Page[ItemT]]], spec: ListCall[ItemT]) -> None:
        self._send = send
        self._spec = spec

    async def pages(self) -> AsyncIterator[Page[ItemT]]:
        cursor = self._spec.first()
        spec = self._spec.without_cursor()
        while True:
            page = await self._send(spec.page(cursor))
            yield page
            cursor = page.next_cursor
            if cursor is None:
                return

    async def __aiter__(self) -> AsyncIterator[ItemT]:
        async for page in self.pages():
            for item in page.data:
                yield item
