"""The checkout URL of PROTOCOLS.md §2.6, and the one conversion of our amounts into tiyin."""

from __future__ import annotations

import base64
from urllib.parse import unquote

import pytest
from providers_svc.protocols.payme.amounts import from_tiyin, to_tiyin
from providers_svc.protocols.payme.checkout import PRODUCTION_URL, TEST_URL, checkout_url


def decoded(url: str, base: str) -> str:
    assert url.startswith(base)
    return base64.b64decode(url[len(base) :], validate=True).decode()


class TestCheckoutUrl:
    def test_documented_example(self) -> None:
        url = checkout_url(
            merchant_id="587f72c72cac0d162c722ae2",
            account_field="order_id",
            payment_id="197",
            amount=500,
            environment="production",
        )
        assert url == "https://checkout.paycom.uz/bT01ODdmNzJjNzJjYWMwZDE2MmM3MjJhZTI7YWMub3JkZXJfaWQ9MTk3O2E9NTAw"

    def test_language_and_return_url_in_the_documented_order(self) -> None:
        url = checkout_url(
            merchant_id="m1",
            account_field="invoice",
            payment_id="pay_1",
            amount=123456,
            environment="production",
            return_url="https://shop.example/return?payment=pay_1&x=1",
            language="uz",
        )
        assert decoded(url, PRODUCTION_URL) == (
            "m=m1;ac.invoice=pay_1;a=123456;l=uz;c=https://shop.example/return?payment=pay_1&x=1"
        )

    def test_test_account_goes_to_the_sandbox_host(self) -> None:
        url = checkout_url(merchant_id="m1", account_field="order_id", payment_id="p", amount=100, environment="test")
        assert TEST_URL == "https://test.paycom.uz/"
        assert decoded(url, TEST_URL) == "m=m1;ac.order_id=p;a=100"

    @pytest.mark.parametrize(
        ("return_url", "c"),
        [
            ("https://shop.example/r;jsessionid=1?a=1;b=2", "https://shop.example/r%3Bjsessionid=1?a=1%3Bb=2"),
            ("https://x/;a=1", "https://x/%3Ba=1"),
            ("https://x/?q=%3B", "https://x/?q=%3B"),  # already encoded: left as given
        ],
    )
    def test_a_semicolon_in_the_return_url_is_percent_encoded(self, return_url: str, c: str) -> None:
        # Payme splits on ";" with no escape (§2.6): a raw one would end c and start a bogus parameter.
        url = checkout_url(
            merchant_id="m1", account_field="order_id", payment_id="p", amount=100, environment="test",
            return_url=return_url,
        )  # fmt: skip
        parts = decoded(url, TEST_URL).split(";")
        assert parts == ["m=m1", "ac.order_id=p", "a=100", f"c={c}"]
        assert unquote(c) == unquote(return_url)

    @pytest.mark.parametrize(
        "changes",
        [
            {"amount": 0},
            {"amount": -1},
            {"amount": True},
            {"merchant_id": ""},
            {"merchant_id": "m;a=1"},
            {"account_field": "order=id"},
            {"account_field": ""},
            {"payment_id": "pay;a=1"},
            {"payment_id": ""},
            {"return_url": ""},
        ],
    )
    def test_value_that_would_change_the_parameters_is_refused(self, changes: dict[str, object]) -> None:
        arguments: dict[str, object] = {
            "merchant_id": "m1",
            "account_field": "order_id",
            "payment_id": "pay_1",
            "amount": 100,
            "environment": "test",
            **changes,
        }
        with pytest.raises(ValueError, match=r"amount|non-empty"):
            checkout_url(**arguments)  # type: ignore[arg-type]


class TestAmounts:
    def test_uzs_minor_units_are_tiyin(self) -> None:
        assert to_tiyin(1_000_00, "UZS") == 1_000_00  # 1,000 so'm
        assert from_tiyin(500) == (500, "UZS")

    @pytest.mark.parametrize(
        ("amount", "currency"), [(100, "USD"), (100, "uzs"), (0, "UZS"), (-1, "UZS"), (True, "UZS")]
    )
    def test_other_currency_or_non_positive_amount_is_refused(self, amount: int, currency: str) -> None:
        with pytest.raises(ValueError, match="Payme"):
            to_tiyin(amount, currency)
