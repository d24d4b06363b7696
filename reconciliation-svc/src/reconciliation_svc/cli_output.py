"""Plain terminal output of the command line: a progress bar (redrawn in place on a terminal, a line
every few seconds elsewhere) and the tables of a run's summary and of the run list."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TextIO

from reconciliation_svc.api.run_schemas import MATCHED_KINDS
from reconciliation_svc.db.run_models import RunRow
from reconciliation_svc.domain.runs import Progress

BAR_WIDTH = 30
# Off a terminal (a log file), one progress line at most this often.
LOG_EVERY = 5.0


class ProgressBar:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.started = time.monotonic()
        self.last_drawn = 0.0
        self.phase = ""

    def line(self, phase: str, progress: Progress) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        if phase == "fetching":
            return f"fetching statement  {progress.lines_read:>12,} lines  {progress.lines_read / elapsed:>10,.0f}/s"
        total = max(progress.lines_read, 1)
        fraction = min(progress.matched / total, 1.0) if phase != "finished" else 1.0
        filled = int(fraction * BAR_WIDTH)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        return (
            f"matching [{bar}] {fraction:>4.0%}  {progress.matched:>12,} compared  "
            f"{progress.matched / elapsed:>10,.0f}/s  {progress.discrepancies_found:,} found"
        )

    async def update(self, phase: str, progress: Progress) -> None:
        now = time.monotonic()
        changed = phase != self.phase
        if not changed and phase != "finished" and now - self.last_drawn < (0.1 if self.tty else LOG_EVERY):
            return
        if self.tty:
            if changed and self.phase:
                self.out.write("\n")
            self.out.write("\r" + self.line(phase, progress))
            if phase == "finished":
                self.out.write("\n")
        else:
            self.out.write(self.line(phase, progress) + "\n")
        self.out.flush()
        self.phase = phase
        self.last_drawn = now


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(isinstance(row[i], int) for row in rows) and bool(rows) for i in range(len(headers))]

    def render(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(row, widths, numeric, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([render(cells[0]), rule, *(render(r) for r in cells[1:])])


def _cell(value: object) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def run_summary(run: RunRow, seconds: float) -> str:
    head = (
        f"run {run.id}  account {run.account_id} ({run.provider or 'unknown provider'})  "
        f"{run.period_from} .. {run.period_to}  {run.state} in {seconds:.1f} s"
    )
    if run.error_code:
        head += f"\n  error {run.error_code}: {run.error}"
    counts = [(kind, int((run.summary or {}).get(kind, 0))) for kind in MATCHED_KINDS]
    rows: list[tuple[str, int]] = [
        ("statement lines read", run.lines_read),
        ("records compared", run.matched),
        *((f"new {kind}", n) for kind, n in counts),
        ("new discrepancies", run.discrepancies_found),
    ]
    return head + "\n\n" + table(("", "count"), rows)


def runs_table(runs: Sequence[RunRow]) -> str:
    return table(
        ("id", "state", "account", "provider", "from", "to", "trigger", "lines", "found", "created"),
        [
            (
                r.id,
                r.state,
                r.account_id,
                r.provider,
                r.period_from.isoformat(),
                r.period_to.isoformat(),
                r.trigger,
                r.lines_read,
                r.discrepancies_found,
                r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            )
            for r in runs
        ],
    )
