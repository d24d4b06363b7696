"""The projection consumer: guarded upserts (an older sequence never overwrites a newer one), inbox
dedupe, the janitor's clock, the providers' verdicts, and anomalies recorded once each."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from billing_contracts.events import (
    Anomaly,
    PaymentAnomalyRecordedV1,
    PaymentAttemptFailedV1,
    PaymentAuthorizedV1,
    PaymentCreatedV1,
    PaymentPendingV1,
    PaymentSucceededV1,
    ProviderAnomalyRecordedV1,
    ProviderPaymentAuthorizedV1,
    ProviderPaymentFailedV1,
    ProviderPaymentSucceededV1,
    ProviderRefundUpdatedV1,
    RefundCreatedV1,
    RefundSucceededV1,
)
from billing_runtime.bus import DeadLettered
from billing_runtime.bus.memory import HandlerFailed

from .support import NOW, payment_snapshot, refund_snapshot

pytestmark = pytest.mark.usefixtures("client")


def pending(seq: int, at: Any = NOW, **overrides: Any) -> PaymentPendingV1:
    values = {"status": "PROVIDER_PENDING", "provider": "click", "sequence": seq, "updated_at": at, **overrides}
    snap = payment_snapshot(**values)
    return PaymentPendingV1(tenant_id="ten_a", data={"payment": snap})


def succeeded(seq: int, at: Any = NOW) -> PaymentSucceededV1:
    snap = payment_snapshot(status="SUCCEEDED", provider="click", provider_reference="c-1", sequence=seq, updated_at=at)
    return PaymentSucceededV1(tenant_id="ten_a", data={"payment": snap})


class TestManualCapture:
    async def test_an_authorized_then_partly_captured_payment_is_projected_with_what_was_taken(
        self, publish, rows
    ) -> None:
        manual = {"provider": "sandbox", "capture_method": "manual"}
        held = payment_snapshot(status="AUTHORIZED", sequence=3, amount_capturable=5000, **manual)
        await publish(PaymentAuthorizedV1(tenant_id="ten_a", data={"payment": held}))
        [row] = await rows("SELECT status, amount, next_check_at FROM recon_payments")
        assert (row.status, row.amount) == ("AUTHORIZED", 5000)
        # A hold is on the janitor's clock: a capture lost before our commit is found by its sync.
        assert row.next_check_at == NOW + timedelta(minutes=5)
        taken = payment_snapshot(
            status="SUCCEEDED", sequence=4, amount_captured=3000, updated_at=NOW + timedelta(minutes=1), **manual
        )
        await publish(PaymentSucceededV1(tenant_id="ten_a", data={"payment": taken}))
        [row] = await rows("SELECT status, amount, next_check_at FROM recon_payments")
        assert (row.status, row.amount, row.next_check_at) == ("SUCCEEDED", 3000, None)

    async def test_the_providers_authorization_is_taken_without_breaking(self, publish, count) -> None:
        outcome = {
            "payment_id": "pay_1",
            "provider": "sandbox",
            "provider_transaction_id": "ptx_1",
            "amount": 5000,
            "currency": "USD",
        }
        await publish(ProviderPaymentAuthorizedV1(tenant_id="ten_a", data=outcome))
        assert await count("recon_payments") == 0


class TestPaymentProjection:
    async def test_a_payment_is_projected_with_its_tenant_and_sequence(self, publish, rows) -> None:
        await publish(PaymentCreatedV1(tenant_id="ten_a", livemode=True, data={"payment": payment_snapshot()}))
        [row] = await rows("SELECT * FROM recon_payments")
        assert (row.id, row.tenant_id, row.status, row.amount, row.currency, row.last_sequence) == (
            "pay_1",
            "ten_a",
            "CREATED",
            5000,
            "USD",
            1,
        )
        assert row.next_check_at is None

    async def test_an_older_sequence_never_overwrites_a_newer_one(self, publish, rows) -> None:
        await publish(succeeded(3, NOW + timedelta(minutes=2)))
        await publish(pending(2, NOW + timedelta(minutes=1)))
        await publish(PaymentCreatedV1(tenant_id="ten_a", data={"payment": payment_snapshot()}))
        [row] = await rows("SELECT status, last_sequence, provider_reference, next_check_at FROM recon_payments")
        assert (row.status, row.last_sequence, row.provider_reference) == ("SUCCEEDED", 3, "c-1")
        # The late pending version did not start the janitor's clock on a paid payment.
        assert row.next_check_at is None

    async def test_a_redelivered_event_is_applied_once(self, publish, rows, count) -> None:
        event = await publish(pending(2))
        await publish(event)
        assert await count("inbox") == 1
        assert len(await rows("SELECT id FROM recon_payments")) == 1

    async def test_entering_pending_starts_the_janitors_clock_and_leaving_stops_it(self, publish, rows) -> None:
        await publish(pending(2))
        [row] = await rows("SELECT pending_since, next_check_at, checks FROM recon_payments")
        assert row.pending_since == NOW
        assert row.next_check_at == NOW + timedelta(minutes=5)
        # Another pending version (the payer chose another provider) keeps the clock.
        await publish(pending(3, NOW + timedelta(minutes=3), provider="payme"))
        [row] = await rows("SELECT pending_since, next_check_at, provider FROM recon_payments")
        assert (row.pending_since, row.next_check_at, row.provider) == (NOW, NOW + timedelta(minutes=5), "payme")
        await publish(succeeded(4, NOW + timedelta(minutes=4)))
        [row] = await rows("SELECT pending_since, next_check_at, succeeded_at FROM recon_payments")
        assert (row.pending_since, row.next_check_at) == (None, None)
        assert row.succeeded_at == NOW + timedelta(minutes=4)

    async def test_a_failed_attempt_is_projected_as_payable_again_and_stops_the_clock(self, publish, rows) -> None:
        await publish(pending(2))
        snap = payment_snapshot(
            status="CREATED", sequence=3, updated_at=NOW + timedelta(minutes=1), failure_code="card_declined"
        )
        attempt = {
            "id": "att_1",
            "payment_id": "pay_1",
            "provider": "click",
            "status": "failed",
            "failure_code": "card_declined",
            "created_at": NOW,
            "updated_at": NOW + timedelta(minutes=1),
        }
        await publish(PaymentAttemptFailedV1(tenant_id="ten_a", data={"payment": snap, "attempt": attempt}))
        [row] = await rows("SELECT status, last_sequence, pending_since, next_check_at FROM recon_payments")
        assert (row.status, row.last_sequence, row.pending_since, row.next_check_at) == ("CREATED", 3, None, None)
        # The next attempt starts a new pending episode; its success settles the payment.
        await publish(pending(4, NOW + timedelta(minutes=2), provider="payme"))
        await publish(succeeded(5, NOW + timedelta(minutes=3)))
        [row] = await rows("SELECT status, last_sequence FROM recon_payments")
        assert (row.status, row.last_sequence) == ("SUCCEEDED", 5)

    async def test_succeeded_at_is_the_earliest_paid_version_whatever_the_order(self, publish, rows) -> None:
        refunded = payment_snapshot(
            status="REFUNDED", amount_refunded=5000, sequence=6, updated_at=NOW + timedelta(hours=2)
        )
        refund = refund_snapshot(status="SUCCEEDED", amount=5000, sequence=2)
        await publish(RefundSucceededV1(tenant_id="ten_a", data={"refund": refund, "payment": refunded}))
        await publish(succeeded(4, NOW + timedelta(minutes=4)))
        [row] = await rows("SELECT status, amount_refunded, succeeded_at, last_sequence FROM recon_payments")
        assert (row.status, row.amount_refunded, row.last_sequence) == ("REFUNDED", 5000, 6)
        assert row.succeeded_at == NOW + timedelta(minutes=4)


class TestRefundProjection:
    async def test_a_refund_event_projects_the_refund_and_its_payment(self, publish, rows) -> None:
        paid = payment_snapshot(status="SUCCEEDED", sequence=4)
        await publish(RefundCreatedV1(tenant_id="ten_a", data={"refund": refund_snapshot(), "payment": paid}))
        [refund] = await rows("SELECT * FROM recon_refunds")
        assert (refund.id, refund.payment_id, refund.status, refund.amount, refund.tenant_id) == (
            "rfnd_1",
            "pay_1",
            "PENDING",
            2000,
            "ten_a",
        )
        # A pending refund is due for the janitor 5 minutes after it was created.
        assert refund.next_check_at == NOW + timedelta(minutes=5)
        [payment] = await rows("SELECT status, last_sequence FROM recon_payments")
        assert (payment.status, payment.last_sequence) == ("SUCCEEDED", 4)

    async def test_a_late_pending_version_does_not_reopen_a_settled_refund(self, publish, rows) -> None:
        paid = payment_snapshot(status="PARTIALLY_REFUNDED", amount_refunded=2000, sequence=5)
        done = refund_snapshot(status="SUCCEEDED", sequence=2, provider_refund_id="re_1")
        await publish(RefundSucceededV1(tenant_id="ten_a", data={"refund": done, "payment": paid}))
        created = RefundCreatedV1(
            tenant_id="ten_a",
            data={
                "refund": refund_snapshot(provider=None),
                "payment": payment_snapshot(status="SUCCEEDED", sequence=4),
            },
        )
        await publish(created)
        [refund] = await rows("SELECT status, last_sequence, provider_refund_id, next_check_at FROM recon_refunds")
        assert (refund.status, refund.last_sequence, refund.provider_refund_id) == ("SUCCEEDED", 2, "re_1")
        assert refund.next_check_at is None
        [payment] = await rows("SELECT status, amount_refunded FROM recon_payments")
        assert (payment.status, payment.amount_refunded) == ("PARTIALLY_REFUNDED", 2000)


def outcome(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "payment_id": "pay_1",
        "provider": "click",
        "provider_transaction_id": "ptx_1",
        "provider_reference": "c-1",
        "amount": 5000,
        "currency": "USD",
    }
    data.update(overrides)
    return data


def provider_refund(status: str, at: Any, **overrides: Any) -> ProviderRefundUpdatedV1:
    data: dict[str, Any] = {
        "payment_id": "pay_1",
        "provider": "stripe",
        "provider_transaction_id": "ptx_1",
        "refund_id": "rfnd_1",
        "provider_refund_id": "re_1",
        "amount": 2000,
        "currency": "USD",
        "status": status,
        "provider_updated_at": at,
    }
    data.update(overrides)
    return ProviderRefundUpdatedV1(tenant_id="ten_a", data=data)


class TestProviderVerdicts:
    async def test_the_later_observation_of_a_transaction_wins(self, publish, rows) -> None:
        later = ProviderPaymentSucceededV1(
            tenant_id="ten_a", occurred_at=NOW + timedelta(minutes=1), data=outcome(observed_via="status_check")
        )
        earlier = ProviderPaymentFailedV1(tenant_id="ten_a", occurred_at=NOW, data=outcome())
        await publish(later)
        await publish(earlier)
        [row] = await rows("SELECT status, observed_via, provider_reference FROM recon_provider_transactions")
        assert (row.status, row.observed_via, row.provider_reference) == ("succeeded", "status_check", "c-1")

    @pytest.mark.parametrize("verdict_first", [True, False], ids=["verdict-first", "payment-first"])
    async def test_a_payment_is_filed_under_the_account_its_verdict_names_in_either_order(
        self, publish, rows, verdict_first: bool
    ) -> None:
        verdict = ProviderPaymentSucceededV1(tenant_id="ten_a", data=outcome(account_id="pac_click_1"))
        events = [verdict, succeeded(3)] if verdict_first else [succeeded(3), verdict]
        for event in events:
            await publish(event)
        # A later version of the payment (or a verdict naming no account) keeps the account.
        await publish(
            PaymentSucceededV1(tenant_id="ten_a", data={"payment": payment_snapshot(status="REFUNDED", sequence=5)})
        )
        await publish(ProviderPaymentSucceededV1(tenant_id="ten_a", data=outcome(provider_transaction_id="ptx_2")))
        [row] = await rows("SELECT provider_account_id, status FROM recon_payments")
        assert (row.provider_account_id, row.status) == ("pac_click_1", "REFUNDED")
        [attempt] = await rows(
            "SELECT account_id FROM recon_provider_transactions WHERE provider_transaction_id = 'ptx_1'"
        )
        assert attempt.account_id == "pac_click_1"

    async def test_a_final_refund_verdict_is_final(self, publish, rows) -> None:
        await publish(provider_refund("pending", NOW))
        await publish(provider_refund("succeeded", NOW + timedelta(minutes=1)))
        await publish(provider_refund("pending", NOW + timedelta(minutes=2)))
        await publish(provider_refund("failed", NOW + timedelta(minutes=3)))
        [row] = await rows("SELECT key, status FROM recon_provider_refunds")
        assert (row.key, row.status) == ("rfnd_1", "succeeded")

    async def test_a_provider_started_refund_is_keyed_by_the_providers_id(self, publish, rows) -> None:
        await publish(provider_refund("succeeded", NOW, refund_id=None, provider="payme", provider_refund_id="p-9"))
        [row] = await rows("SELECT key, refund_id FROM recon_provider_refunds")
        assert (row.key, row.refund_id) == ("payme:p-9", None)


def anomaly(**overrides: Any) -> Anomaly:
    data: dict[str, Any] = {
        "anomaly_id": "anm_1",
        "kind": "amount_mismatch",
        "payment_id": "pay_1",
        "provider": "click",
        "provider_transaction_id": "ptx_1",
        "amount": 4000,
        "currency": "USD",
        "outcome": "succeeded",
        "expected_amount": 5000,
        "expected_currency": "USD",
        "payment_status": "PROVIDER_PENDING",
        "evidence_id": "pev_1",
        "detail": "paid 4000, expected 5000",
    }
    data.update(overrides)
    return Anomaly(**data)


class TestAnomalies:
    async def test_an_anomaly_becomes_one_open_discrepancy_with_its_evidence(self, publish, rows) -> None:
        event = await publish(ProviderAnomalyRecordedV1(tenant_id="ten_a", data=anomaly()))
        [row] = await rows("SELECT * FROM discrepancies")
        assert (row.kind, row.provider, row.state, row.tenant_id, row.payment_id) == (
            "anomaly",
            "click",
            "open",
            "ten_a",
            "pay_1",
        )
        assert row.dedupe_key == "anomaly:providers:anm_1"
        assert row.theirs["amount"] == 4000
        assert row.theirs["event_id"] == event.event_id
        assert row.ours == {"payment_id": "pay_1", "amount": 5000, "currency": "USD", "status": "PROVIDER_PENDING"}
        assert "amount_mismatch" in row.detail

    async def test_the_same_anomaly_twice_is_one_discrepancy(self, publish, rows) -> None:
        first = await publish(ProviderAnomalyRecordedV1(tenant_id="ten_a", data=anomaly()))
        await publish(first)  # a redelivery
        await publish(ProviderAnomalyRecordedV1(tenant_id="ten_a", data=anomaly()))  # a copy under a new event id
        # payments-svc's anomaly of its own (another publisher, another id) is another discrepancy.
        await publish(PaymentAnomalyRecordedV1(tenant_id="ten_a", data=anomaly(anomaly_id="anm_2")))
        found = await rows("SELECT dedupe_key FROM discrepancies ORDER BY dedupe_key")
        assert [r.dedupe_key for r in found] == ["anomaly:payments:anm_2", "anomaly:providers:anm_1"]


class TestFailures:
    async def test_a_poison_event_is_dead_lettered_after_five_deliveries_and_writes_nothing(
        self, publish, rows, count
    ) -> None:
        # A currency no column can hold: the database refuses it on a healthy system (not an outage).
        bad = PaymentCreatedV1(tenant_id="ten_a", data={"payment": payment_snapshot(currency="USDOLLAR")})
        for _ in range(4):
            with pytest.raises(HandlerFailed):
                await publish(bad)
        with pytest.raises(DeadLettered):
            await publish(bad)
        assert await count("recon_payments") == 0
        assert await count("inbox") == 0
        # The queue keeps consuming the events behind it.
        await publish(PaymentCreatedV1(tenant_id="ten_a", data={"payment": payment_snapshot()}))
        assert await count("recon_payments") == 1

    async def test_an_event_nobody_parses_is_dropped(self, bus, count) -> None:
        from billing_runtime.bus import Message

        await bus.publish(Message("payments.payment.created.v1", b'{"event_type": "nope"}', "evt_x"))
        assert await count("inbox") == 0
