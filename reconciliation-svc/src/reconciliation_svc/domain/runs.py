"""A reconciliation run: one account's statement for one period compared with our records.

States: ``queued`` → ``running`` → ``succeeded`` | ``failed``. A worker claims a queued run with a
lease; a run whose worker stopped (lease expired) is claimed again and done again from the start,
which adds nothing twice (REC-1: every discrepancy is recorded once per fact).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

RunState = Literal["queued", "running", "succeeded", "failed"]
RUN_STATES: frozenset[str] = frozenset(get_args(RunState))
# Who asked for it: the worker's daily schedule, the admin API, the command line.
RunTrigger = Literal["schedule", "admin", "cli"]
RUN_TRIGGERS: frozenset[str] = frozenset(get_args(RunTrigger))


class RunFailed(Exception):
    """A run cannot finish; ``code`` is stable (kept on the run), the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Progress:
    """What a run has done so far (shown while it runs, kept when it ends)."""

    lines_read: int = 0
    matched: int = 0
    discrepancies_found: int = 0
    # New discrepancies by kind.
    by_kind: dict[str, int] = field(default_factory=dict)

    def found(self, kind: str) -> None:
        self.discrepancies_found += 1
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
