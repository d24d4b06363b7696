"""A Stripe event after its signature was verified and its provider account found: what every
follower of Stripe's webhooks (the payment outcome, disputes, the billing projections) is handed.

The event's JSON is Stripe's own (``data.object`` is the object's state when the event was made);
nothing here trusts its arrival order: ``created`` and the object's own fields decide.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from providers_svc.services.uow import ProvidersUnitOfWork


@dataclass(frozen=True)
class StoredChange:
    """A projected row as a write left it, with whether the write inserted it."""

    row: dict[str, Any]
    inserted: bool


@dataclass(frozen=True)
class ClaimedUpsert:
    """The event's object upserted by the webhook in its inbox claim's statement (an event that moves
    nothing of ours and takes no lock: ``domain/stripe_locks.py``), so the projection does not upsert
    it again: what was stored, None when the stored state was newer."""

    change: StoredChange | None


@dataclass(frozen=True)
class VerifiedStripeEvent:
    # Stripe's event id (``evt_...``): the inbox dedupes on it.
    event_id: str
    # e.g. ``payment_intent.succeeded``, ``customer.subscription.updated``.
    type: str
    # When Stripe made the event (its ``created``): orders the states of one object.
    created: datetime
    livemode: bool
    # Our provider account (``pac_...``) the event belongs to: the one whose webhook secret verified it
    # and, for a Connect event, whose ``settings.connected_account`` is the event's ``account``.
    account_id: str
    # The Connect account the event came from (``acct_...``), None for a direct account's own events.
    stripe_account: str | None
    # The tenants the provider account is assigned to (API.md: one account per provider per tenant;
    # an account may serve several tenants, or none yet).
    tenant_ids: tuple[str, ...]
    # ``data.object`` and ``data.previous_attributes`` (None when absent).
    object: Mapping[str, Any]
    previous_attributes: Mapping[str, Any] | None
    # The whole event as Stripe sent it (parsed JSON).
    raw: Mapping[str, Any]
    # The advisory lock keys its unit already holds (taken with the inbox claim: ``domain/stripe_locks.py``),
    # which the projection does not take again.
    locked: tuple[int, ...] = ()
    # Its object's upsert when the webhook ran it with the inbox claim (``ClaimedUpsert``).
    upserted: ClaimedUpsert | None = None

    @property
    def object_type(self) -> str:
        """The object's own ``object`` field: ``charge``, ``customer``, ``invoice``..."""
        return str(self.object.get("object", ""))


# A follower acts on a verified event inside the webhook's unit of work (the same transaction that
# records the event in the inbox), so an event is applied exactly once or not at all.
StripeEventFollower = Callable[["ProvidersUnitOfWork", VerifiedStripeEvent], Awaitable[None]]
