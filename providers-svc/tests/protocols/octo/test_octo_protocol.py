"""Octo's protocol core (PROTOCOLS.md §3): exact amounts, the request bodies, reading the answers, and
the callback's parsing, signature (both documented readings) and answer."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from providers_svc.domain.transactions import TransactionStatus
from providers_svc.protocols.octo.amounts import AmountError, from_major, to_major
from providers_svc.protocols.octo.callbacks import CallbackRejected, answer, expected_signature, parse_callback, verify
from providers_svc.protocols.octo.requests import (
    PreparePayment,
    ShopCredentials,
    prepare_body,
    refund_body,
    set_accept_body,
    status_body,
)
from providers_svc.protocols.octo.responses import OctoMalformed, OctoRefused, payment_state, refund_status

SHOP = ShopCredentials(shop_id=27, secret="octo-shop-secret")
UUID = "5d3c0c2a-92ad-4a0f-9f57-06b27b6c33a1"


class TestAmounts:
    @pytest.mark.parametrize(
        ("minor", "currency", "major"),
        [(150000, "UZS", Decimal("1500.00")), (1, "USD", Decimal("0.01")), (0, "UZS", Decimal("0.00"))],
    )
    def test_round_trip_is_exact(self, minor: int, currency: str, major: Decimal) -> None:
        assert to_major(minor, currency) == major
        assert from_major(str(major), currency) == minor
        assert from_major(float(major), currency) == minor

    @pytest.mark.parametrize(
        ("value", "minor"), [(1500, 150000), (1500.1, 150010), ("1500.10", 150010), ("1e3", 100000), (" 7 ", 700)]
    )
    def test_octo_sums_in_every_documented_shape(self, value: object, minor: int) -> None:
        assert from_major(value, "UZS") == minor

    @pytest.mark.parametrize("value", ["1500.001", -1, "-0.01", "NaN", "Infinity", "abc", True, None, [1], {}])
    def test_anything_not_an_exact_amount_is_refused(self, value: object) -> None:
        with pytest.raises(AmountError):
            from_major(value, "UZS")

    @pytest.mark.parametrize("value", [-1, True, 1.5])
    def test_our_amounts_are_non_negative_integers(self, value: object) -> None:
        with pytest.raises(AmountError):
            to_major(value, "UZS")  # type: ignore[arg-type]


class TestRequests:
    def test_prepare_payment_is_explicit_and_in_major_units(self) -> None:
        body = prepare_body(
            SHOP,
            PreparePayment(
                shop_transaction_id="ptx_1",
                amount=150010,
                currency="UZS",
                description="Two books",
                return_url="http://127.0.0.1:8080/return",
                notify_url="http://127.0.0.1:8000/billing/octo",
                auto_capture=False,
                test=True,
                init_time=datetime(2026, 12, 5, 10, 0, 0, tzinfo=UTC),
                ttl_minutes=15,
            ),
        )
        assert body["auto_capture"] is False and body["test"] is True  # both always sent
        assert body["total_sum"] == 1500.1 and json.dumps(body["total_sum"]) == "1500.1"
        assert body["init_time"] == "2026-12-05 15:00:00"  # Tashkent time, UTC+5
        assert (body["octo_shop_id"], body["shop_transaction_id"], body["ttl"]) == (27, "ptx_1", 15)
        whole = prepare_body(
            SHOP, PreparePayment("ptx_2", 150000, "UZS", "d", "r", "n", True, False, datetime.now(UTC))
        )
        assert whole["total_sum"] == 1500 and isinstance(whole["total_sum"], int) and "ttl" not in whole

    def test_the_status_call_sends_only_three_fields(self) -> None:
        assert status_body(SHOP, "ptx_1") == {
            "octo_shop_id": 27,
            "octo_secret": "octo-shop-secret",
            "shop_transaction_id": "ptx_1",
        }

    def test_capture_cancel_and_refund_bodies(self) -> None:
        assert set_accept_body(SHOP, UUID, "capture", final_amount=100000)["final_amount"] == 1000
        assert "final_amount" not in set_accept_body(SHOP, UUID, "cancel")
        refund = refund_body(SHOP, UUID, "rfnd_1", 5050, "USD")
        assert (refund["shop_refund_id"], refund["amount"]) == ("rfnd_1", 50.5)

    def test_the_shop_secret_never_shows_in_a_repr(self) -> None:
        assert "octo-shop-secret" not in repr(SHOP)


class TestResponses:
    @pytest.mark.parametrize(
        "body",
        [
            {"error": 0, "data": {"shop_transaction_id": "ptx_1", "octo_payment_UUID": UUID, "status": "created",
                                  "octo_pay_url": "https://pay.octo.uz/x"}},
            {"error": 0, "shop_transaction_id": "ptx_1", "octo_payment_UUID": UUID, "status": "created",
             "octo_pay_url": "https://pay.octo.uz/x"},
        ],
    )  # fmt: skip
    def test_nested_and_flat_answers_read_alike(self, body: object) -> None:
        state = payment_state(body)
        assert (state.octo_payment_uuid, state.status, state.pay_url) == (UUID, "created", "https://pay.octo.uz/x")
        assert state.ours is TransactionStatus.PENDING

    @pytest.mark.parametrize(
        ("status", "ours"),
        [
            ("wait_user_action", TransactionStatus.PENDING),
            ("waiting_for_capture", TransactionStatus.PENDING),
            ("succeeded", TransactionStatus.SUCCEEDED),
            ("canceled", TransactionStatus.CANCELLED),
            ("failed", None),  # not in Octo's documents: never guessed
        ],
    )
    def test_statuses(self, status: str, ours: TransactionStatus | None) -> None:
        body = {"error": 0, "data": {"shop_transaction_id": "p", "octo_payment_UUID": UUID, "status": status}}
        assert payment_state(body).ours is ours

    def test_a_refusal_carries_octos_code(self) -> None:
        with pytest.raises(OctoRefused) as info:
            payment_state({"error": 2, "errMessage": "Wrong secret", "data": None})
        assert (info.value.code, info.value.message) == (2, "Wrong secret")

    @pytest.mark.parametrize(
        "body", [[], "x", {"error": "0"}, {"error": 0, "data": {"status": "created"}}, {"error": True}]
    )
    def test_malformed_answers(self, body: object) -> None:
        with pytest.raises(OctoMalformed):
            payment_state(body)

    def test_refund_statuses(self) -> None:
        assert refund_status({"error": 0, "data": {"status": "pending"}}) == "pending"
        with pytest.raises(OctoMalformed):
            refund_status({"error": 0, "data": {"status": "done"}})
        with pytest.raises(OctoRefused):
            refund_status({"error": 3, "errMessage": "bad refund amount"})


def _callback(**fields: object) -> bytes:
    body = {
        "shop_transaction_id": "ptx_1",
        "octo_payment_UUID": UUID,
        "status": "succeeded",
        "signature": "",
        "hash_key": "f0e1d2",
        "total_sum": 1500.1,
    }
    body.update(fields)
    return json.dumps(body).encode()


def _hex(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


class TestCallbacks:
    def test_the_documented_signature_reading(self) -> None:
        # sha1(sha1(secret + hash_key) + uuid + status), upper-case (§3.4), computed here independently.
        signature = _hex(_hex("octo-shop-secret" + "f0e1d2") + UUID + "succeeded").upper()
        callback = parse_callback(_callback(signature=signature))
        assert expected_signature(callback, secret="octo-shop-secret") == signature
        verify(callback, secret="octo-shop-secret")
        verify(parse_callback(_callback(signature=signature.lower())), secret="octo-shop-secret")  # any case

    def test_the_unique_key_reading(self) -> None:
        signature = _hex("octo-unique-key" + UUID + "succeeded").upper()
        callback = parse_callback(_callback(signature=signature, hash_key=None))
        verify(callback, secret="octo-unique-key", formula="unique_key")
        with pytest.raises(CallbackRejected, match="bad_signature"):
            verify(callback, secret="octo-unique-key")  # the documented reading needs a hash_key

    @pytest.mark.parametrize(
        "change",
        [{"status": "canceled"}, {"octo_payment_UUID": "other"}, {"hash_key": "ffffff"}],
    )
    def test_a_signature_over_other_fields_is_refused(self, change: dict[str, object]) -> None:
        signature = _hex(_hex("octo-shop-secret" + "f0e1d2") + UUID + "succeeded").upper()
        with pytest.raises(CallbackRejected, match="bad_signature"):
            verify(parse_callback(_callback(signature=signature, **change)), secret="octo-shop-secret")
        with pytest.raises(CallbackRejected, match="bad_signature"):
            verify(parse_callback(_callback(signature=signature)), secret="another-secret")

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            (b"{not json", "bad_json"),
            (b"[1, 2]", "bad_json"),
            (b"\xff\xfe", "bad_json"),
            (_callback(signature=None), "missing_field"),
            (_callback(status=5), "missing_field"),
            (_callback(octo_payment_UUID="x" * 300, signature="s"), "missing_field"),
        ],
    )
    def test_malformed_callbacks_are_rejected_by_reason(self, raw: bytes, reason: str) -> None:
        with pytest.raises(CallbackRejected) as info:
            parse_callback(raw)
        assert info.value.reason == reason

    def test_the_answer(self) -> None:
        assert json.loads(answer("capture")) == {"accept_status": "capture"}
        assert json.loads(answer("cancel")) == {"accept_status": "cancel"}
        assert json.loads(answer(None)) == {}
