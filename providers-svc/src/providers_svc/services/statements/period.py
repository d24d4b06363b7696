"""The period of a statement: ``[start, end)`` in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# Rows read per page of our own tables.
PAGE = 500


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def last_ms(self) -> int:
        """The period's last millisecond (Payme's ``to`` is inclusive)."""
        return int(self.end.timestamp() * 1000) - 1
