"""Reading a provider's settlement CSV into ``StatementRecord``s, line by line, with every malformed line
named (its line number and why) instead of a guess.

The reader is a generator over the file's lines (memory flat however long the file is). It yields a
``ParsedLine`` (zero, one or two records: a Payme line cancelled after perform is a payment and its
refund) or a ``LineError``; the caller decides what to apply (nothing, when any line is bad).
"""

from __future__ import annotations

import csv
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import ClassVar

from billing_contracts.statements import StatementRecord
from pydantic import ValidationError

from reconciliation_svc.domain.currencies import AmountError, currency_code, decimal_to_minor, integer_minor

# Stripe's ``*_utc`` columns.
UTC_ZONE = UTC
# Click and Octo write local time in Tashkent, which has had no daylight-saving time since 1992.
TASHKENT = timezone(timedelta(hours=5), "Asia/Tashkent")
# A field longer than this is no id or amount we know; csv's own limit is larger.
MAX_FIELD = 255
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class RowError(ValueError):
    """One field of a line is wrong: ``column`` (None: the line as a whole) and the reason."""

    def __init__(self, column: str | None, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


@dataclass(frozen=True)
class LineError:
    line: int
    column: str | None
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class ParsedLine:
    line: int
    # Empty: a line the format documents as not ours to match (Stripe's fees and payouts).
    records: tuple[StatementRecord, ...]


class Row:
    """One line's fields by column name, with the typed reads every format needs."""

    def __init__(self, values: Mapping[str, str], line: int) -> None:
        self._values = values
        self.line = line

    def text(self, column: str) -> str:
        value = self.optional(column)
        if value is None:
            raise RowError(column, "is empty")
        return value

    def optional(self, column: str) -> str | None:
        value = (self._values.get(column) or "").strip()
        if not value:
            return None
        if len(value) > MAX_FIELD:
            raise RowError(column, f"is longer than {MAX_FIELD} characters")
        if _CONTROL.search(value):
            raise RowError(column, "contains a control character")
        return value

    def decimal(self, column: str, currency: str) -> int:
        """A decimal in the currency's major units (Click's and Octo's so'm, Stripe's report), in minor units."""
        try:
            return decimal_to_minor(self.text(column), currency)
        except AmountError as exc:
            raise RowError(column, str(exc)) from None

    def minor(self, column: str) -> int:
        """A whole number of minor units (Payme's tiyin)."""
        try:
            return integer_minor(self.text(column))
        except AmountError as exc:
            raise RowError(column, str(exc)) from None

    def currency(self, column: str) -> str:
        try:
            return currency_code(self.text(column))
        except AmountError as exc:
            raise RowError(column, str(exc)) from None

    def local_time(self, column: str, tz: timezone) -> datetime:
        """``YYYY-MM-DD HH:MM:SS`` in ``tz`` (Stripe's ``*_utc`` columns: UTC), as UTC."""
        raw = self.text(column)
        try:
            parsed = datetime.strptime(raw, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise RowError(column, f"{raw!r} is not a time like 2026-12-05 14:30:00") from None
        return parsed.replace(tzinfo=tz).astimezone(UTC)

    def millis(self, column: str) -> datetime | None:
        """A 13-digit Unix time in milliseconds (Payme's); 0 means unset (None)."""
        raw = self.text(column)
        if not raw.isdigit() or len(raw) > 13:
            raise RowError(column, f"{raw!r} is not a Unix time in milliseconds")
        value = int(raw)
        if value == 0:
            return None
        return datetime.fromtimestamp(value / 1000, UTC)

    def choice(self, column: str, choices: Mapping[str, str]) -> str:
        raw = self.text(column)
        try:
            return choices[raw.lower()]
        except KeyError:
            raise RowError(column, f"{raw!r} is not one of {', '.join(sorted(choices))}") from None


class SettlementFormat(ABC):
    """One provider's settlement file: its columns and how a line becomes records (each provider's
    format implements ``records``)."""

    provider: ClassVar[str]
    required: ClassVar[tuple[str, ...]]
    optional: ClassVar[tuple[str, ...]] = ()
    # Whether the file reports the money disputes move (``dispute`` records): a run over it then
    # compares our disputes too.
    reports_disputes: ClassVar[bool] = False

    @abstractmethod
    def records(self, row: Row, account_id: str) -> list[StatementRecord]:
        """The statement records one line holds (a refunded payment's line may hold two)."""

    def record(self, row: Row, account_id: str, **fields: object) -> StatementRecord:
        try:
            return StatementRecord.model_validate(
                {"provider": self.provider, "account_id": account_id, "origin": "csv", "line": row.line, **fields}
            )
        except ValidationError as exc:
            err = exc.errors(include_url=False, include_input=False)[0]
            raise RowError(".".join(str(p) for p in err["loc"]) or None, err["msg"]) from None


def _header(fmt: SettlementFormat, names: list[str]) -> LineError | None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return LineError(1, name, "the header names this column twice")
        seen.add(name)
    missing = [c for c in fmt.required if c not in seen]
    if missing:
        return LineError(1, None, f"the header lacks the {fmt.provider} columns {', '.join(missing)}")
    return None


def decoded_lines(raw_lines: Iterable[bytes], errors: list[LineError]) -> Iterator[str]:
    """UTF-8 lines (a byte-order mark at the start dropped, as spreadsheets write one). A line that is
    not UTF-8 is recorded in ``errors`` and given to the CSV reader empty, so numbering stays right."""
    for number, raw in enumerate(raw_lines, start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            errors.append(LineError(number, None, "is not UTF-8 text"))
            yield "\n"


def parse_settlement(
    fmt: SettlementFormat, raw_lines: Iterable[bytes], account_id: str
) -> Iterator[ParsedLine | LineError]:
    """Every line of the file, parsed or refused. The first line is the header."""
    decode_errors: list[LineError] = []
    reader = csv.reader(decoded_lines(raw_lines, decode_errors), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        yield LineError(reader.line_num or 1, None, f"not CSV: {exc}")
        return
    yield from decode_errors
    decode_errors.clear()
    if header is None or not any(h.strip() for h in header):
        yield LineError(1, None, "the file is empty (no header line)")
        return
    names = [h.strip() for h in header]
    problem = _header(fmt, names)
    if problem is not None:
        yield problem
        return
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            yield from decode_errors
            decode_errors.clear()
            yield LineError(reader.line_num, None, f"not CSV: {exc}")
            continue
        line = reader.line_num
        if decode_errors:
            yield from decode_errors
            decode_errors.clear()
            continue
        if not any(f.strip() for f in fields):
            continue  # a blank line (spreadsheets end files with them)
        if len(fields) != len(names):
            yield LineError(line, None, f"has {len(fields)} fields, the header has {len(names)}")
            continue
        try:
            yield ParsedLine(line, tuple(fmt.records(Row(dict(zip(names, fields, strict=True)), line), account_id)))
        except RowError as exc:
            yield LineError(line, exc.column, exc.reason)
        except AmountError as exc:
            yield LineError(line, None, str(exc))
