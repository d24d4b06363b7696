"""Matching a statement with the projection finds every kind of discrepancy once, with the evidence of
both sides, and a second run over the same period adds nothing (REC-1)."""

from __future__ import annotations

from datetime import timedelta

from reconciliation_svc.services.runs import execute_run

from .conftest import NOON, Seeder, line

NEXT_MIDNIGHT = NOON + timedelta(hours=12)


async def _seed_every_kind(seed: Seeder) -> str:
    # Agreeing pairs: by our id, by the provider's id alone, and across midnight within the margin.
    await seed.payment("pay_ok", reference="1001")
    await seed.payment("pay_byref", reference="1002")
    await seed.payment("pay_edge", reference="1003", at=NEXT_MIDNIGHT - timedelta(seconds=30))
    # Ours and nothing at the provider: a success (found), a pending and a failure (not money: fine),
    # and a success of the day before (another run's period).
    await seed.payment("pay_gone", reference="1004")
    await seed.payment("pay_pending", status="PROVIDER_PENDING")
    await seed.payment("pay_failed", status="FAILED")
    await seed.payment("pay_yesterday", reference="1005", at=NOON - timedelta(days=1))
    await seed.payment("pay_amount", reference="1006")
    await seed.payment("pay_currency", reference="1007", currency="USD", amount=5000)
    await seed.payment("pay_status", reference="1008", status="FAILED")
    await seed.payment("pay_twice", reference="1009")
    await seed.payment("pay_tworefs", reference="1010")
    await seed.payment("pay_refunded", reference="1011", status="REFUNDED")
    # Refunds.
    await seed.refund("rfnd_ok", "pay_refunded", provider_refund_id="1011")
    await seed.refund("rfnd_gone", "pay_ok", amount=1000, provider_refund_id="r-404")
    await seed.refund("rfnd_amount", "pay_amount", amount=2000, provider_refund_id="r-2")
    records = [
        line("1001", payment_id="pay_ok"),
        line("1002"),
        line("1003", payment_id="pay_edge", at=NEXT_MIDNIGHT + timedelta(seconds=30)),
        line("1006", payment_id="pay_amount", amount=400_000),
        line("1007", payment_id="pay_currency", amount=5000, currency="UZS"),
        line("1008", payment_id="pay_status"),
        line("1009", payment_id="pay_twice"),
        line("1009", payment_id="pay_twice"),
        line("1010", payment_id="pay_tworefs"),
        line("1099", payment_id="pay_tworefs"),
        line("1011", payment_id="pay_refunded", status="refunded"),
        # The provider took money for a payment we have never heard of; and a failed attempt we
        # have no record of either (no money moved: nothing to report).
        line("2001", payment_id="pay_unknown"),
        line("2002", payment_id="pay_declined", status="failed"),
        line("1011", kind="refund", payment_id="pay_refunded"),
        line("r-2", kind="refund", amount=2500),
        line("r-9", kind="refund", amount=700, payment_id="pay_ok"),
    ]
    return await seed.statement(records)


EXPECTED = {
    ("missing_at_provider", "click", "pay_gone", None),
    ("amount_mismatch", "click", "pay_amount", None),
    ("currency_mismatch", "click", "pay_currency", None),
    ("status_mismatch", "click", "pay_status", None),
    ("duplicate", "click", "pay_twice", None),
    ("duplicate", "click", "pay_tworefs", None),
    ("missing_ours", "click", "pay_unknown", None),
    ("missing_at_provider", "click", "pay_ok", "rfnd_gone"),
    ("amount_mismatch", "click", "pay_amount", "rfnd_amount"),
    ("missing_ours", "click", "pay_ok", None),
}


class TestMatching:
    async def test_every_kind_is_found_once_and_a_second_run_adds_nothing(self, seed: Seeder, run_deps) -> None:  # type: ignore[no-untyped-def]
        statement_id = await _seed_every_kind(seed)
        run = await seed.claimed_run(statement_id=statement_id)
        finished = await execute_run(run_deps, run)
        assert finished is not None
        assert finished.state == "succeeded", finished.error
        found = await seed.discrepancies()
        assert {(d.kind, d.provider, d.payment_id, d.refund_id) for d in found} == EXPECTED
        assert len(found) == len(EXPECTED)
        assert finished.discrepancies_found == len(EXPECTED)
        assert finished.summary == {
            "missing_at_provider": 2,
            "amount_mismatch": 2,
            "currency_mismatch": 1,
            "status_mismatch": 1,
            "duplicate": 2,
            "missing_ours": 2,
        }
        assert finished.lines_read == 16
        assert finished.provider == "click"

        second = await execute_run(run_deps, await seed.claimed_run(statement_id=statement_id))
        assert second is not None and second.state == "succeeded"
        assert second.discrepancies_found == 0
        assert second.summary == {}
        assert len(await seed.discrepancies()) == len(EXPECTED)

    async def test_evidence_holds_both_records(self, seed: Seeder, run_deps) -> None:  # type: ignore[no-untyped-def]
        statement_id = await _seed_every_kind(seed)
        run = await seed.claimed_run(statement_id=statement_id)
        await execute_run(run_deps, run)
        by_key = {d.dedupe_key: d for d in await seed.discrepancies()}
        amount = by_key["amount_mismatch:click:pay_amount"]
        assert amount.ours["amount"] == 500_000 and amount.ours["status"] == "SUCCEEDED"
        assert amount.theirs["amount"] == 400_000 and amount.theirs["provider_reference"] == "1006"
        assert amount.run_id == run.id and amount.account_id == "pac_a"
        duplicate = by_key["duplicate:click:pay_tworefs"]
        assert duplicate.theirs["count"] == 2
        assert {t["provider_reference"] for t in duplicate.theirs["lines"]} == {"1010", "1099"}
        missing = by_key["missing_at_provider:click:pay_gone"]
        assert missing.theirs is None and missing.ours["id"] == "pay_gone"
        unknown_refund = by_key["missing_ours:click:refund:r-9"]
        assert unknown_refund.ours is None and unknown_refund.theirs["amount"] == 700

    async def test_a_refund_line_and_a_payment_line_of_one_provider_id_never_share_a_key(
        self, seed: Seeder, run_deps
    ) -> None:  # type: ignore[no-untyped-def]
        # Payme and Click name a refund with the payment's own provider id.
        statement_id = await seed.statement(
            [line("3001", status="refunded"), line("3001", kind="refund")], account="pac_a"
        )
        await execute_run(run_deps, await seed.claimed_run(statement_id=statement_id))
        keys = {d.dedupe_key for d in await seed.discrepancies()}
        assert keys == {"missing_ours:click:3001", "missing_ours:click:refund:3001"}
