"""Hand-backs and order: a delivery queued too long behind slow requests is handed back unsent with
everything queued behind it (``SendSlots._pump``), so the next claim takes the endpoint's deliveries
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
        # predates it is open, then forgotten: no later one can predate it.
        self._began: dict[str, int] = {}
        self._running: Counter[str] = Counter()
        # The marks of the claims and reservations open now (mark → how many).
        self._open: Counter[int] = Counter()

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
        """A claim or a reservation begins; its mark, for ``overtakes`` and ``close``."""
        self._open[self._count] += 1
        return self._count

    def close(self, mark: int) -> None:
        self._open[mark] -= 1
        if self._open[mark] <= 0:
            del self._open[mark]
        # What began at or before the oldest mark still open matters to none of them, nor to any later.
        oldest = min(self._open, default=self._count)
        self._began = {endpoint_id: n for endpoint_id, n in self._began.items() if n > oldest}

    def overtakes(self, endpoint_id: str, mark: int) -> bool:
        """Whether a delivery of ``endpoint_id`` leased under ``mark`` could go ahead of deliveries
        handed back: a hand-back of the endpoint is running, or began after the mark."""
        return endpoint_id in self._running or self._began.get(endpoint_id, 0) > mark
