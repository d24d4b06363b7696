from __future__ import annotations

from decimal import Decimal

import pytest
from providers_svc.protocols.click.amounts import format_som, parse_som, som_from_tiyin, som_matches_tiyin


class TestParseSom:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("1000", Decimal("1000")),
            ("1000.0", Decimal("1000.0")),
            ("1000.00", Decimal("1000.00")),
            ("1000.5", Decimal("1000.5")),
            ("0", Decimal(0)),
            ("9" * 60, Decimal("9" * 60)),
        ],
    )
    def test_plain_decimal_parses_exactly(self, raw: str, expected: Decimal) -> None:
        parsed = parse_som(raw)
        assert parsed == expected
        assert str(parsed) == raw  # the exact digits, not a rounded float

    @pytest.mark.parametrize(
        "raw",
        ["1e3", "1E3", "-1000", "+1000", " 1000", "1000 ", "1000\n", "1,000.00", "1_000", ".5", "5.", "1000.00.0",
         "NaN", "Infinity", "0x10", "\u0661\u0660\u0660\u0660", "\uff11\uff10\uff10\uff10", ""],
    )  # fmt: skip
    def test_anything_else_is_malformed(self, raw: str) -> None:
        assert parse_som(raw) is None


class TestSomMatchesTiyin:
    @pytest.mark.parametrize("raw", ["1000", "1000.0", "1000.00", "1000.000"])
    def test_spellings_of_one_thousand_match_100000_tiyin(self, raw: str) -> None:
        som = parse_som(raw)
        assert som is not None
        assert som_matches_tiyin(som, 100_000)

    @pytest.mark.parametrize("raw", ["1000.01", "999.99", "1000.001", "100000", "10", "0"])
    def test_other_amounts_do_not_match(self, raw: str) -> None:
        som = parse_som(raw)
        assert som is not None
        assert not som_matches_tiyin(som, 100_000)

    def test_digits_beyond_decimal_precision_are_not_rounded_away(self) -> None:
        # 30 significant digits: a rounding comparison (context precision 28) would call these equal.
        tiyin = 10**29 + 1
        assert not som_matches_tiyin(Decimal(f"{10**27}.00"), tiyin)
        assert som_matches_tiyin(Decimal(f"{10**27}.01"), tiyin)

    def test_largest_bigint_amount_round_trips(self) -> None:
        tiyin = 2**63 - 1
        assert som_matches_tiyin(Decimal(format_som(tiyin)), tiyin)


class TestFormatSom:
    @pytest.mark.parametrize(
        ("tiyin", "expected"), [(100_000, "1000.00"), (5_000_000, "50000.00"), (1, "0.01"), (123_45, "123.45")]
    )
    def test_two_decimals(self, tiyin: int, expected: str) -> None:
        assert format_som(tiyin) == expected
        assert som_from_tiyin(tiyin) == Decimal(expected)
