"""Settlement files per provider: good files become statement records in minor units with the right
exponent; each kind of malformed line is named with its line number, its column and why."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from reconciliation_svc.domain.currencies import AmountError, decimal_to_minor
from reconciliation_svc.domain.settlement_csv import FORMATS, LineError, ParsedLine, parse_settlement


def parse(provider: str, text: str) -> list[ParsedLine | LineError]:
    return list(parse_settlement(FORMATS[provider], io.BytesIO(text.encode()), "pac_a"))


def records(provider: str, text: str):  # type: ignore[no-untyped-def]
    parsed = parse(provider, text)
    assert all(isinstance(p, ParsedLine) for p in parsed), parsed
    return [r for p in parsed for r in p.records]  # type: ignore[union-attr]


def errors(provider: str, text: str) -> list[tuple[int, str | None, str]]:
    return [(e.line, e.column, e.reason) for e in parse(provider, text) if isinstance(e, LineError)]


STRIPE_HEADER = (
    "balance_transaction_id,created_utc,currency,gross,fee,net,reporting_category,source_id,charge_id,"
    "payment_intent_id,customer_facing_amount,customer_facing_currency,payment_metadata[payment_id],"
    "refund_metadata[refund_id]\n"
)


class TestStripeBalanceReport:
    def test_charges_and_refunds_are_read_in_minor_units_and_fees_skipped(self) -> None:
        text = (
            "\ufeff"  # the byte-order mark spreadsheets write
            + STRIPE_HEADER
            + "txn_1,2026-12-04 10:00:00,usd,50.00,1.75,48.25,charge,ch_1,ch_1,pi_1,,,pay_a,\n"
            + "txn_2,2026-12-04 11:00:00,eur,-12.50,0.00,-12.50,refund,re_1,ch_2,pi_2,,,pay_b,rfnd_b\n"
            + "txn_3,2026-12-04 12:00:00,usd,-1.75,0,-1.75,fee,,,,,,,\n"
            + "txn_4,2026-12-04 13:00:00,usd,54.10,1,53.10,charge,ch_4,ch_4,pi_4,5000,jpy,pay_c,\n"
            + "txn_5,2026-12-04 14:00:00,usd,12.50,0,12.50,refund_failure,re_1,ch_2,pi_2,,,pay_b,rfnd_b\n"
        )
        parsed = parse("stripe", text)
        assert [p.records == () for p in parsed if isinstance(p, ParsedLine)] == [False, False, True, False, False]
        charge, refund, converted, failure = records("stripe", text)
        assert (charge.kind, charge.provider_reference, charge.payment_id) == ("payment", "pi_1", "pay_a")
        assert (charge.amount, charge.currency, charge.status) == (5000, "USD", "succeeded")
        assert charge.occurred_at == datetime(2026, 12, 4, 10, tzinfo=UTC)
        assert (charge.origin, charge.line, charge.account_id) == ("csv", 2, "pac_a")
        assert (refund.kind, refund.provider_reference, refund.refund_id) == ("refund", "re_1", "rfnd_b")
        assert (refund.amount, refund.currency, refund.status) == (1250, "EUR", "succeeded")
        # A charge Stripe converted: our payment holds what the customer paid (JPY has no decimals).
        assert (converted.amount, converted.currency) == (5000, "JPY")
        assert (failure.kind, failure.status, failure.amount) == ("refund", "failed", 1250)

    def test_a_disputes_withdrawal_and_reversal_are_dispute_records(self) -> None:
        text = (
            STRIPE_HEADER
            + "txn_1,2026-12-04 10:00:00,usd,-50.00,15.00,-65.00,dispute,dp_1,ch_1,pi_1,,,pay_a,\n"
            + "txn_2,2026-12-20 10:00:00,usd,50.00,-15.00,65.00,dispute_reversal,dp_1,ch_1,pi_1,,,pay_a,\n"
            + "txn_3,2026-12-04 10:00:00,usd,-50.00,15.00,-65.00,dispute,,ch_2,,,,,\n"
        )
        withdrawn, reinstated, unnamed = records("stripe", text)
        assert (withdrawn.kind, withdrawn.status, withdrawn.amount, withdrawn.currency) == (
            "dispute",
            "withdrawn",
            5000,
            "USD",
        )
        assert (withdrawn.provider_reference, withdrawn.payment_reference, withdrawn.payment_id) == (
            "dp_1",
            "pi_1",
            "pay_a",
        )
        assert (reinstated.kind, reinstated.status, reinstated.amount) == ("dispute", "reinstated", 5000)
        # No dispute id: the line is named by its payment (the charge, with no intent).
        assert (unnamed.provider_reference, unnamed.payment_reference) == ("ch_2", "ch_2")

    @pytest.mark.parametrize(
        ("row", "column", "reason"),
        [
            ("txn_1,2026-12-04 10:00:00,usd,50.00,0,0,dispute,dp_1,ch_1,pi_1,,,,", "gross", "negative"),
            ("txn_1,2026-12-04 10:00:00,usd,-50.00,0,0,dispute_reversal,dp_1,ch_1,pi_1,,,,", "gross", "positive"),
            ("txn_1,2026-12-04 10:00:00,usd,-50.00,0,0,dispute,,,,,,,", "source_id", "names no"),
            ("txn_1,2026-12-04 10:00:00,usd,50.001,0,0,charge,ch_1,ch_1,pi_1,,,,", "gross", "more decimals than USD"),
            ('txn_1,2026-12-04 10:00:00,usd,"1,000.00",0,0,charge,ch_1,ch_1,pi_1,,,,', "gross", "not a decimal"),
            ("txn_1,2026-12-04 10:00:00,xyz,50.00,0,0,charge,ch_1,ch_1,pi_1,,,,", "currency", "unknown currency"),
            ("txn_1,04/12/2026,usd,50.00,0,0,charge,ch_1,ch_1,pi_1,,,,", "created_utc", "is not a time"),
            ("txn_1,2026-12-04 10:00:00,usd,50.00,0,0,charge,,,,,,,", "payment_intent_id", "names no"),
            ("txn_1,2026-12-04 10:00:00,usd,-50.00,0,0,charge,ch_1,ch_1,pi_1,,,,", "gross", "positive"),
            ("txn_1,2026-12-04 10:00:00,usd,50.00,0,0,refund,re_1,,,,,,", "gross", "negative"),
            ("txn_1,2026-12-04 10:00:00,usd,50.00,0,0,mystery,x,,,,,,", "reporting_category", "not a category"),
            ("txn_1,2026-12-04 10:00:00,usd,50.00,0,0,charge,ch_1,ch_1,pi\x00,,,,", "payment_intent_id", "control"),
        ],
    )
    def test_a_malformed_line_is_named_with_its_column_and_reason(self, row: str, column: str, reason: str) -> None:
        [(line, got_column, got_reason)] = errors("stripe", STRIPE_HEADER + row + "\n")
        assert (line, got_column) == (2, column)
        assert reason in got_reason


PAYME_HEADER = "id,time,amount,account,state,create_time,perform_time,cancel_time,reason\n"


class TestPaymeReport:
    def test_tiyin_are_minor_units_and_a_cancel_after_perform_is_a_refund(self) -> None:
        text = (
            PAYME_HEADER
            + "5e730e8e0b852a417aa49ceb,1764842400000,500000,pay_a,2,1764842400000,1764842460000,0,\n"
            + "5e730e8e0b852a417aa49cec,1764842400000,150000,pay_b,-2,1764842400000,1764842460000,1764846000000,5\n"
            + "5e730e8e0b852a417aa49ced,1764842400000,150000,pay_c,-1,1764842400000,0,1764846000000,4\n"
        )
        paid, reversed_payment, refund, cancelled = records("payme", text)
        assert (paid.amount, paid.currency, paid.status, paid.payment_id) == (500000, "UZS", "succeeded", "pay_a")
        assert paid.occurred_at == datetime.fromtimestamp(1764842460, UTC)
        assert reversed_payment.status == "refunded"
        assert (refund.kind, refund.status, refund.provider_reference) == (
            "refund",
            "succeeded",
            "5e730e8e0b852a417aa49cec",
        )
        assert refund.occurred_at == datetime.fromtimestamp(1764846000, UTC)
        assert cancelled.status == "cancelled"

    @pytest.mark.parametrize(
        ("row", "column", "reason"),
        [
            ("t1,1764842400000,5000.00,pay_a,2,1764842400000,1764842460000,0,", "amount", "whole number"),
            ("t1,1764842400000,0,pay_a,2,1764842400000,1764842460000,0,", "amount", "positive"),
            ("t1,1764842400000,500,pay_a,3,1764842400000,1764842460000,0,", "state", "is not one of"),
            ("t1,1764842400000,500,pay_a,2,1764842400000,0,0,", "perform_time", "is 0"),
            ("t1,1764842400000,500,pay_a,-2,1764842400000,1764842460000,0,", "cancel_time", "is 0"),
            ("t1,1764842400000,500,,2,1764842400000,1764842460000,0,", "account", "is empty"),
            ("t1,2026-12-04,500,pay_a,2,1764842400000,1764842460000,0,", "time", "milliseconds"),
        ],
    )
    def test_a_malformed_line_is_named_with_its_column_and_reason(self, row: str, column: str, reason: str) -> None:
        [(line, got_column, got_reason)] = errors("payme", PAYME_HEADER + row + "\n")
        assert (line, got_column) == (2, column)
        assert reason in got_reason


CLICK_HEADER = "click_trans_id,click_paydoc_id,merchant_trans_id,amount,status,payment_date,reversal_date\n"


class TestClickSettlement:
    def test_som_with_decimals_in_tashkent_time(self) -> None:
        text = (
            CLICK_HEADER
            + "9001,77001,pay_a,50000.00,success,2026-12-04 10:00:00,\n"
            + "9002,77002,pay_b,1000.5,reversed,2026-12-04 11:00:00,2026-12-04 15:30:00\n"
            + "9003,77003,pay_c,1000,error,2026-12-04 12:00:00,\n"
        )
        paid, reversed_payment, refund, failed = records("click", text)
        assert (paid.amount, paid.currency, paid.provider_reference) == (5_000_000, "UZS", "9001")
        # 10:00 in Tashkent (UTC+5) is 05:00 UTC.
        assert paid.occurred_at == datetime(2026, 12, 4, 5, tzinfo=UTC)
        assert (reversed_payment.status, reversed_payment.amount) == ("refunded", 100_050)
        assert (refund.kind, refund.occurred_at) == ("refund", datetime(2026, 12, 4, 10, 30, tzinfo=UTC))
        assert failed.status == "failed"

    @pytest.mark.parametrize(
        ("row", "column", "reason"),
        [
            ("9001,1,pay_a,1000.555,success,2026-12-04 10:00:00,", "amount", "more decimals than UZS has (2)"),
            ("9001,1,pay_a,1e3,success,2026-12-04 10:00:00,", "amount", "not a decimal"),
            ("9001,1,pay_a,-5.00,success,2026-12-04 10:00:00,", "amount", "positive"),
            ("9001,1,pay_a,NaN,success,2026-12-04 10:00:00,", "amount", "not a decimal"),
            ("9001,1,pay_a,5.00,paid,2026-12-04 10:00:00,", "status", "is not one of"),
            ("abc,1,pay_a,5.00,success,2026-12-04 10:00:00,", "click_trans_id", "not a Click transaction"),
            ("9001,1,pay_a,5.00,success,2026-02-30 10:00:00,", "payment_date", "is not a time"),
            ("9001,1,pay_a,5.00,success", None, "has 5 fields, the header has 7"),
        ],
    )
    def test_a_malformed_line_is_named_with_its_column_and_reason(
        self, row: str, column: str | None, reason: str
    ) -> None:
        [(line, got_column, got_reason)] = errors("click", CLICK_HEADER + row + "\n")
        assert (line, got_column) == (2, column)
        assert reason in got_reason


OCTO_HEADER = "type,octo_id,shop_transaction_id,shop_refund_id,status,total_sum,currency,time\n"


class TestOctoSettlement:
    def test_payments_and_refunds_in_their_currency(self) -> None:
        text = (
            OCTO_HEADER
            + "payment,3f1c-uuid,pay_a,,succeeded,15000.50,UZS,2026-12-04 10:00:00\n"
            + "payment,3f1d-uuid,pay_b,,waiting_for_capture,12.34,USD,2026-12-04 10:00:00\n"
            + "refund,rf-77,pay_a,rfnd_a,succeeded,500.00,UZS,2026-12-04 18:00:00\n"
        )
        paid, held, refund = records("octo", text)
        assert (paid.amount, paid.currency, paid.status) == (1_500_050, "UZS", "succeeded")
        assert (held.amount, held.currency, held.status) == (1234, "USD", "pending")
        assert (refund.kind, refund.refund_id, refund.payment_id, refund.amount) == (
            "refund",
            "rfnd_a",
            "pay_a",
            50_000,
        )

    @pytest.mark.parametrize(
        ("row", "column", "reason"),
        [
            ("transfer,x,pay_a,,succeeded,1.00,UZS,2026-12-04 10:00:00", "type", "is not one of"),
            ("refund,x,pay_a,,succeeded,1.00,UZS,2026-12-04 10:00:00", "shop_refund_id", "is empty"),
            ("payment,x,pay_a,,succeeded,1.00,UZ,2026-12-04 10:00:00", "currency", "unknown currency"),
            ("payment,x,pay_a,,paid,1.00,UZS,2026-12-04 10:00:00", "status", "is not one of"),
        ],
    )
    def test_a_malformed_line_is_named_with_its_column_and_reason(self, row: str, column: str, reason: str) -> None:
        [(line, got_column, got_reason)] = errors("octo", OCTO_HEADER + row + "\n")
        assert (line, got_column) == (2, column)
        assert reason in got_reason


class TestWholeFile:
    def test_an_empty_file_a_missing_column_and_a_repeated_column_are_line_1(self) -> None:
        assert errors("click", "") == [(1, None, "the file is empty (no header line)")]
        [(line, column, reason)] = errors("click", "click_trans_id,amount\n9001,5.00\n")
        assert (line, column) == (1, None) and "merchant_trans_id" in reason and "payment_date" in reason
        [(line, column, reason)] = errors("click", CLICK_HEADER.strip() + ",amount\n")
        assert (line, column) == (1, "amount")

    def test_line_numbers_count_physical_lines_past_blank_and_multiline_ones(self) -> None:
        text = (
            OCTO_HEADER
            + "\n"
            + 'payment,"a\nb",pay_a,,succeeded,1.00,UZS,2026-12-04 10:00:00\n'
            + "payment,x,pay_a,,succeeded,oops,UZS,2026-12-04 10:00:00\n"
        )
        assert errors("octo", text) == [
            (5, "total_sum", "'oops' is not a decimal amount (digits and one '.', no separators)")
        ]

    def test_a_line_that_is_not_utf8_is_named(self) -> None:
        raw = (
            CLICK_HEADER + "9001,1,pay_a,5.00,success,2026-12-04 10:00:00,\n"
        ).encode() + b"9002,1,pay_\xff,5.00,success,2026-12-04 10:00:00,\n"
        found = [
            (e.line, e.reason)
            for e in parse_settlement(FORMATS["click"], io.BytesIO(raw), "pac_a")
            if isinstance(e, LineError)
        ]
        assert found == [(3, "is not UTF-8 text")]

    def test_only_a_header_is_an_empty_statement(self) -> None:
        assert parse("click", CLICK_HEADER) == []


class TestDecimalToMinor:
    @pytest.mark.parametrize(
        ("raw", "currency", "minor"),
        [
            ("50000.00", "UZS", 5_000_000),
            ("0.5", "USD", 50),
            ("5000", "JPY", 5000),
            ("1.234", "KWD", 1234),
            ("-12.50", "EUR", -1250),
        ],
    )
    def test_exact(self, raw: str, currency: str, minor: int) -> None:
        assert decimal_to_minor(raw, currency) == minor

    @pytest.mark.parametrize(
        ("raw", "currency"), [("1.5", "JPY"), ("1.0001", "KWD"), ("Infinity", "USD"), ("1_000", "USD")]
    )
    def test_refused(self, raw: str, currency: str) -> None:
        with pytest.raises(AmountError):
            decimal_to_minor(raw, currency)
