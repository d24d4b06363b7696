from __future__ import annotations

import pytest
from clickuz.click_authorization import click_authorization
from django.conf import settings
from providers_svc.protocols.click.signing import SignedFields, sign, verify

SECRET = "clicksecret"
PREPARE = SignedFields(
    click_trans_id="9001", service_id="111", merchant_trans_id="1", amount="1000", action="0",
    sign_time="2026-01-01 10:00:00",
)  # fmt: skip
COMPLETE = SignedFields(
    click_trans_id="9001", service_id="111", merchant_trans_id="1", merchant_prepare_id="5", amount="1000",
    action="1", sign_time="2026-01-01 10:00:00",
)  # fmt: skip


@pytest.fixture
def clickuz_settings() -> dict[str, object]:
    # clickuz reads its account from Django settings; configure them once per process, then fill per test.
    if not settings.configured:
        settings.configure(CLICK_SETTINGS={})
    click_settings: dict[str, object] = settings.CLICK_SETTINGS
    click_settings.clear()
    return click_settings


class TestSign:
    def test_doc_vector_prepare(self) -> None:
        assert sign(PREPARE, SECRET) == "f978f2d8f3422246c59290c63c966295"

    def test_doc_vector_complete(self) -> None:
        assert sign(COMPLETE, SECRET) == "e54df7ccdecbef4b65a148d4d62b5c55"

    def test_complete_covers_merchant_prepare_id(self) -> None:
        other = SignedFields(**{**COMPLETE.__dict__, "merchant_prepare_id": "6"})
        assert sign(other, SECRET) != sign(COMPLETE, SECRET)

    @pytest.mark.parametrize("amount", ["1000.0", "1000.00", "01000"])
    def test_equal_amounts_spelled_differently_sign_differently(self, amount: str) -> None:
        # The raw string is hashed, so a re-formatted amount would never verify.
        respelled = SignedFields(**{**PREPARE.__dict__, "amount": amount})
        assert sign(respelled, SECRET) != sign(PREPARE, SECRET)

    def test_secret_sits_after_service_id(self) -> None:
        assert PREPARE.message("K") == "9001111K11000" + "0" + "2026-01-01 10:00:00"


class TestSignAgainstClickuz:
    @pytest.mark.parametrize(
        "fields",
        [
            PREPARE,
            COMPLETE,
            SignedFields(
                click_trans_id="2384519385", service_id="28420", merchant_trans_id="ord_4f1c",
                amount="50000.00", action="0", sign_time="2026-11-30 23:59:59",
            ),
            SignedFields(
                click_trans_id="9223372036854775807", service_id="7", merchant_trans_id="заказ №7",
                merchant_prepare_id="00042", amount="1000.5", action="1", sign_time="2026-02-28 00:00:00",
            ),
        ],
    )  # fmt: skip
    @pytest.mark.parametrize("secret", ["clicksecret", "Sëcret key/with+chars"])
    def test_clickuz_accepts_our_signature_and_rejects_a_tampered_one(
        self, clickuz_settings: dict[str, object], fields: SignedFields, secret: str
    ) -> None:
        clickuz_settings.update(service_id=fields.service_id, secret_key=secret, merchant_user_id="1")
        ours = sign(fields, secret)
        kwargs = {
            "click_trans_id": fields.click_trans_id,
            "amount": fields.amount,
            "action": fields.action,
            "sign_time": fields.sign_time,
            "merchant_trans_id": fields.merchant_trans_id,
            "merchant_prepare_id": fields.merchant_prepare_id,
        }
        assert click_authorization(sign_string=ours, **kwargs) is True
        assert click_authorization(sign_string=ours[:-1] + ("0" if ours[-1] != "0" else "1"), **kwargs) is False


class TestVerify:
    def test_own_signature_verifies(self) -> None:
        assert verify(PREPARE, SECRET, "f978f2d8f3422246c59290c63c966295")

    def test_uppercase_hex_verifies(self) -> None:
        assert verify(PREPARE, SECRET, "F978F2D8F3422246C59290C63C966295")

    def test_other_secret_fails(self) -> None:
        assert not verify(PREPARE, "othersecret", "f978f2d8f3422246c59290c63c966295")

    @pytest.mark.parametrize(
        "given", ["", "f978", "f978f2d8f3422246c59290c63c966295 ", "\u0444978f2d8f3422246c59290c63c966295"]
    )
    def test_malformed_signature_fails_without_raising(self, given: str) -> None:
        assert verify(PREPARE, SECRET, given) is False
