"""Group commit: items submitted concurrently are handed to one ``flush`` call per batch, so N consumed
events or N attempt outcomes cost one transaction instead of N.

No timer: the first item starts a flush at once (after letting the items that arrived in the same loop
tick join it); items that arrive while a flush runs form the next batch. An idle system therefore adds
no latency, and a busy one batches by itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """``await submit(item)`` returns ``item``'s result once the batch holding it was flushed.

    ``flush(items)`` returns one result per item, in order. If a batch fails, each of its items is
    flushed alone, so one bad item (a poison message) fails only its own ``submit``.
    """

    def __init__(self, flush: Callable[[list[T]], Awaitable[list[R]]], *, max_batch: int) -> None:
        self._flush = flush
        self._max_batch = max(1, max_batch)
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain(), name="group-commit")
        return await future

    async def _drain(self) -> None:
        # One tick: the handlers of messages that arrived in the same read are scheduled together.
        await asyncio.sleep(0)
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            live = [(item, future) for item, future in batch if not future.cancelled()]
            if live:
                await self._flush_batch(live)

    async def _flush_batch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._flush([item for item, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc=exc)
                return
            log.warning("a batch of %d failed; flushing its items one by one", len(batch), exc_info=True)
            for one in batch:
                await self._flush_batch([one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)


def _settle(future: asyncio.Future[R], *, result: R | None = None, exc: BaseException | None = None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)  # type: ignore[arg-type]
