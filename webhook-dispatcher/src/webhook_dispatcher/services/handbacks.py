"""Hand-backs and order: a delivery queued too long behind slow requests is handed back unsent with
everything queued behind it (``Dispatcher._pump``), so the next claim takes the endpoint's deliveries
again, oldest first. Until that hand-back commits, its deliveries are still leased to this worker, so a
claim or an ingest running meanwhile would lease the endpoint's newer deliveries and send them first.
``HandBacks`` tells which endpoints those are, so what was leased of them is handed back as well.
"""

from __future__ import annotations

from collections import Counter


class HandBacks:
    """One per dispatcher. A claim or an ingest's reservation ``open``s a mark before it reads the
    database and ``close``s it when its deliveries are queued; a hand-back ``begin``s and ``end``s."""

    def __init__(self) -> None:
        self._count = 0
        # Endpoint → the count when its last hand-back began, kept while a claim or reservation that
        # could predate it is open (``_open``), then forgotten: no later one can predate it.
        self._began: dict[str, int] = {}
        self._running: Counter[str] = Counter()
        self._open = 0

    def begin(self, endpoint_id: str) -> None:
        self._count += 1
        self._began[endpoint_id] = self._count
        self._running[endpoint_id] += 1

    def end(self, endpoint_id: str) -> None:
        self._running[endpoint_id] -= 1
        if self._running[endpoint_id] <= 0:
            del self._running[endpoint_id]

    def running(self) -> list[str]:
        """The endpoints with a hand-back not yet committed: claim and reserve none of them."""
        return list(self._running)

    def mark(self) -> int:
        """The mark of a claim or reservation beginning now (without opening one)."""
        return self._count

    def open(self) -> int:
        """A claim or a reservation begins; its mark, for ``overtakes``."""
        self._open += 1
        return self._count

    def close(self) -> None:
        self._open -= 1
        if self._open <= 0:
            self._open = 0
            self._began.clear()

    def overtakes(self, endpoint_id: str, mark: int) -> bool:
        """Whether a delivery of ``endpoint_id`` leased under ``mark`` could go ahead of deliveries
        handed back: a hand-back of the endpoint is running, or began after the mark."""
        return endpoint_id in self._running or self._began.get(endpoint_id, 0) > mark
