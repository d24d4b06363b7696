from __future__ import annotations

from datetime import date

import pytest
from providers_svc.protocols.click.credentials import ClickCredentials
from providers_svc.protocols.click.merchant_api import (
    auth_header,
    payment_reversal,
    payment_status,
    payment_status_by_merchant_trans_id,
)

TS = 1519051543
DOC_DIGEST = "f0e40dd29030d3a7f4256eb8926b3290d96c345a"  # PROTOCOLS.md §1.10, secret "clicksecret"


class TestAuthHeader:
    def test_doc_vector(self, credentials: ClickCredentials) -> None:
        assert auth_header(credentials, TS) == f"333:{DOC_DIGEST}:{TS}"

    def test_depends_on_timestamp_and_secret(self, credentials: ClickCredentials) -> None:
        other_secret = credentials.model_copy(update={"secret_key": "other"})
        assert auth_header(credentials, TS + 1).split(":")[1] != DOC_DIGEST
        assert auth_header(other_secret, TS).split(":")[1] != DOC_DIGEST

    @pytest.mark.parametrize("timestamp", [999_999_999, 10_000_000_000, 1519051543000, 0, -1])
    def test_not_ten_digit_seconds_is_refused(self, credentials: ClickCredentials, timestamp: int) -> None:
        with pytest.raises(ValueError, match="10-digit"):
            auth_header(credentials, timestamp)


class TestRequests:
    def test_status_by_merchant_trans_id(self, credentials: ClickCredentials) -> None:
        request = payment_status_by_merchant_trans_id(credentials, "ptx_1", date(2026, 1, 2), timestamp=TS)
        assert request.method == "GET"
        assert request.url == "https://api.click.uz/v2/merchant/payment/status_by_mti/111/ptx_1/2026-01-02"
        assert request.headers == {
            "Auth": f"333:{DOC_DIGEST}:{TS}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        assert request.body is None

    def test_merchant_trans_id_cannot_escape_its_path_segment(self, credentials: ClickCredentials) -> None:
        request = payment_status_by_merchant_trans_id(credentials, "../a/b?c#d", date(2026, 1, 2), timestamp=TS)
        assert request.path == "/payment/status_by_mti/111/..%2Fa%2Fb%3Fc%23d/2026-01-02"

    def test_payment_status(self, credentials: ClickCredentials) -> None:
        request = payment_status(credentials, 77001, timestamp=TS)
        assert (request.method, request.url) == ("GET", "https://api.click.uz/v2/merchant/payment/status/111/77001")

    def test_reversal(self, credentials: ClickCredentials) -> None:
        request = payment_reversal(credentials, 77001, timestamp=TS)
        assert (request.method, request.url) == (
            "DELETE",
            "https://api.click.uz/v2/merchant/payment/reversal/111/77001",
        )
        assert request.headers["Auth"] == f"333:{DOC_DIGEST}:{TS}"
        assert request.body is None

    @pytest.mark.parametrize("payment_id", [0, -1])
    def test_non_positive_payment_id_is_refused(self, credentials: ClickCredentials, payment_id: int) -> None:
        with pytest.raises(ValueError, match="payment_id"):
            payment_reversal(credentials, payment_id, timestamp=TS)


class TestCredentials:
    def test_secret_is_not_in_repr(self, credentials: ClickCredentials) -> None:
        assert "clicksecret" not in repr(credentials)

    def test_numeric_strings_are_accepted_and_garbage_refused(self) -> None:
        creds = ClickCredentials.model_validate(
            {"service_id": "111", "merchant_id": "222", "merchant_user_id": "333", "secret_key": "k"}
        )
        assert creds.service_id == 111
        with pytest.raises(ValueError, match="service_id"):
            ClickCredentials.model_validate(
                {"service_id": "abc", "merchant_id": "222", "merchant_user_id": "333", "secret_key": "k"}
            )
