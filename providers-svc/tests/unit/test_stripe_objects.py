"""What a Stripe event's object becomes in the projection (domain/stripe_objects.py): pure rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from providers_svc.domain.stripe_events import VerifiedStripeEvent
from providers_svc.domain.stripe_objects import action_of, state_of

T0 = 1_764_936_000


def verified(obj: dict[str, Any], type_: str, created: int = T0 + 7) -> VerifiedStripeEvent:
    return VerifiedStripeEvent(
        event_id="evt_1QxUnit",
        type=type_,
        created=datetime.fromtimestamp(created, UTC),
        livemode=False,
        account_id="pac_1",
        stripe_account="acct_1",
        tenant_ids=("ten_a",),
        object=obj,
        previous_attributes=None,
        raw={"id": "evt_1QxUnit", "type": type_, "data": {"object": obj}},
    )


class TestStateOf:
    def test_a_charge(self) -> None:
        obj = {
            "id": "ch_1",
            "object": "charge",
            "amount": 5000,
            "amount_captured": 5000,
            "amount_refunded": 700,
            "currency": "usd",
            "customer": "cus_1",
            "invoice": "in_1",
            "status": "succeeded",
            "created": T0,
            "metadata": {"tenant_id": "ten_a", "n": 1},
        }
        state = state_of(verified(obj, "charge.refunded"))
        assert state is not None
        assert (state.kind, state.stripe_id, state.customer, state.invoice, state.subscription) == (
            "charge",
            "ch_1",
            "cus_1",
            "in_1",
            None,
        )
        assert (state.amount, state.currency, state.status, state.deleted) == (5000, "USD", "succeeded", False)
        # Metadata values are strings in Stripe: anything else is not kept.
        assert state.metadata == {"tenant_id": "ten_a"}
        assert state.created == datetime.fromtimestamp(T0, UTC)
        version = state.version
        assert (version.time, version.rank, version.progress, version.event_id) == (
            datetime.fromtimestamp(T0 + 7, UTC),
            1,
            5700,
            "evt_1QxUnit",
        )

    @pytest.mark.parametrize(
        ("obj", "type_", "deleted"),
        [
            ({"id": "cus_1", "object": "customer"}, "customer.deleted", True),
            ({"id": "cus_1", "object": "customer", "deleted": True}, "customer.updated", True),
            ({"id": "sub_1", "object": "subscription", "status": "canceled"}, "customer.subscription.deleted", True),
            ({"id": "prod_1", "object": "product"}, "product.deleted", True),
            ({"id": "in_1", "object": "invoice"}, "invoice.deleted", True),
            ({"id": "ch_1", "object": "charge", "deleted": True}, "charge.updated", False),
            ({"id": "cus_1", "object": "customer"}, "customer.updated", False),
        ],
    )
    def test_deletion(self, obj: dict[str, Any], type_: str, deleted: bool) -> None:
        state = state_of(verified(obj, type_))
        assert state is not None
        assert state.deleted is deleted

    def test_a_product_has_a_version_of_its_own_and_active_as_status(self) -> None:
        state = state_of(
            verified({"id": "prod_1", "object": "product", "active": False, "updated": T0}, "product.updated")
        )
        assert state is not None
        assert (state.version.time, state.status) == (datetime.fromtimestamp(T0, UTC), "inactive")

    def test_an_invoice_of_either_api_version(self) -> None:
        old = {"id": "in_1", "object": "invoice", "subscription": {"id": "sub_1", "object": "subscription"}}
        new = {
            "id": "in_2",
            "object": "invoice",
            "amount_due": 900,
            "amount_paid": 400,
            "status": "open",
            "parent": {"subscription_details": {"subscription": "sub_2", "metadata": {"plan": "pro"}}},
        }
        old_state, new_state = state_of(verified(old, "invoice.created")), state_of(verified(new, "invoice.paid"))
        assert old_state is not None
        assert new_state is not None
        assert (old_state.subscription, old_state.own_subscription_metadata) == ("sub_1", None)
        assert (new_state.subscription, new_state.own_subscription_metadata) == ("sub_2", {"plan": "pro"})
        assert (new_state.amount, new_state.version.rank, new_state.version.progress) == (900, 1, 400)

    def test_a_customer_is_its_own_customer(self) -> None:
        state = state_of(verified({"id": "cus_9", "object": "customer", "email": "a@b.c"}, "customer.created"))
        assert state is not None
        assert state.customer == "cus_9"

    @pytest.mark.parametrize(
        "obj",
        [
            {"id": "di_1", "object": "discount"},
            {"id": "pi_1", "object": "payment_intent"},
            {"object": "charge"},
            {"id": "", "object": "charge"},
            {"id": "ch_1", "object": "charge", "description": "a\x00b"},
        ],
    )
    def test_not_projected(self, obj: dict[str, Any]) -> None:
        assert state_of(verified(obj, "whatever.updated")) is None

    def test_an_unknown_status_ranks_lowest(self) -> None:
        state = state_of(
            verified({"id": "dp_1", "object": "dispute", "status": "brand_new_status"}, "charge.dispute.updated")
        )
        assert state is not None
        assert (state.status, state.version.rank) == ("brand_new_status", 0)


@pytest.mark.parametrize(
    ("inserted", "deleted", "action"),
    [(True, False, "created"), (False, False, "updated"), (True, True, "deleted"), (False, True, "deleted")],
)
def test_action(inserted: bool, deleted: bool, action: str) -> None:
    assert action_of(inserted=inserted, deleted=deleted) == action
