"""What the dispatcher's stages hand each other: a leased delivery (``Claimed``), from the claim to the
send and the record, and what its one HTTP attempt got (``AttemptResult``), from the send to the record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime


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
class AttemptResult:
    started_at: datetime
    latency: float
    status: int | None = None
    error: str | None = None
    response_body: str | None = None
    retry_after: str | None = None
    refused: bool = False
