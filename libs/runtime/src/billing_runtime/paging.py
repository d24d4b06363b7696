"""The query of a list as API.md pages them (``GET /v1/payments``): ``limit`` (1-100, default 20) and
either an ``offset``, capped so that no request scans without bound, or one of Stripe's cursors,
``starting_after=<id>`` (the objects after that one in the list's order: older) or
``ending_before=<id>`` (the ones before it: newer). Pure: each service finds the cursor's object and
reads the page itself, by a keyset on its list's own order, so a page deep in the list costs what the
first one does and objects inserted meanwhile never shift it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from billing_contracts.problems import FieldError

from billing_runtime.errors import ProblemError
from billing_runtime.validation import query_int

# Capped: an offset is a scan of everything before it (cursors are not).
MAX_OFFSET = 10_000
# What an object id looks like (``billing_runtime.ids.new_id``); anything else is refused unread.
ID_PATTERN = r"^[a-z]{2,8}_[0-9a-z]{1,40}$"
ID_MAX_LENGTH = 49
_ID = re.compile(ID_PATTERN)

T = TypeVar("T")
Direction = Literal["starting_after", "ending_before"]


@dataclass(frozen=True)
class Cursor:
    """``starting_after``: the objects after ``object_id`` (older); ``ending_before``: those before it
    (newer). Newest first either way."""

    direction: Direction
    object_id: str


@dataclass(frozen=True)
class ListPaging:
    limit: int
    offset: int
    cursor: Cursor | None

    @property
    def fetch(self) -> int:
        """Rows to read: one more than shown tells whether there are more."""
        return self.limit + 1

    @property
    def starting_after(self) -> str | None:
        return self.cursor.object_id if self.cursor and self.cursor.direction == "starting_after" else None

    @property
    def ending_before(self) -> str | None:
        return self.cursor.object_id if self.cursor and self.cursor.direction == "ending_before" else None

    def page(self, rows: Sequence[T]) -> tuple[list[T], bool]:
        """The rows shown and ``has_more``, from up to ``fetch`` rows in the list's order (newest first).
        Before an ``ending_before`` cursor the rows are the nearest newer ones, so the extra row is the
        newest (the first), not the last; ``has_more`` then says that newer objects remain."""
        has_more = len(rows) > self.limit
        shown = rows[-self.limit :] if self.ending_before is not None else rows[: self.limit]
        return list(shown), has_more


def list_paging(query: Mapping[str, str], *, what: str = "object") -> ListPaging:
    """``limit``, ``offset`` and the cursors of ``query``, or a 422 ``validation_error`` naming the
    field: an offset beyond ``MAX_OFFSET``, both cursors, a cursor with an offset, a cursor that
    cannot be an id (``what``: the kind of object the message names)."""
    limit = query_int(query.get("limit"), "limit", default=20, lo=1, hi=100)
    offset = query_int(query.get("offset"), "offset", default=0, lo=0, hi=MAX_OFFSET)
    given = [name for name in ("starting_after", "ending_before") if query.get(name) is not None]
    if len(given) > 1:
        raise _invalid("ending_before", "cannot be combined with starting_after")
    if not given:
        return ListPaging(limit, offset, None)
    direction: Direction = "starting_after" if given[0] == "starting_after" else "ending_before"
    if offset:
        raise _invalid("offset", f"cannot be combined with {direction}")
    object_id = query[direction]
    if not _ID.fullmatch(object_id):
        raise _invalid(direction, f"must be a {what} id")
    return ListPaging(limit, 0, Cursor(direction, object_id))


def unknown_cursor(cursor: Cursor) -> ProblemError:
    """The 422 for a cursor that names no object of the list: the same answer for an unknown id and
    one the caller may not see (another tenant's), so nothing is revealed."""
    return _invalid(cursor.direction, "no such object", f"{cursor.direction}: no such object")


def _invalid(field: str, message: str, detail: str | None = None) -> ProblemError:
    return ProblemError(
        422, "validation_error", detail or f"{field} {message}", errors=[FieldError(field=field, message=message)]
    )
