"""Disputes reconciled: their states projected from ``provider.dispute.updated`` (through the consumer's
``apply_event``, in any order) as money movements, and matched with the ``dispute`` and
``dispute_reversal`` lines of Stripe's itemized balance report imported as a file (real PostgreSQL)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from billing_contracts.events import ProviderDispute, ProviderDisputeUpdatedV1
from billing_runtime.db import make_sessionmaker
from reconciliation_svc.db.models import outbox
from reconciliation_svc.services.imports import import_settlement
from reconciliation_svc.services.projection import ProjectionDeps, apply_event
from reconciliation_svc.services.runs import execute_run
from reconciliation_svc.services.uow import ReconUnitOfWork
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import NOON, Seeder

STRIPE_HEADER = (
    "balance_transaction_id,created_utc,currency,gross,fee,net,reporting_category,source_id,charge_id,"
    "payment_intent_id,customer_facing_amount,customer_facing_currency,payment_metadata[payment_id],"
    "refund_metadata[refund_id]\n"
)
OPENED = NOON - timedelta(hours=3)


@pytest.fixture
def deps(clean_db: AsyncEngine) -> ProjectionDeps:
    sessions = make_sessionmaker(clean_db)
    return ProjectionDeps(lambda: ReconUnitOfWork(sessions, outbox), timedelta(minutes=5))


@pytest.fixture
def dispute_state(deps: ProjectionDeps) -> Callable[..., Any]:
    """``await dispute_state(status, withdrawn, at)``: one state of dispute dp_1 of pay_1 consumed."""

    async def apply(
        status: str, withdrawn: bool, at: datetime, *, dispute: str = "dp_1", payment: str = "pay_1"
    ) -> None:
        event = ProviderDisputeUpdatedV1(
            tenant_id="ten_a",
            data=ProviderDispute(
                payment_id=payment,
                provider="stripe",
                provider_transaction_id="ptx_1",
                provider_dispute_id=dispute,
                status=status,
                reason="fraudulent",
                amount=5000,
                currency="USD",
                funds_withdrawn=withdrawn,
                provider_created_at=OPENED,
                provider_updated_at=at,
            ),
        )
        assert await apply_event(deps, event) == "applied"

    return apply


async def import_report(engine: AsyncEngine, *rows: str) -> str:
    body = (STRIPE_HEADER + "".join(rows)).encode()
    imported = await import_settlement(
        engine,
        provider="stripe",
        account_id="pac_a",
        source=io.BytesIO(body),
        sha256=hashlib.sha256(body).hexdigest(),
        filename="stripe.csv",
        created_by="test",
    )
    return str(imported.statement.id)


def report_row(
    txn: str, at: datetime, gross: str, category: str, *, fee: str = "0", dispute: str = "dp_1", intent: str = "pi_1"
) -> str:
    stamp = at.strftime("%Y-%m-%d %H:%M:%S")
    return f"{txn},{stamp},usd,{gross},{fee},,{category},{dispute},ch_1,{intent},,,,\n"


async def run_over(seed: Seeder, run_deps: Any, statement_id: str) -> Any:
    finished = await execute_run(run_deps, await seed.claimed_run(statement_id=statement_id))
    assert finished is not None and finished.state == "succeeded", finished and finished.error
    return finished


async def stripe_payment(seed: Seeder) -> None:
    await seed.payment("pay_1", provider="stripe", reference="pi_1", amount=5000, currency="USD", at=OPENED)


def charge_row(at: datetime = OPENED) -> str:
    return f"txn_c,{at.strftime('%Y-%m-%d %H:%M:%S')},usd,50.00,1.75,48.25,charge,ch_1,ch_1,pi_1,,,pay_1,\n"


class TestLostDispute:
    @pytest.mark.parametrize("order", ["in-order", "closed-first"])
    async def test_its_withdrawal_is_balanced_by_the_reports_dispute_line(
        self, seed: Seeder, run_deps: Any, dispute_state: Any, clean_db: AsyncEngine, order: str
    ) -> None:
        await stripe_payment(seed)
        states = [
            ("needs_response", True, OPENED),
            ("under_review", True, OPENED + timedelta(hours=1)),
            ("lost", True, NOON),
        ]
        for state in states if order == "in-order" else list(reversed(states)):
            await dispute_state(*state)
        statement_id = await import_report(
            clean_db, charge_row(), report_row("txn_d", OPENED, "-50.00", "dispute", fee="15.00")
        )
        finished = await run_over(seed, run_deps, statement_id)
        assert await seed.discrepancies() == []
        assert finished.summary == {}
        async with clean_db.connect() as conn:
            row = (await conn.execute(text("SELECT status, withdrawn_at, released_at FROM recon_disputes"))).one()
        assert (row.status, row.withdrawn_at, row.released_at) == ("lost", OPENED, None)

    async def test_a_withdrawal_the_report_lacks_is_missing_at_the_provider(
        self, seed: Seeder, run_deps: Any, dispute_state: Any, clean_db: AsyncEngine
    ) -> None:
        await stripe_payment(seed)
        await dispute_state("lost", True, OPENED)
        finished = await run_over(seed, run_deps, await import_report(clean_db, charge_row()))
        [found] = await seed.discrepancies()
        assert (found.kind, found.payment_id, found.dedupe_key) == (
            "missing_at_provider",
            "pay_1",
            "missing_at_provider:stripe:dispute:dp_1:withdrawn",
        )
        assert finished.summary == {"missing_at_provider": 1}

    async def test_another_amount_is_an_amount_mismatch(
        self, seed: Seeder, run_deps: Any, dispute_state: Any, clean_db: AsyncEngine
    ) -> None:
        await stripe_payment(seed)
        await dispute_state("lost", True, OPENED)
        statement_id = await import_report(clean_db, charge_row(), report_row("txn_d", OPENED, "-40.00", "dispute"))
        await run_over(seed, run_deps, statement_id)
        [found] = await seed.discrepancies()
        assert (found.kind, found.ours["amount"], found.theirs["amount"]) == ("amount_mismatch", 5000, 4000)


class TestUnknownDispute:
    async def test_a_dispute_line_of_no_dispute_we_know_is_missing_ours(
        self, seed: Seeder, run_deps: Any, dispute_state: Any, clean_db: AsyncEngine
    ) -> None:
        await stripe_payment(seed)
        # Another dispute of the same payment (its other charge): never taken for the unknown one.
        await dispute_state("needs_response", False, OPENED, dispute="dp_other")
        statement_id = await import_report(
            clean_db, charge_row(), report_row("txn_d", OPENED, "-50.00", "dispute", dispute="dp_unknown")
        )
        finished = await run_over(seed, run_deps, statement_id)
        [found] = await seed.discrepancies()
        assert found.kind == "missing_ours"
        assert found.provider_reference == "dp_unknown"
        assert found.dedupe_key == "missing_ours:stripe:dispute:ref:dp_unknown:withdrawn"
        assert found.theirs["status"] == "withdrawn" and found.theirs["payment_reference"] == "pi_1"
        assert finished.summary == {"missing_ours": 1}
        # A second run over the same file adds nothing (REC-1).
        again = await run_over(seed, run_deps, statement_id)
        assert again.summary == {}

    async def test_a_line_naming_no_dispute_is_matched_by_its_payment(
        self, seed: Seeder, run_deps: Any, dispute_state: Any, clean_db: AsyncEngine
    ) -> None:
        """Stripe's report names the dispute's payment too: a line without ``source_id`` is the dispute of
        that payment."""
        await stripe_payment(seed)
        await dispute_state("lost", True, OPENED)
        statement_id = await import_report(
            clean_db, charge_row(), report_row("txn_d", OPENED, "-50.00", "dispute", dispute="")
        )
        await run_over(seed, run_deps, statement_id)
        assert await seed.discrepancies() == []

    async def test_a_withdrawal_line_of_a_dispute_that_withdrew_nothing_is_a_status_mismatch(
        self, seed: Seeder, run_deps: Any, dispute_state: Any, clean_db: AsyncEngine
    ) -> None:
        await stripe_payment(seed)
        await dispute_state("warning_needs_response", False, OPENED)  # an inquiry: no money moves
        statement_id = await import_report(clean_db, charge_row(), report_row("txn_d", OPENED, "-50.00", "dispute"))
        await run_over(seed, run_deps, statement_id)
        [found] = await seed.discrepancies()
        assert (found.kind, found.ours["status"], found.theirs["status"]) == (
            "status_mismatch",
            "NOT_WITHDRAWN",
            "withdrawn",
        )


class TestWonDispute:
    @pytest.mark.parametrize("order", ["in-order", "reversed"])
    async def test_withdrawal_and_reinstatement_net_to_zero(
        self, seed: Seeder, run_deps: Any, dispute_state: Any, clean_db: AsyncEngine, order: str
    ) -> None:
        await stripe_payment(seed)
        states = [
            ("needs_response", True, OPENED),
            ("under_review", True, OPENED + timedelta(hours=1)),
            ("won", False, NOON),  # charge.dispute.funds_reinstated and .closed, the same second
            ("won", False, NOON),
        ]
        for state in states if order == "in-order" else list(reversed(states)):
            await dispute_state(*state)
        statement_id = await import_report(
            clean_db,
            charge_row(),
            report_row("txn_d", OPENED, "-50.00", "dispute", fee="15.00"),
            report_row("txn_r", NOON, "50.00", "dispute_reversal", fee="-15.00"),
        )
        finished = await run_over(seed, run_deps, statement_id)
        assert await seed.discrepancies() == []
        assert finished.summary == {}
        async with clean_db.connect() as conn:
            lines = (
                await conn.execute(
                    text("SELECT match_key, amount FROM statement_lines WHERE kind = 'dispute' ORDER BY seq")
                )
            ).all()
        # Both movements matched, and they cancel out.
        assert [(line.match_key, line.amount) for line in lines] == [
            ("dp_1:withdrawn", 5000),
            ("dp_1:reinstated", 5000),
        ]

    async def test_a_reinstatement_the_report_lacks_is_missing_at_the_provider(
        self, seed: Seeder, run_deps: Any, dispute_state: Any, clean_db: AsyncEngine
    ) -> None:
        await stripe_payment(seed)
        await dispute_state("needs_response", True, OPENED)
        await dispute_state("won", False, NOON)
        statement_id = await import_report(clean_db, charge_row(), report_row("txn_d", OPENED, "-50.00", "dispute"))
        await run_over(seed, run_deps, statement_id)
        [found] = await seed.discrepancies()
        assert (found.kind, found.dedupe_key) == (
            "missing_at_provider",
            "missing_at_provider:stripe:dispute:dp_1:reinstated",
        )


async def test_a_run_over_providers_statement_leaves_disputes_alone(
    seed: Seeder, run_deps: Any, dispute_state: Any, fake_statements: Any
) -> None:
    """providers-svc's statement holds no dispute lines: comparing would call every withdrawal missing."""
    await stripe_payment(seed)
    await dispute_state("lost", True, OPENED)
    finished = await execute_run(run_deps, await seed.claimed_run())
    assert finished is not None and finished.state == "succeeded", finished and finished.error
    assert [d.kind for d in await seed.discrepancies()] == ["missing_at_provider"]  # the payment's own line
    assert all("dispute" not in d.dedupe_key for d in await seed.discrepancies())


class TestProvidersStatement:
    """A run that fetches providers-svc's Stripe statement (its dispute balance transactions as lines)
    compares the disputes as a run over the imported report does."""

    @staticmethod
    async def _run_over_a_lost_dispute(
        seed: Seeder, run_deps: Any, dispute_state: Any, fake_statements: Any, line: Any, *others: Any
    ) -> None:
        """A run over providers-svc's statement of a Stripe payment whose dispute was lost: the
        payment's charge line and ``others``."""
        await stripe_payment(seed)
        await dispute_state("lost", True, OPENED)
        fake, _ = fake_statements
        charge = line("pi_1", payment_id="pay_1", amount=5000, currency="USD", at=OPENED, provider="stripe")
        fake.records = [charge, *others]
        finished = await execute_run(run_deps, await seed.claimed_run())
        assert finished is not None and finished.state == "succeeded", finished and finished.error

    async def test_a_lost_disputes_withdrawal_on_the_statement_balances(
        self, seed: Seeder, run_deps: Any, dispute_state: Any, fake_statements: Any, line: Any
    ) -> None:
        withdrawn = line("dp_1", kind="dispute", amount=5000, currency="USD", status="withdrawn", provider="stripe")
        withdrawn = withdrawn.model_copy(update={"occurred_at": OPENED})
        await self._run_over_a_lost_dispute(seed, run_deps, dispute_state, fake_statements, line, withdrawn)
        assert await seed.discrepancies() == []

    async def test_a_withdrawal_the_statement_lacks_is_missing_at_the_provider(
        self, seed: Seeder, run_deps: Any, dispute_state: Any, fake_statements: Any, line: Any
    ) -> None:
        await self._run_over_a_lost_dispute(seed, run_deps, dispute_state, fake_statements, line)
        [found] = await seed.discrepancies()
        assert (found.kind, found.payment_id) == ("missing_at_provider", "pay_1")
        assert "dispute" in found.dedupe_key
