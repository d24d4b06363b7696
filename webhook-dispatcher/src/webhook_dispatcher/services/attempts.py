"""What the dispatcher's stages hand each other: a leased delivery (``Claimed``), from the claim to the
send and the record, and what its one HTTP attempt got (``AttemptResult``), from the send to the record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Claimed:
    """One attempt this worker owns until ``token``'s lease expires."""

    delivery_id: str
    tenant_id: str
    endpoint_id: str
    event_id: str
    url: str
    body: bytes
    secrets: list[str]
    manual: bool
    token: str
    # The endpoint was healthy when claimed (not failing, a success within the last minute): a success
    # then changes nothing on the endpoint row, so recording it need not lock that row (WHK-10).
    endpoint_healthy: bool = False
    # time.monotonic() when the lease ends (taken before the claim began, so never late).
    lease_deadline: float = math.inf


@dataclass(frozen=True)
class Lease:
    """A claim token (it starts with its worker's id) and when its lease ends."""

    token: str
    # time.monotonic() when it ends (taken before the statement that leases began, so never late).
    deadline: float


@dataclass(frozen=True)
class AttemptResult:
    started_at: datetime
    latency: float
    status: int | None = None
    error: str | None = None
    response_body: str | None = None
    retry_after: str | None = None
    refused: bool = False


@dataclass(frozen=True)
class Reservation:
    """Room a dispatcher granted an ingest (``Intake.reserve``), held until ``Intake.settle``."""

    # Deliveries per endpoint the ingest may lease; already counted as held by the dispatcher.
    granted: dict[str, int]
    # The dispatcher's hand-back mark when granted (``HandBacks.overtakes``).
    mark: int = 0


class Intake(Protocol):
    """This process's dispatcher as the event consumer sees it: deliveries leased as they are stored
    (``ingest``) go straight to it, with no claim. Every reservation with something granted ends in
    exactly one ``settle``."""

    @property
    def worker_id(self) -> str:
        """The prefix of every claim token this worker takes."""
        ...

    def new_lease(self) -> tuple[Lease, datetime, datetime]:
        """A claim token of this worker's: (lease, now, until)."""
        ...

    def reserve(self, wanted: Mapping[str, int]) -> Reservation:
        """Room for up to ``wanted`` new deliveries per endpoint: what is granted counts as held by the
        dispatcher at once, so nothing else fills it meanwhile. Nothing while it is stopping, nor for
        an endpoint whose deliveries are being handed back."""
        ...

    def take(self, reservation: Reservation, claimed: list[Claimed]) -> None:
        """Deliveries leased within the reservation: queue and send them (or hand them back, when
        they would overtake deliveries handed back meanwhile)."""
        ...

    def settle(self, reservation: Reservation, used: Mapping[str, int]) -> None:
        """The reservation is over: room granted and not ``used`` is given back."""
        ...
