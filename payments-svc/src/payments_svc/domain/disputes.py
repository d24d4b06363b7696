"""Which state of a dispute wins: the rule that keeps a dispute from going back in time.

DSP-1  A state older than the one applied (by the provider's ``provider_updated_at``) changes nothing.
DSP-2  A closed dispute keeps its outcome for good: no later state reopens it or turns it into another
       outcome. A later state with the same outcome still applies (its funds may move after it closed,
       as a won dispute's are reinstated), as an ordinary change.
DSP-3  Two states of the same provider second (Stripe's times are whole seconds, and Stripe reports a
       dispute's opening and its funds' withdrawal, or its closing and the funds' reinstatement, at the
       same moment) are ordered by how far along the dispute they are (``progress``); of two equally far
       along, the first one applied stays.
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
class DisputeState:
    """One state of a dispute: ours, or one the provider reports."""

    status: str
    funds_withdrawn: bool
    provider_updated_at: datetime

    @property
    def closed(self) -> bool:
        return is_closed(self.status)

    def progress(self) -> tuple[int, int, int]:
        """How far along the dispute is, to order two states of the same provider second: open before
        closed; while open, the funds in place before they are withdrawn, and a response awaited before
        it is under review; once closed, before its funds have settled as the outcome leaves them (a
        lost dispute's withdrawn, any other's not) and then settled."""
        if self.closed:
            return (1, int(self.funds_withdrawn == (self.status == "lost")), 0)
        return (0, int(self.funds_withdrawn), int(self.status.endswith("under_review")))


def is_closed(status: str) -> bool:
    return status in CLOSED_DISPUTE_STATUSES


def verdict(held: DisputeState | None, new: DisputeState) -> Verdict:
    """What the state ``new`` does to the dispute as held."""
    if held is None:
        return Verdict.NEW
    if held.closed and new.status != held.status:
        return Verdict.FINAL
    if new.provider_updated_at > held.provider_updated_at:
        return Verdict.CHANGE
    if new.provider_updated_at == held.provider_updated_at and new.progress() > held.progress():
        return Verdict.CHANGE
    return Verdict.STALE
