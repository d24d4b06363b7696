from __future__ import annotations

import pytest
from checkout_web.money import currency_symbol, format_amount


class TestFormatAmount:
    @pytest.mark.parametrize(
        ("amount", "currency", "exponent", "expected"),
        [
            (5000, "USD", 2, "$50.00"),
            (5, "USD", 2, "$0.05"),
            (0, "USD", 2, "$0.00"),
            (123456, "EUR", 2, "€1,234.56"),
            (999, "GBP", 2, "£9.99"),
            (500, "JPY", 0, "¥500"),
            (1234567, "JPY", 0, "¥1,234,567"),
            (150000, "UZS", 2, "1 500.00 UZS"),
            (50, "UZS", 2, "0.50 UZS"),
            (150000, "HUF", 2, "1 500.00 HUF"),
            (1500, "HUF", 0, "1 500 HUF"),
            (1500, "BHD", 3, "1.500 BHD"),
            (7, "KWD", 3, "0.007 KWD"),
            (10000, "CLF", 4, "1.0000 CLF"),
            (1000, "KRW", 0, "1 000 KRW"),
        ],
    )
    def test_formats_for_the_currency(self, amount: int, currency: str, exponent: int, expected: str) -> None:
        assert format_amount(amount, currency, exponent) == expected

    def test_large_amounts_are_exact(self) -> None:
        assert format_amount(123456789012345, "USD", 2) == "$1,234,567,890,123.45"
        # Past 2**53, where a float would already have lost the last digits.
        assert format_amount(9007199254740993, "UZS", 2) == "90 071 992 547 409.93 UZS"

    def test_negative_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="negative"):
            format_amount(-1, "USD", 2)

    @pytest.mark.parametrize("amount", [50.0, "5000", True, None])
    def test_non_integer_is_rejected(self, amount: object) -> None:
        with pytest.raises(TypeError):
            format_amount(amount, "USD", 2)  # type: ignore[arg-type]

    @pytest.mark.parametrize("exponent", [-1, 5, True])
    def test_unsupported_exponent_is_rejected(self, exponent: int) -> None:
        with pytest.raises(ValueError, match="exponent"):
            format_amount(100, "USD", exponent)


class TestCurrencySymbol:
    def test_only_unambiguous_symbols(self) -> None:
        assert currency_symbol("USD") == "$"
        assert currency_symbol("CAD") is None
        assert currency_symbol("CNY") is None
