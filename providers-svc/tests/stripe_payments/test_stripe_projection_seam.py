"""The billing projections follow ``POST /billing/stripe``: a verified event's object is readable by the
tenant at ``/v1/stripe/...`` once, a duplicate delivery changes nothing, and a refused event projects
nothing (the seam between the webhook and its followers, end to end in the service)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from providers_svc.db.stripe import StripeRepository
from providers_svc.services import stripe_projections

from .conftest import TENANT, StripeShop, stripe_event
from .helpers import outbox_events

pytestmark = pytest.mark.postgres


def _customer(name: str) -> dict[str, Any]:
    return {"id": "cus_seam1", "object": "customer", "created": int(time.time()) - 10, "name": name, "metadata": {}}


async def _customers(shop: StripeShop) -> list[dict[str, Any]]:
    resp = await shop.client.get("/v1/stripe/customers", headers=shop.internal_headers(TENANT))
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return list(body["data"])


class TestProjectionSeam:
    async def test_a_verified_event_is_projected_once(self, shop: StripeShop, db_read: Any) -> None:
        now = int(time.time())
        created = stripe_event("customer.created", _customer("Ada"), created=now - 5)
        assert (await shop.send(created)).status == 200
        assert (await shop.send(created)).status == 200  # Stripe's duplicate
        [customer] = await _customers(shop)
        assert (customer["id"], customer["stripe_object"]["name"], customer["account"]) == (
            "cus_seam1",
            "Ada",
            shop.account_id,
        )
        published = [e["event_type"] for e in outbox_events(await db_read("outbox"))]
        assert published == ["stripe.customer.created"]

    async def test_an_older_update_after_a_newer_one_leaves_the_newer(self, shop: StripeShop) -> None:
        now = int(time.time())
        assert (await shop.send(stripe_event("customer.updated", _customer("New"), created=now - 1))).status == 200
        assert (await shop.send(stripe_event("customer.updated", _customer("Old"), created=now - 9))).status == 200
        [customer] = await _customers(shop)
        assert customer["stripe_object"]["name"] == "New"

    async def test_an_object_upserted_with_the_claim_counts_its_versions_and_keeps_a_deletion_stubs_gaps(
        self, shop: StripeShop, db_read: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A customer's events take no lock, so the webhook upserts the object in its inbox claim's
        statement (neither the plain claim nor the projection's own upsert runs): each stored state is a
        new ``sequence``, published with its action, and a deletion sent as a stub marks the row deleted
        and keeps what was known."""

        async def not_run(*_args: Any, **_kwargs: Any) -> None:
            raise AssertionError("a customer's event is claimed and upserted in one statement")

        monkeypatch.setattr(StripeRepository, "claim_event", not_run)
        monkeypatch.setattr(stripe_projections, "upsert", not_run)
        now = int(time.time())
        stub = {"id": "cus_seam1", "object": "customer", "deleted": True}
        for event in (
            stripe_event("customer.created", _customer("Ada"), created=now - 5),
            stripe_event("customer.updated", _customer("Ada L."), created=now - 3),
            stripe_event("customer.deleted", stub, created=now - 1),
        ):
            assert (await shop.send(event)).status == 200
        envelopes = outbox_events(await db_read("outbox"))
        assert {e["tenant_id"] for e in envelopes} == {TENANT}
        published = [(e["event_type"], e["data"]) for e in envelopes]
        assert [(t, d["sequence"], d["deleted"]) for t, d in published] == [
            ("stripe.customer.created", 1, False),
            ("stripe.customer.updated", 2, False),
            ("stripe.customer.deleted", 3, True),
        ]
        assert published[-1][1]["stripe_object"]["name"] == "Ada L."
        [listed] = await _customers(shop)
        assert (listed["deleted"], listed["stripe_object"]["name"]) == (True, "Ada L.")

    async def test_a_forged_event_projects_nothing(self, shop: StripeShop, db_read: Any) -> None:
        forged = stripe_event("customer.created", _customer("Mallory"))
        assert (await shop.send(forged, secret="whsec_not_the_accounts")).status == 400
        assert await _customers(shop) == []
        assert await db_read("outbox") == []

    async def test_a_nul_escape_in_a_signed_object_is_no_500(self, shop: StripeShop, db_read: Any) -> None:
        """jsonb refuses ``\\u0000``: an object carrying one is still acknowledged, once (a 500 would have
        Stripe send it again for days)."""
        event = stripe_event("customer.created", _customer("Ada\u0000Lovelace"))
        first, again = await shop.send(event), await shop.send(event)
        assert (first.status, again.status) == (200, 200), await first.text()
        assert len(await db_read("events")) == 1
