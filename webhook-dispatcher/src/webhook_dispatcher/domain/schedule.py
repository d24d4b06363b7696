"""What happens after an attempt: the retry schedule, jitter, Retry-After and the verdict on a response."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from billing_contracts.envelope import utcnow


@dataclass(frozen=True)
class Verdict:
    succeeded: bool
    # The endpoint said it is gone for good (410): disable it, stop retrying.
    gone: bool = False
    # Seconds the receiver asked us to wait (Retry-After on 429/503), if any.
    retry_after: float | None = None


def judge(status: int | None, retry_after_header: str | None = None) -> Verdict:
    """Success is any 2xx; a redirect is a failure (never followed); 410 means gone."""
    if status is None:
        return Verdict(succeeded=False)
    if 200 <= status < 300:
        return Verdict(succeeded=True)
    if status == 410:
        return Verdict(succeeded=False, gone=True)
    retry_after = parse_retry_after(retry_after_header) if status in (429, 503) else None
    return Verdict(succeeded=False, retry_after=retry_after)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    # ASCII digits only: str.isdigit() also accepts "²", which float() then rejects (a crash that would
    # leave the attempt unrecorded and the delivery re-sent forever).
    if re.fullmatch(r"[0-9]{1,10}", value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - utcnow()).total_seconds())


def next_delay(
    schedule: list[float],
    attempts_made: int,
    *,
    jitter: float,
    retry_after: float | None = None,
    max_retry_after: float,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds until the next attempt after ``attempts_made`` attempts failed; None = give up.

    ``schedule[i]`` is the delay before attempt ``i + 1``, so ``len(schedule)`` attempts are made.
    """
    if attempts_made >= len(schedule):
        return None
    base = schedule[attempts_made]
    delay = base * (1 + (rng or random).uniform(0, jitter)) if jitter > 0 else base
    if retry_after is not None:
        delay = max(delay, min(retry_after, max_retry_after))
    return delay
