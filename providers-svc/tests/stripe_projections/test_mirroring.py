"""Subscription metadata mirrored onto invoices and charges (so a charge can be attributed), in
either arrival order; the tenant each row is attributed to; what is published about it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from billing_contracts.events import StripeObjectEvent, parse_event

from .conftest import (
    OTHER_ACCOUNT,
    T0,
    Project,
    Published,
    Rows,
    charge,
    customer,
    event,
    invoice,
    subscription,
)

pytestmark = pytest.mark.postgres

A = "ten_aaaaaaaaaaaaaaaa"
B = "ten_bbbbbbbbbbbbbbbb"
PLAN = {"tenant_id": B, "plan": "pro"}


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["stripe_id"]: row for row in rows}


class TestMirroring:
    async def test_an_invoice_and_its_charge_take_the_subscription_metadata(
        self, project: Project, stored: Rows
    ) -> None:
        await project(event(subscription(metadata=PLAN), "customer.subscription.created", tenant_ids=(A, B)))
        await project(event(invoice(), "invoice.created", tenant_ids=(A, B)))
        await project(event(charge(invoice="in_1QxInvoice0001"), "charge.succeeded", tenant_ids=(A, B)))
        rows = by_id(await stored())
        for stripe_id in ("in_1QxInvoice0001", "ch_3QxCharge0001"):
            assert rows[stripe_id]["subscription_metadata"] == PLAN
            # Attributed through the mirrored metadata: the account serves two tenants.
            assert rows[stripe_id]["tenant_id"] == B

    async def test_a_subscription_arriving_last_is_back_filled(
        self, project: Project, stored: Rows, published: Published
    ) -> None:
        await project(event(charge(invoice="in_1QxInvoice0001"), "charge.succeeded", tenant_ids=(A, B)))
        await project(event(invoice(status="paid", amount_paid=5000), "invoice.paid", tenant_ids=(A, B)))
        rows = by_id(await stored())
        assert rows["ch_3QxCharge0001"]["tenant_id"] is None  # nothing attributes it yet
        assert await published() == []
        await project(event(subscription(metadata=PLAN), "customer.subscription.created", tenant_ids=(A, B)))
        rows = by_id(await stored())
        for stripe_id in ("in_1QxInvoice0001", "ch_3QxCharge0001"):
            assert (rows[stripe_id]["subscription_metadata"], rows[stripe_id]["tenant_id"]) == (PLAN, B)
            assert rows[stripe_id]["sequence"] == 2
        keys = sorted(key for key, _ in await published())
        assert keys == [
            "providers.stripe.charge.updated.v1",
            "providers.stripe.invoice.updated.v1",
            "providers.stripe.subscription.created.v1",
        ]

    async def test_an_invoice_arriving_after_its_charge_passes_the_metadata_on(
        self, project: Project, stored: Rows
    ) -> None:
        await project(event(subscription(metadata=PLAN), "customer.subscription.created"))
        await project(event(charge(invoice="in_1QxInvoice0001"), "charge.succeeded"))
        await project(event(invoice(), "invoice.created"))
        assert by_id(await stored())["ch_3QxCharge0001"]["subscription_metadata"] == PLAN

    async def test_changed_subscription_metadata_is_mirrored_again(self, project: Project, stored: Rows) -> None:
        await project(event(subscription(metadata={"plan": "basic"}), "customer.subscription.created", created=T0))
        await project(event(invoice(), "invoice.created"))
        await project(event(charge(invoice="in_1QxInvoice0001"), "charge.succeeded"))
        await project(event(subscription(metadata=PLAN), "customer.subscription.updated", created=T0 + 1))
        rows = by_id(await stored())
        assert rows["in_1QxInvoice0001"]["subscription_metadata"] == PLAN
        assert rows["ch_3QxCharge0001"]["subscription_metadata"] == PLAN

    async def test_an_older_subscription_state_mirrors_nothing(self, project: Project, stored: Rows) -> None:
        await project(event(subscription(metadata=PLAN), "customer.subscription.updated", created=T0 + 1))
        await project(event(invoice(), "invoice.created"))
        await project(event(subscription(metadata={"plan": "basic"}), "customer.subscription.created", created=T0))
        assert by_id(await stored())["in_1QxInvoice0001"]["subscription_metadata"] == PLAN

    async def test_a_deleted_invoice_is_not_back_filled(
        self, project: Project, stored: Rows, published: Published
    ) -> None:
        await project(event(invoice(status="draft"), "invoice.deleted"))
        await project(event(subscription(metadata=PLAN), "customer.subscription.created"))
        [row] = await stored(object="invoice")
        assert (row["subscription_metadata"], row["sequence"]) == (None, 1)
        assert [key for key, _ in await published()] == [
            "providers.stripe.invoice.deleted.v1",
            "providers.stripe.subscription.created.v1",
        ]

    async def test_mirroring_stays_within_the_account(self, project: Project, stored: Rows) -> None:
        await project(event(subscription(metadata=PLAN), "customer.subscription.created", account_id=OTHER_ACCOUNT))
        await project(event(invoice(), "invoice.created"))
        [invoice_row] = await stored(object="invoice")
        assert invoice_row["subscription_metadata"] is None

    async def test_an_invoice_of_newer_api_versions_carries_its_own_copy(self, project: Project, stored: Rows) -> None:
        # API versions from 2025-03-31: the subscription is under parent.subscription_details.
        newer = invoice(subscription_id=None)
        del newer["subscription"]
        newer["parent"] = {
            "type": "subscription_details",
            "subscription_details": {"subscription": "sub_1QxSubscript01", "metadata": {"plan": "own copy"}},
        }
        await project(event(newer, "invoice.created"))
        [row] = await stored()
        assert (row["subscription"], row["subscription_metadata"]) == ("sub_1QxSubscript01", {"plan": "own copy"})
        await project(event(subscription(metadata=PLAN), "customer.subscription.created"))
        assert (await stored(object="invoice"))[0]["subscription_metadata"] == PLAN


class TestAttribution:
    @pytest.mark.parametrize(
        ("metadata", "tenant_ids", "expected"),
        [
            ({"tenant_id": B}, (A, B), B),  # its own metadata names one of the account's tenants
            ({"tenant_id": B}, (A,), A),  # a tenant the account does not serve attributes nothing
            ({"tenant_id": "ten_cccccccccccccccc"}, (A, B), None),
            ({}, (A,), A),  # the account's only tenant
            ({}, (A, B), None),  # several tenants and nothing to choose: the operator's alone
            ({"tenant_id": A}, (), None),  # an account assigned to nobody
        ],
    )
    async def test_the_rule(
        self,
        project: Project,
        stored: Rows,
        published: Published,
        metadata: dict[str, str],
        tenant_ids: tuple[str, ...],
        expected: str | None,
    ) -> None:
        await project(event(charge(metadata=metadata), "charge.succeeded", tenant_ids=tenant_ids))
        [row] = await stored()
        assert row["tenant_id"] == expected
        # Every bus event names its tenant: a row attributed to none publishes nothing.
        assert len(await published()) == (0 if expected is None else 1)

    async def test_an_attributed_object_stays_its_tenants_after_the_account_moves(
        self, project: Project, stored: Rows, published: Published
    ) -> None:
        """The account served A alone, then B alone: A's customer (attributed by the sole-tenant rule)
        must not become B's on its next change, or B would read A's customer."""
        await project(event(customer(), "customer.created", tenant_ids=(A,)))
        await project(event(customer(email="new@example.com"), "customer.updated", created=T0 + 5, tenant_ids=(B,)))
        [row] = await stored()
        assert (row["tenant_id"], row["data"]["email"]) == (A, "new@example.com")
        assert {body["tenant_id"] for _, body in await published()} == {A}

    async def test_the_own_metadata_beats_the_mirrored_one(self, project: Project, stored: Rows) -> None:
        await project(event(subscription(metadata=PLAN), "customer.subscription.created", tenant_ids=(A, B)))
        await project(event(invoice(metadata={"tenant_id": A}), "invoice.created", tenant_ids=(A, B)))
        assert (await stored(object="invoice"))[0]["tenant_id"] == A


class TestPublished:
    async def test_the_event_carries_the_stored_object(self, project: Project, published: Published) -> None:
        verified = event(
            charge(metadata={"tenant_id": A, "payment_id": "pay_1"}),
            "charge.succeeded",
            stripe_account="acct_1QxConnected",
            livemode=True,
        )
        await project(verified)
        await project(event(charge(amount_refunded=5000), "charge.refunded", created=T0 + 1, livemode=True))
        [(key, body), (key2, body2)] = await published()
        assert (key, key2) == ("providers.stripe.charge.created.v1", "providers.stripe.charge.updated.v1")
        parsed = parse_event(json.dumps(body))
        assert isinstance(parsed, StripeObjectEvent)
        assert (parsed.tenant_id, parsed.livemode, parsed.source) == (A, True, "providers")
        assert (parsed.correlation_id, parsed.causation_id) == ("ch_3QxCharge0001", verified.event_id)
        data = parsed.data
        assert (data.id, data.object, data.account_id, data.stripe_account) == (
            "ch_3QxCharge0001",
            "charge",
            "pac_stripe_a",
            "acct_1QxConnected",
        )
        assert (data.status, data.amount, data.currency) == ("succeeded", 5000, "USD")
        assert data.customer == "cus_QxCustomer01"
        assert (data.metadata, data.sequence, data.stripe_event_type) == (
            {"tenant_id": A, "payment_id": "pay_1"},
            1,
            "charge.succeeded",
        )
        assert data.stripe_object["payment_intent"] == "pi_3QxIntent0001"
        assert (body2["data"]["sequence"], body2["data"]["stripe_object"]["amount_refunded"]) == (2, 5000)


class TestWhatIsProjected:
    async def test_other_objects_are_left_alone(self, project: Project, stored: Rows, published: Published) -> None:
        discount = {"id": "di_1Qx", "object": "discount", "customer": "cus_QxCustomer01"}
        await project(event(discount, "customer.discount.created"))
        await project(event({"id": "pi_3Qx", "object": "payment_intent"}, "payment_intent.succeeded"))
        assert await stored() == []
        assert await published() == []

    @pytest.mark.parametrize(
        "obj",
        [
            customer(email="nul\x00byte@example.com"),
            {**customer(), "id": 42},
            {**customer(), "id": "cus_" + "x" * 300},
            {**customer(), "id": "cus_1 OR 1=1"},
        ],
        ids=["nul", "id-not-a-string", "id-too-long", "id-not-an-id"],
    )
    async def test_an_object_that_cannot_be_stored_is_skipped(
        self, project: Project, stored: Rows, obj: dict[str, Any]
    ) -> None:
        await project(event(obj, "customer.created"))
        assert await stored() == []

    async def test_odd_field_types_are_stored_as_unknown(self, project: Project, stored: Rows) -> None:
        odd = {
            **charge(),
            "amount": "5000",
            "currency": "dollars",
            "customer": {"id": "cus_Expanded01", "object": "customer"},
            "metadata": ["not", "a", "map"],
            "created": True,
            "status": 7,
        }
        await project(event(odd, "charge.updated", created=T0 + 3))
        [row] = await stored()
        assert (row["amount"], row["currency"], row["customer"], row["object_metadata"], row["status"]) == (
            None,
            None,
            "cus_Expanded01",
            {},
            None,
        )
        assert row["created"].timestamp() == T0 + 3  # the event's time when the object has none

    async def test_one_stripe_object_under_two_accounts_is_two_rows(self, project: Project, stored: Rows) -> None:
        await project(event(customer(), "customer.created"))
        await project(event(customer(), "customer.created", account_id=OTHER_ACCOUNT))
        assert [row["account_id"] for row in await stored()] == ["pac_stripe_a", OTHER_ACCOUNT]
