"""Our Payme checkout URL (§2.6), Click pay URL (§1.9) and ``sign_string`` (§1.4), and Octo's unique_key
callback signature (§3.4) against paytechuz 0.4.1, an independent implementation (PROTOCOLS.md §5b).

paytechuz is wrong in places: each known difference from PROTOCOLS.md is asserted as a difference, with
why we do not follow it, never papered over. Only its URL-building and signing code runs (its clients
are built but never call out); its Click and Octo checks, inside its Django views, run in a subprocess
(``paytechuz_django.py``)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from paytechuz.core.utils import generate_basic_auth
from paytechuz.gateways.click.client import ClickGateway
from paytechuz.gateways.payme.client import PaymeGateway
from paytechuz.gateways.payme.constants import PaymeCancelReason
from providers_svc.protocols.click.amounts import format_som
from providers_svc.protocols.click.credentials import ClickCredentials
from providers_svc.protocols.click.signing import SignedFields, sign
from providers_svc.protocols.click.urls import pay_url
from providers_svc.protocols.octo.callbacks import Callback, expected_signature
from providers_svc.protocols.payme.auth import LOGIN, authenticate
from providers_svc.protocols.payme.checkout import checkout_url
from providers_svc.protocols.payme.states import CancelReason

MERCHANT = "587f72c72cac0d162c722ae2"
RETURN = "https://shop.example/c/tok_1/return"


def payme_params(url: str) -> tuple[str, list[str]]:
    """The host and the ";"-separated parts of a checkout URL, as Payme reads them."""
    parts = urlsplit(url)
    return parts.netloc, base64.b64decode(parts.path.lstrip("/")).decode().split(";")


def theirs_payme(*, som: float | str, return_url: str = RETURN, test: bool = True, field: str = "order_id") -> str:
    gateway = PaymeGateway(payme_id=MERCHANT, payme_key="unused", is_test_mode=test)
    return gateway.generate_pay_link(id="pay_1", amount=som, return_url=return_url, account_field_name=field)


def ours_payme(*, tiyin: int, return_url: str | None = RETURN, test: bool = True, field: str = "order_id") -> str:
    return checkout_url(
        merchant_id=MERCHANT, account_field=field, payment_id="pay_1", amount=tiyin,
        environment="test" if test else "production", return_url=return_url, language="uz",
    )  # fmt: skip


class TestPaymeCheckoutUrl:
    @pytest.mark.parametrize(("som", "tiyin"), [(5, 500), (12_500, 1_250_000), ("1250000.50", 125_000_050)])
    @pytest.mark.parametrize("test", [True, False])
    @pytest.mark.parametrize("field", ["order_id", "pay_id"])
    def test_the_fields_both_write_agree(self, som: float | str, tiyin: int, test: bool, field: str) -> None:
        their_host, theirs = payme_params(theirs_payme(som=som, test=test, field=field))
        our_host, ours = payme_params(ours_payme(tiyin=tiyin, test=test, field=field))
        assert our_host == their_host == ("test.paycom.uz" if test else "checkout.paycom.uz")
        # Merchant, account field and order, tiyin, return URL: the same parts, in the same order.
        assert theirs == [f"m={MERCHANT}", f"ac.{field}=pay_1", f"a={tiyin}", f"c={RETURN}"]
        # Ours adds the checkout language (§2.6 "l"), which paytechuz never writes.
        assert ours == [*theirs[:3], "l=uz", theirs[3]]

    def test_the_documented_example(self) -> None:
        # §2.6's worked example has no return URL; paytechuz always writes "c", so compare without it.
        gateway = PaymeGateway(payme_id=MERCHANT, is_test_mode=False)
        link = gateway.generate_pay_link(id="197", amount=5, return_url="")
        ours = checkout_url(merchant_id=MERCHANT, account_field="order_id", payment_id="197", amount=500,
                            environment="production")  # fmt: skip
        assert ours == "https://checkout.paycom.uz/bT01ODdmNzJjNzJjYWMwZDE2MmM3MjJhZTI7YWMub3JkZXJfaWQ9MTk3O2E9NTAw"
        assert payme_params(link)[1] == [*payme_params(ours)[1], "c="]

    @pytest.mark.parametrize(("som", "tiyin", "their_tiyin"), [(0.29, 29, 28), (19.99, 1999, 1998)])
    def test_known_difference_paytechuz_converts_through_a_float(
        self, som: float, tiyin: int, their_tiyin: int
    ) -> None:
        # int(float(som) * 100) truncates 28.999999999999996 to 28: Payme would ask to charge a tiyin
        # short, which the merchant's CheckPerformTransaction refuses (-31001). We never convert:
        # our amounts are tiyin (UZS minor units) from the start.
        assert payme_params(theirs_payme(som=som))[1][2] == f"a={their_tiyin}"
        assert payme_params(ours_payme(tiyin=tiyin))[1][2] == f"a={tiyin}"

    def test_known_difference_a_semicolon_in_the_return_url(self) -> None:
        # Payme splits on ";" with no escape (§2.6): paytechuz's raw URL ends "c" early and adds a
        # bogus "v" parameter; ours writes the ";" as %3B and keeps one "c".
        url = RETURN + ";v=2"
        assert payme_params(theirs_payme(som=5, return_url=url))[1][3:] == [f"c={RETURN}", "v=2"]
        assert payme_params(ours_payme(tiyin=500, return_url=url))[1][4:] == [f"c={RETURN}%3Bv=2"]

    def test_known_difference_no_return_url(self) -> None:
        # paytechuz writes an empty "c=" when there is none; we leave "c" out, as §2.6's example does.
        assert payme_params(theirs_payme(som=5, return_url=""))[1][-1] == "c="
        assert not any(p.startswith("c=") for p in payme_params(ours_payme(tiyin=500, return_url=None))[1])

    @pytest.mark.parametrize("key", ["TEST_KEY_0123456789abcdefghijklmnopq", "k&y:with/odd+chars=="])
    def test_paytechuz_basic_auth_authenticates_with_us(self, key: str) -> None:
        assert authenticate(generate_basic_auth(LOGIN, key), [("pac_1", key)]) == "pac_1"

    def test_known_difference_cancel_reasons(self) -> None:
        # §2.3: 1-5 and 10 (the official template); paytechuz has 1-9 with 6 as "unknown".
        theirs = {v for k, v in vars(PaymeCancelReason).items() if k.startswith("REASON_")}
        assert theirs == set(range(1, 10))
        assert {int(r) for r in CancelReason} == {1, 2, 3, 4, 5, 10}
        assert PaymeCancelReason.REASON_UNKNOWN == 6 != int(CancelReason.UNKNOWN)


CLICK = ClickCredentials(service_id=28420, merchant_id=11111, merchant_user_id=22222, secret_key="clicksecret")


def click_gateway() -> ClickGateway:
    return ClickGateway(
        service_id=str(CLICK.service_id), merchant_id=str(CLICK.merchant_id),
        merchant_user_id=str(CLICK.merchant_user_id), secret_key=CLICK.secret_key,
    )  # fmt: skip


def query(url: str) -> tuple[str, list[tuple[str, str]]]:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", parse_qsl(parts.query, keep_blank_values=True)


class TestClickPayUrl:
    @pytest.mark.parametrize("tiyin", [100, 5_000_000, 1_234_567])
    @pytest.mark.parametrize("order", ["pay_1", "ord-7"])
    def test_the_parameters_both_write_agree(self, tiyin: int, order: str) -> None:
        # paytechuz passes the amount through as given: give it §1.9's N.NN (ours, format_som).
        theirs = click_gateway().create_payment(id=order, amount=format_som(tiyin), return_url=RETURN)
        ours = pay_url(CLICK, amount=tiyin, transaction_param=order, return_url=RETURN, with_merchant_user_id=True)
        their_base, their_params = query(theirs)
        our_base, our_params = query(ours)
        assert our_base == their_base == "https://my.click.uz/services/pay"
        assert (
            dict(our_params)
            == dict(their_params)
            == {
                "service_id": "28420",
                "merchant_id": "11111",
                "amount": format_som(tiyin),
                "transaction_param": order,
                "return_url": RETURN,
                "merchant_user_id": "22222",
            }
        )

    def test_known_difference_a_return_url_with_its_own_query(self) -> None:
        # §1.9: "URL-encode return_url". paytechuz does not: the return URL's "&x=2" becomes a pay-page
        # parameter of its own and Click sends the payer back without it. Ours arrives whole.
        url = "https://shop.example/done?order=1&x=2"
        theirs = click_gateway().create_payment(id="pay_1", amount="1.00", return_url=url)
        ours = pay_url(CLICK, amount=100, transaction_param="pay_1", return_url=url)
        assert dict(query(theirs)[1])["return_url"] == "https://shop.example/done?order=1"
        assert dict(query(theirs)[1])["x"] == "2"
        assert dict(query(ours)[1])["return_url"] == url


SIGNED = [
    SignedFields(
        click_trans_id="9001", service_id="111", merchant_trans_id="1", amount="1000", action="0",
        sign_time="2026-01-01 10:00:00",
    ),
    SignedFields(
        click_trans_id="9001", service_id="111", merchant_trans_id="1", merchant_prepare_id="5", amount="1000",
        action="1", sign_time="2026-01-01 10:00:00",
    ),
    SignedFields(
        click_trans_id="2384519385", service_id="28420", merchant_trans_id="ord_4f1c", amount="50000.00",
        action="0", sign_time="2026-11-30 23:59:59",
    ),
    SignedFields(
        click_trans_id="9223372036854775807", service_id="7", merchant_trans_id="заказ №7",
        merchant_prepare_id="00042", amount="1000.5", action="1", sign_time="2026-02-28 00:00:00",
    ),
]  # fmt: skip
SECRETS = ["clicksecret", "Sëcret key/with+chars"]
OCTO_KEY = "octo-unique-key-from-octos-team"
OCTO_CASES = [
    ("ptx_01jabc", "9c5f0d4e-1a2b-4c3d-8e9f-001122334455", "succeeded"),
    ("ptx_01jabd", "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "waiting_for_capture"),
    ("ptx_01jabe", "UUID-with-Upper", "canceled"),
]


def click_case(fields: SignedFields, secret: str, sign_string: str) -> dict[str, Any]:
    params = {k: v for k, v in vars(fields).items() if v is not None}
    return {"service_id": fields.service_id, "secret_key": secret, "params": {**params, "sign_string": sign_string}}


def tampered(signature: str) -> str:
    return signature[:-1] + ("0" if signature[-1] != "0" else "1")


@pytest.fixture(scope="module")
def paytechuz_checks() -> dict[str, list[bool]]:
    """Every Click and Octo case below, answered by paytechuz's own checks in one subprocess."""
    click = [
        click_case(fields, secret, signature)
        for fields in SIGNED
        for secret in SECRETS
        for signature in (sign(fields, secret), tampered(sign(fields, secret)))
    ]
    octo = []
    for txn, uuid, status in OCTO_CASES:
        callback = Callback(txn, uuid, status, "", "a1b2c3d4e5f60718", None, {})
        unique = expected_signature(callback, secret=OCTO_KEY, formula="unique_key")
        documented = expected_signature(callback, secret=OCTO_KEY, formula="documented")
        for signature in (unique, unique.lower(), tampered(unique), documented):
            octo.append({"unique_key": OCTO_KEY, "uuid": uuid, "status": status, "signature": signature})
    script = Path(__file__).with_name("paytechuz_django.py")
    done = subprocess.run(
        [sys.executable, str(script)],
        input=json.dumps({"click": click, "octo": octo}),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    answers: dict[str, list[bool]] = json.loads(done.stdout)
    assert len(answers["click"]) == len(click) and len(answers["octo"]) == len(octo)
    return answers


class TestClickSignString:
    def test_paytechuz_accepts_ours_and_refuses_a_tampered_one(self, paytechuz_checks: dict[str, list[bool]]) -> None:
        # Pairs (ours, tampered) for each Prepare/Complete and secret: the §1.4 vectors and odd strings.
        assert paytechuz_checks["click"] == [True, False] * (len(SIGNED) * len(SECRETS))


class TestOctoSignature:
    def test_paytechuz_reads_our_unique_key_signature_and_not_the_documented_one(
        self, paytechuz_checks: dict[str, list[bool]]
    ) -> None:
        # Per case: ours (upper-case), ours lower-cased (paytechuz upper-cases both sides, as we do),
        # tampered, and the documented reading. Known difference: paytechuz ignores hash_key, so the
        # documented reading (sha1(sha1(secret + hash_key) + uuid + status)) is never its answer; §3.4
        # leaves the choice to the account (signature_formula), documented by default.
        assert paytechuz_checks["octo"] == [True, True, False, False] * len(OCTO_CASES)
