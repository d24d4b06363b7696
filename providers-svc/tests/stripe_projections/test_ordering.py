"""Repeated and reordered deliveries converge to the newest state; a deletion is final."""

from __future__ import annotations

import asyncio

import pytest

from .conftest import (
    T0,
    Project,
    Published,
    Rows,
    charge,
    customer,
    dispute,
    event,
    invoice,
    product,
    refund,
    subscription,
)

pytestmark = pytest.mark.postgres


class TestNewerWins:
    async def test_an_older_state_arriving_late_changes_nothing(
        self, project: Project, stored: Rows, published: Published
    ) -> None:
        newer = event(charge(status="succeeded"), "charge.succeeded", created=T0 + 5)
        older = event(charge(status="pending"), "charge.pending", created=T0)
        await project(newer)
        await project(older)
        [row] = await stored()
        assert (row["status"], row["event_id"], row["sequence"]) == ("succeeded", newer.event_id, 1)

    async def test_a_newer_state_replaces_the_stored_one(self, project: Project, stored: Rows) -> None:
        await project(event(charge(status="pending"), "charge.pending", created=T0))
        newer = event(charge(status="succeeded"), "charge.succeeded", created=T0 + 1)
        await project(newer)
        [row] = await stored()
        assert (row["status"], row["event_id"], row["sequence"]) == ("succeeded", newer.event_id, 2)

    @pytest.mark.parametrize("reverse", [False, True])
    @pytest.mark.parametrize(
        ("first", "then"),
        [
            # Same second: a terminal status beats a non-terminal one.
            (charge(status="pending"), charge(status="succeeded")),
            (refund(status="pending"), refund(status="succeeded")),
            (refund(status="succeeded"), refund(status="failed")),
            (invoice(status="draft"), invoice(status="open")),
            (invoice(status="open"), invoice(status="paid", amount_paid=5000)),
            (invoice(status="uncollectible"), invoice(status="void")),
            (dispute(status="needs_response"), dispute(status="under_review")),
            (dispute(status="under_review"), dispute(status="lost")),
            (subscription(status="active"), subscription(status="canceled")),
            # Same second and status: the amount that only grows decides.
            (charge(amount_refunded=0), charge(amount_refunded=2000)),
            (charge(status="succeeded", captured=False), charge(status="succeeded")),
            (dispute(balance_transactions=0), dispute(balance_transactions=1)),
        ],
        ids=[
            "charge-succeeded",
            "refund-succeeded",
            "refund-failed",
            "invoice-open",
            "invoice-paid",
            "invoice-void",
            "dispute-under_review",
            "dispute-lost",
            "subscription-canceled",
            "charge-refunded",
            "charge-captured",
            "dispute-funds_withdrawn",
        ],
    )
    async def test_states_of_one_second_converge_whatever_the_order(
        self,
        project: Project,
        stored: Rows,
        reverse: bool,
        first: dict[str, object],
        then: dict[str, object],
    ) -> None:
        kind = str(first["object"])
        type_ = {"subscription": "customer.subscription.updated", "dispute": "charge.dispute.updated"}.get(
            kind, f"{kind}.updated"
        )
        events = [event(first, type_), event(then, type_)]
        for verified in reversed(events) if reverse else events:
            await project(verified)
        [row] = await stored()
        assert row["data"] == then
        assert row["event_id"] == events[1].event_id
        assert row["status"] == then["status"]

    @pytest.mark.parametrize("reverse", [False, True])
    async def test_equal_states_of_one_second_converge_to_the_same_row(
        self, project: Project, stored: Rows, reverse: bool
    ) -> None:
        # Nothing in the objects orders them: the event id does, the same way in every order.
        events = [
            event(customer(email="one@example.com"), "customer.updated", event_id="evt_1QxAAAA"),
            event(customer(email="two@example.com"), "customer.updated", event_id="evt_1QxBBBB"),
        ]
        for verified in reversed(events) if reverse else events:
            await project(verified)
        [row] = await stored()
        assert (row["data"]["email"], row["event_id"]) == ("two@example.com", "evt_1QxBBBB")

    async def test_a_product_is_ordered_by_its_own_updated(self, project: Project, stored: Rows) -> None:
        await project(event(product(name="New name", updated=T0 + 10), "product.updated", created=T0 + 10))
        # Made after (a replay, a clock of its own), but describing the product before its change.
        await project(event(product(name="Old name", updated=T0 + 5), "product.updated", created=T0 + 20))
        [row] = await stored()
        assert row["data"]["name"] == "New name"

    async def test_a_repeated_event_changes_nothing_and_publishes_once(
        self, project: Project, stored: Rows, published: Published
    ) -> None:
        verified = event(charge(), "charge.succeeded")
        await project(verified)
        await project(verified)
        [row] = await stored()
        assert row["sequence"] == 1
        assert [key for key, _ in await published()] == ["providers.stripe.charge.created.v1"]

    async def test_concurrent_deliveries_converge_to_the_newest(self, project: Project, stored: Rows) -> None:
        # Twelve states of one charge delivered at once, each in its own transaction.
        states = [
            event(charge(amount=5000, amount_refunded=n * 100), "charge.refunded", created=T0 + n) for n in range(12)
        ]
        await asyncio.gather(*(project(s) for s in reversed(states)))
        [row] = await stored()
        assert (row["data"]["amount_refunded"], row["event_id"]) == (1100, states[-1].event_id)


class TestDeletion:
    async def test_a_deletion_marks_the_row_and_nothing_older_resurrects_it(
        self, project: Project, stored: Rows, published: Published
    ) -> None:
        await project(event(customer(), "customer.created", created=T0))
        deleted = event(customer(), "customer.deleted", created=T0 + 10)
        await project(deleted)
        await project(event(customer(email="late@example.com"), "customer.updated", created=T0 + 5))
        [row] = await stored()
        assert (row["deleted"], row["event_id"], row["data"]["email"]) == (True, deleted.event_id, "payer@example.com")
        keys = [key for key, _ in await published()]
        assert keys == ["providers.stripe.customer.created.v1", "providers.stripe.customer.deleted.v1"]

    async def test_a_deletion_is_final_even_before_a_later_event(self, project: Project, stored: Rows) -> None:
        await project(event(product(), "product.deleted", created=T0))
        await project(event(product(name="Renamed", updated=T0 + 60), "product.updated", created=T0 + 60))
        [row] = await stored()
        assert (row["deleted"], row["data"]["name"]) == (True, "Pro plan")

    async def test_a_deletion_seen_first_is_stored_deleted(
        self, project: Project, stored: Rows, published: Published
    ) -> None:
        await project(event(invoice(status="draft"), "invoice.deleted", created=T0 + 10))
        await project(event(invoice(status="draft"), "invoice.created", created=T0))
        [row] = await stored()
        assert row["deleted"] is True
        assert [key for key, _ in await published()] == ["providers.stripe.invoice.deleted.v1"]

    async def test_a_deletion_stub_keeps_what_was_known(
        self, project: Project, stored: Rows, published: Published
    ) -> None:
        created = customer(metadata={"crm": "42"})
        await project(event(created, "customer.created", created=T0))
        stub = {"id": "cus_QxCustomer01", "object": "customer", "deleted": True}
        # The account now serves another tenant: nothing in the stub says it is that tenant's.
        await project(event(stub, "customer.deleted", created=T0 + 1, tenant_ids=("ten_bbbbbbbbbbbbbbbb",)))
        [row] = await stored()
        assert row["deleted"] is True
        assert (row["data"]["email"], row["data"]["deleted"], row["object_metadata"]) == (
            "payer@example.com",
            True,
            {"crm": "42"},
        )
        assert row["tenant_id"] == "ten_aaaaaaaaaaaaaaaa"
        # Each event carries the object as stored: the one sent, then the stub merged into what was known.
        first, deleted = (body["data"]["stripe_object"] for _, body in await published())
        assert first == created
        assert deleted == {**created, "deleted": True}

    async def test_an_ended_subscription_is_deleted(self, project: Project, stored: Rows) -> None:
        await project(event(subscription(), "customer.subscription.created", created=T0))
        await project(event(subscription(status="canceled"), "customer.subscription.deleted", created=T0 + 1))
        [row] = await stored()
        assert (row["deleted"], row["status"]) == (True, "canceled")

    async def test_a_repeated_deletion_publishes_once(self, project: Project, published: Published) -> None:
        await project(event(customer(), "customer.deleted", created=T0))
        await project(event(customer(), "customer.deleted", created=T0 + 1))
        assert len(await published()) == 1

    async def test_charges_refunds_and_disputes_are_never_deleted(self, project: Project, stored: Rows) -> None:
        # Stripe sends no such event; a type ending in .deleted for them marks nothing.
        await project(event(charge(), "charge.deleted"))
        [row] = await stored()
        assert row["deleted"] is False
