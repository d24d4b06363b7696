"""The janitor: a per-object schedule (5 min, 1 h, then daily after an object became pending), the
sync calls to providers-svc (a fake on loopback that checks the token), heals counted, inconclusive
answers retried without spending a step, and two janitors never asking about one object twice."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from billing_contracts.envelope import utcnow
from billing_contracts.events import PaymentSnapshot, RefundSnapshot
from billing_runtime.db import make_sessionmaker
from billing_runtime.metrics import Metrics
from prometheus_client import generate_latest
from reconciliation_svc.db.models import outbox
from reconciliation_svc.db.projection import upsert_payment, upsert_refund
from reconciliation_svc.domain.schedule import CheckSchedule
from reconciliation_svc.metrics import ReconciliationMetrics
from reconciliation_svc.services.janitor import Janitor
from reconciliation_svc.services.providers_http import ProvidersSync
from reconciliation_svc.services.uow import ReconUnitOfWork
from sqlalchemy.ext.asyncio import AsyncEngine

from .support import PROVIDERS_SECRET, FakeProviders, payment_snapshot, refund_snapshot

SCHEDULE = CheckSchedule.of_seconds((300, 3600), 86400, 300)
# Far enough ahead of the real clock that the app's own janitor (real time) never finds these due.
T0 = utcnow().replace(microsecond=0) + timedelta(days=30)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


async def seed_pending_payment(engine: AsyncEngine, payment_id: str = "pay_1", since: datetime = T0) -> None:
    snap = PaymentSnapshot(
        **payment_snapshot(id=payment_id, status="PROVIDER_PENDING", provider="click", sequence=2, updated_at=since)
    )
    async with make_sessionmaker(engine)() as session:
        await session.execute(upsert_payment(snap, "ten_a", SCHEDULE.first))
        await session.commit()


async def seed_pending_refund(engine: AsyncEngine, created: datetime = T0, **fields: object) -> None:
    snap = RefundSnapshot(**refund_snapshot(created_at=created, updated_at=created, **fields))
    async with make_sessionmaker(engine)() as session:
        await session.execute(upsert_refund(snap, "ten_a", SCHEDULE.first))
        await session.commit()


@pytest.fixture
async def janitor_at(clean_db: AsyncEngine, fake_providers: FakeProviders):  # type: ignore[no-untyped-def]
    """A janitor on the test database and the fake providers-svc, on a clock the test moves."""
    made: list[ProvidersSync] = []
    sessions = make_sessionmaker(clean_db)

    async def make(clock: Clock) -> tuple[Janitor, ReconciliationMetrics]:
        providers = ProvidersSync(fake_providers.url, PROVIDERS_SECRET, timeout=5)
        await providers.open()
        made.append(providers)
        metrics = ReconciliationMetrics(Metrics("test"))
        janitor = Janitor(
            lambda: ReconUnitOfWork(sessions, outbox),
            providers,
            SCHEDULE,
            metrics,
            batch=10,
            lease=timedelta(seconds=120),
            clock=clock,
        )
        return janitor, metrics

    yield make
    for providers in made:
        await providers.close()


def metric(metrics: ReconciliationMetrics, line_start: str) -> float:
    for line in generate_latest(metrics.base.registry).decode().splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class TestSchedule:
    async def test_a_stuck_payment_is_asked_at_5_minutes_1_hour_then_daily(
        self, clean_db, janitor_at, fake_providers, rows
    ) -> None:
        await seed_pending_payment(clean_db)
        clock = Clock(T0 + timedelta(minutes=4, seconds=59))
        janitor, metrics = await janitor_at(clock)
        asked: list[int] = []
        moments = [
            timedelta(minutes=4, seconds=59),
            timedelta(minutes=5),
            timedelta(minutes=30),
            timedelta(hours=1),
            timedelta(hours=24),
            timedelta(hours=25),
            timedelta(hours=48),
            timedelta(hours=49),
        ]
        for moment in moments:
            clock.at = T0 + moment
            asked.append((await janitor.run_once()).checked)
        assert asked == [0, 1, 0, 1, 0, 1, 0, 1]
        assert fake_providers.calls == [("payments", "pay_1")] * 4
        assert set(fake_providers.callers) == {"reconciliation"}
        [row] = await rows("SELECT checks, last_result, next_check_at, last_checked_at FROM recon_payments")
        assert (row.checks, row.last_result) == (4, "pending")
        assert row.last_checked_at == T0 + timedelta(hours=49)
        assert row.next_check_at == T0 + timedelta(hours=73)
        assert metric(metrics, 'reconciliation_janitor_checks_total{kind="payment",result="pending"}') == 4

    async def test_a_janitor_that_was_down_skips_the_steps_it_missed(self, clean_db, janitor_at, rows) -> None:
        await seed_pending_payment(clean_db)
        clock = Clock(T0 + timedelta(hours=3))
        janitor, _ = await janitor_at(clock)
        assert (await janitor.run_once()).checked == 1
        [row] = await rows("SELECT next_check_at FROM recon_payments")
        # Not 1 h (already past): a day after this check.
        assert row.next_check_at == T0 + timedelta(hours=27)

    async def test_a_pending_refund_is_asked_of_its_provider(self, clean_db, janitor_at, fake_providers, rows) -> None:
        await seed_pending_refund(clean_db)
        fake_providers.answers["rfnd_1"] = (200, {"refund_id": "rfnd_1", "status": "succeeded", "published": True})
        janitor, metrics = await janitor_at(Clock(T0 + timedelta(minutes=5)))
        done = await janitor.run_once()
        assert done.as_json() == {"object": "janitor_run", "checked": 1, "healed": 1, "results": {"succeeded": 1}}
        assert fake_providers.calls == [("refunds", "rfnd_1")]
        assert metric(metrics, 'reconciliation_janitor_heals_total{kind="refund",provider="stripe"}') == 1
        [row] = await rows("SELECT checks, last_result, next_check_at FROM recon_refunds")
        # Still PENDING here until payments-svc's refund.succeeded arrives: asked again at 1 h meanwhile.
        assert (row.checks, row.last_result, row.next_check_at) == (1, "succeeded", T0 + timedelta(hours=1))

    async def test_nothing_due_is_one_query_and_no_call(self, clean_db, janitor_at, fake_providers) -> None:
        await seed_pending_payment(clean_db)
        janitor, _ = await janitor_at(Clock(T0))
        assert (await janitor.run_once()).checked == 0
        assert fake_providers.calls == []


class TestAnswers:
    async def test_a_heal_is_counted_by_kind_and_provider(self, clean_db, janitor_at, fake_providers) -> None:
        await seed_pending_payment(clean_db)
        fake_providers.answers["pay_1"] = (
            200,
            {"payment_id": "pay_1", "provider": "click", "status": "succeeded", "published": True},
        )
        janitor, metrics = await janitor_at(Clock(T0 + timedelta(minutes=5)))
        assert (await janitor.run_once()).healed == 1
        assert metric(metrics, 'reconciliation_janitor_heals_total{kind="payment",provider="click"}') == 1

    @pytest.mark.parametrize(
        ("answer", "result"),
        [((503, {"code": "provider_unavailable"}), "unavailable"), ((500, {}), "error"), ((401, {}), "error")],
    )
    async def test_an_inconclusive_answer_is_retried_soon_without_spending_a_step(
        self, clean_db, janitor_at, fake_providers, rows, answer: tuple[int, Any], result: str
    ) -> None:
        await seed_pending_payment(clean_db)
        fake_providers.answers["pay_1"] = answer
        clock = Clock(T0 + timedelta(minutes=5))
        janitor, _ = await janitor_at(clock)
        assert (await janitor.run_once()).results == {result: 1}
        [row] = await rows("SELECT checks, last_result, next_check_at FROM recon_payments")
        assert (row.checks, row.last_result, row.next_check_at) == (0, result, T0 + timedelta(minutes=10))

    async def test_providers_svc_unreachable_is_unavailable(self, clean_db, janitor_at, fake_providers) -> None:
        await seed_pending_payment(clean_db)
        fake_providers.url = "http://127.0.0.1:9"
        janitor, _ = await janitor_at(Clock(T0 + timedelta(minutes=5)))
        assert (await janitor.run_once()).results == {"unavailable": 1}

    async def test_an_unknown_transaction_keeps_its_schedule(self, clean_db, janitor_at, fake_providers, rows) -> None:
        await seed_pending_payment(clean_db)
        fake_providers.answers["pay_1"] = (404, {"code": "transaction_not_found"})
        janitor, _ = await janitor_at(Clock(T0 + timedelta(minutes=5)))
        assert (await janitor.run_once()).results == {"not_found": 1}
        [row] = await rows("SELECT checks, next_check_at FROM recon_payments")
        assert (row.checks, row.next_check_at) == (1, T0 + timedelta(hours=1))

    async def test_a_refund_the_provider_started_is_not_found_once_and_not_asked_again(
        self, clean_db, janitor_at, fake_providers, rows
    ) -> None:
        # Payme's cancel-after-perform, as payments-svc announces it: PENDING, named by the provider.
        await seed_pending_refund(clean_db, provider_refund_id="re_dashboard1")
        fake_providers.answers["rfnd_1"] = (404, {"code": "refund_not_found"})
        janitor, _ = await janitor_at(Clock(T0 + timedelta(minutes=5)))
        assert (await janitor.run_once()).results == {"not_found": 1}
        [row] = await rows("SELECT checks, last_result, next_check_at FROM recon_refunds")
        assert (row.checks, row.last_result, row.next_check_at) == (1, "not_found", None)
        later, _ = await janitor_at(Clock(T0 + timedelta(days=3)))
        assert (await later.run_once()).checked == 0
        assert fake_providers.calls == [("refunds", "rfnd_1")]

    async def test_a_refund_of_ours_not_yet_at_providers_keeps_its_schedule(
        self, clean_db, janitor_at, fake_providers, rows
    ) -> None:
        await seed_pending_refund(clean_db)  # no provider id yet: its request may still be queued
        fake_providers.answers["rfnd_1"] = (404, {"code": "refund_not_found"})
        janitor, _ = await janitor_at(Clock(T0 + timedelta(minutes=5)))
        assert (await janitor.run_once()).results == {"not_found": 1}
        [row] = await rows("SELECT next_check_at FROM recon_refunds")
        assert row.next_check_at == T0 + timedelta(hours=1)

    async def test_an_outcome_that_arrives_during_the_check_is_not_rescheduled(
        self, clean_db, janitor_at, fake_providers, rows
    ) -> None:
        await seed_pending_payment(clean_db)
        janitor, _ = await janitor_at(Clock(T0 + timedelta(minutes=5)))
        paid = PaymentSnapshot(**payment_snapshot(status="SUCCEEDED", sequence=3, updated_at=T0 + timedelta(minutes=5)))

        async def apply_success() -> None:
            async with make_sessionmaker(clean_db)() as session:
                await session.execute(upsert_payment(paid, "ten_a", SCHEDULE.first))
                await session.commit()

        fake_providers.before_answer = apply_success
        await janitor.run_once()
        [row] = await rows("SELECT status, next_check_at, checks FROM recon_payments")
        assert (row.status, row.next_check_at, row.checks) == ("SUCCEEDED", None, 1)


class TestConcurrency:
    async def test_two_janitors_at_once_ask_about_each_object_once(self, clean_db, janitor_at, fake_providers) -> None:
        for n in range(6):
            await seed_pending_payment(clean_db, f"pay_{n}")
        clock = Clock(T0 + timedelta(minutes=5))
        (first, _), (second, _) = await janitor_at(clock), await janitor_at(clock)
        a, b = await asyncio.gather(first.run_once(), second.run_once())
        assert a.checked + b.checked == 6
        assert sorted(fake_providers.calls) == sorted(("payments", f"pay_{n}") for n in range(6))
