"""The janitor's schedule of one pending object (REC-7): asked at fixed ages of its pending state (5 min,
1 h), then every ``repeat`` (daily) while it stays pending. Pure: the clock is passed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class CheckSchedule:
    ages: tuple[timedelta, ...]
    repeat: timedelta
    # After an answer that says nothing (providers-svc unavailable, an error), ask again this soon;
    # the schedule's steps are not spent on it.
    retry: timedelta

    @classmethod
    def of_seconds(cls, ages: tuple[float, ...], repeat: float, retry: float) -> CheckSchedule:
        return cls(tuple(timedelta(seconds=a) for a in ages), timedelta(seconds=repeat), timedelta(seconds=retry))

    @property
    def first(self) -> timedelta:
        return self.ages[0]

    def after_check(self, pending_since: datetime, now: datetime) -> datetime:
        """When to ask next, after a check answered at ``now``: the next age of the schedule still
        ahead (a janitor that was down skips the ages it missed rather than asking several times in
        a row), else ``repeat`` from now."""
        for age in self.ages:
            due = pending_since + age
            if due > now:
                return due
        return now + self.repeat

    def after_failed_check(self, now: datetime) -> datetime:
        return now + self.retry
