from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from providers_svc.protocols.click.credentials import ClickCredentials
from providers_svc.protocols.click.urls import pay_url


class TestPayUrl:
    def test_required_fields_with_amount_as_n_nn(self, credentials: ClickCredentials) -> None:
        url = pay_url(credentials, amount=5_000_000, transaction_param="ptx_1")
        assert url == (
            "https://my.click.uz/services/pay?service_id=111&merchant_id=222&amount=50000.00&transaction_param=ptx_1"
        )

    def test_return_url_is_encoded_and_cannot_inject_parameters(self, credentials: ClickCredentials) -> None:
        back = "https://shop.example/done?x=1&amount=1#frag"
        url = pay_url(credentials, amount=100_000, transaction_param="ptx_1", return_url=back)
        assert "return_url=https%3A%2F%2Fshop.example%2Fdone%3Fx%3D1%26amount%3D1%23frag" in url
        query = parse_qsl(urlsplit(url).query)
        assert [v for k, v in query if k == "amount"] == ["1000.00"]
        assert dict(query)["return_url"] == back

    def test_optional_fields(self, credentials: ClickCredentials) -> None:
        url = pay_url(credentials, amount=1, transaction_param="a b/ç", with_merchant_user_id=True, card_type="humo")
        assert dict(parse_qsl(urlsplit(url).query)) == {
            "service_id": "111",
            "merchant_id": "222",
            "amount": "0.01",
            "transaction_param": "a b/ç",
            "merchant_user_id": "333",
            "card_type": "humo",
        }
        assert "transaction_param=a%20b%2F%C3%A7" in url

    @pytest.mark.parametrize("amount", [0, -100])
    def test_non_positive_amount_is_refused(self, credentials: ClickCredentials, amount: int) -> None:
        with pytest.raises(ValueError, match="amount"):
            pay_url(credentials, amount=amount, transaction_param="ptx_1")
