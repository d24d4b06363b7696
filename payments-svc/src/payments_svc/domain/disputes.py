"""Which state of a dispute wins: the rule that keeps a dispute from going back in time.

DSP-1  A state older than the one applied (by the provider's ``provider_updated_at``) changes nothing.
DSP-2  A closed dispute keeps its outcome for good: no later state reopens it or turns it into another
       outcome. A later state with the same outcome still applies (its funds may move after it closed,
       as a won dispute's are reinstated), as an ordinary change.
DSP-3  Two states of the same provider second (Stripe's times are whole seconds) are told apart only
       when one closes the dispute: the closing one wins; otherwise the first one applied stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from billing_contracts.events.disputes import CLOSED_DISPUTE_STATUSES


class Verdict(StrEnum):
    # The first state we learn of this dispute: it is recorded (``dispute.created``).
    NEW = "new"
    # A newer state of a dispute we hold: it replaces the one held.
    CHANGE = "change"
    # Not newer than the state held (DSP-1, DSP-3): nothing changes.
    STALE = "stale"
    # Another outcome, or an open state, for a dispute already closed (DSP-2): nothing changes.
    FINAL = "final"


@dataclass(frozen=True)
class HeldState:
    """The state of a dispute as we hold it."""

    status: str
    provider_updated_at: datetime

    @property
    def closed(self) -> bool:
        return is_closed(self.status)


def is_closed(status: str) -> bool:
    return status in CLOSED_DISPUTE_STATUSES


def verdict(held: HeldState | None, status: str, provider_updated_at: datetime) -> Verdict:
    """What a state (``status`` at ``provider_updated_at``) does to the dispute as held."""
    if held is None:
        return Verdict.NEW
    if held.closed and status != held.status:
        return Verdict.FINAL
    if provider_updated_at > held.provider_updated_at:
        return Verdict.CHANGE
    if provider_updated_at == held.provider_updated_at and is_closed(status) and not held.closed:
        return Verdict.CHANGE
    return Verdict.STALE
