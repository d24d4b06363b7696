"""A reconciliation period: whole UTC days ``from``..``to`` (both included), and the window a run reads.

A provider stamps a payment with its own clock (Stripe's balance transaction, Payme's perform time),
which may fall a little before or after ours across midnight. So a run reads both sides over the
period widened by a margin, compares every pair it finds, but reports a record as missing only when
it lies inside the period itself: the neighbouring day's run owns the rest (README "Matching rules").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

# A run covers at most this many days: the work of one run stays bounded.
MAX_PERIOD_DAYS = 92


@dataclass(frozen=True)
class Period:
    first_day: date
    last_day: date

    def __post_init__(self) -> None:
        if self.last_day < self.first_day:
            raise ValueError("the period ends before it starts")
        if (self.last_day - self.first_day).days >= MAX_PERIOD_DAYS:
            raise ValueError(f"a period covers at most {MAX_PERIOD_DAYS} days")

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time(), UTC)

    @property
    def end(self) -> datetime:
        """Exclusive: midnight after the last day."""
        return datetime.combine(self.last_day + timedelta(days=1), time(), UTC)

    def window(self, margin: timedelta) -> Window:
        return Window(self.start, self.end, self.start - margin, self.end + margin)


@dataclass(frozen=True)
class Window:
    """``[start, end)`` the period; ``[read_from, read_to)`` what the run reads of both sides."""

    start: datetime
    end: datetime
    read_from: datetime
    read_to: datetime

    def owns(self, at: datetime | None) -> bool:
        return at is not None and self.start <= at < self.end


def yesterday(now: datetime) -> Period:
    day = now.astimezone(UTC).date() - timedelta(days=1)
    return Period(day, day)
