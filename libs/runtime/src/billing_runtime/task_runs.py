"""The last pass of each background loop a process runs (sweepers, janitors), kept in memory: the
process's heartbeat (``billing_runtime.heartbeats``) writes them to its row, where the service's status
endpoint (``billing_runtime.status``) reads them, whichever process serves it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from billing_contracts.envelope import utcnow

from billing_runtime.redaction import redact

# An error is kept only to say what went wrong, never a dump.
_ERROR_CHARS = 300


@dataclass
class TaskRun:
    started_at: datetime
    finished_at: datetime | None = None
    # "running", then "succeeded" or "failed".
    outcome: str = "running"
    error: str | None = None
    # What the pass did, as the loop tells it (counts: expired, healed, ...).
    counts: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "last_started_at": self.started_at.isoformat(),
            "last_finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "outcome": self.outcome,
            "error": self.error,
            "counts": dict(self.counts),
        }


class TaskRuns:
    """One per process (``Plumbing.runs``). A loop wraps each pass in ``track(name)``."""

    def __init__(self) -> None:
        self._last: dict[str, TaskRun] = {}

    @contextlib.contextmanager
    def track(self, name: str) -> Iterator[dict[str, int]]:
        """The pass's run: started now, finished when the block ends (failed if it raised, with the
        error's type and message, redacted). The dict yielded takes the pass's counts."""
        run = TaskRun(started_at=utcnow())
        self._last[name] = run
        try:
            yield run.counts
        except BaseException as exc:
            run.outcome = "failed" if isinstance(exc, Exception) else "cancelled"
            run.error = redact(f"{type(exc).__name__}: {exc}")[:_ERROR_CHARS]
            raise
        else:
            run.outcome = "succeeded"
        finally:
            run.finished_at = utcnow()

    def as_json(self) -> dict[str, dict[str, Any]]:
        return {name: run.as_json() for name, run in self._last.items()}
