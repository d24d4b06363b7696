"""The Stripe billing projections' rules: which objects are projected, what of each is kept, and what
orders two states of one object (pure: no I/O).

Ordering ("never overwrite newer with older"). Stripe delivers events more than once and in any
order, and ``data.object`` is the object's state when the event was made. Two states of one object
are compared by their version, a tuple compared left to right:

1. ``time``: the object's own ``updated`` where it has one (products), else the event's ``created``.
   Stripe's clock is in seconds, so several events of one object often share it; then
2. ``rank``: where the object is in its life (``RANKS``): a terminal status beats a non-terminal one of
   the same second (a charge ``succeeded`` beats ``pending``, an invoice ``paid`` beats ``open``);
3. ``progress``: an amount that only grows in the object's life (a charge's captured plus refunded
   amount, an invoice's ``amount_paid``, the number of a dispute's balance transactions);
4. the event id: states still equal are told apart arbitrarily but the same way in every delivery
   order, so duplicates and reorderings converge to the same row.

A deletion (``*.deleted``, or an object carrying ``"deleted": true``) is final: it beats every state,
earlier or later, and once stored nothing replaces it (a late ``updated`` never resurrects the object).
Stripe ends a subscription with ``customer.subscription.deleted`` (its ``DELETE`` cancels), so an ended
subscription is marked deleted too.

Tenant attribution (applied by ``db.stripe_writes.tenant_expression`` in the statement that writes,
where the mirrored subscription metadata is known): the object's
``metadata.tenant_id`` if it is one of the account's tenants, else (invoices, charges) the mirrored
subscription metadata's ``tenant_id`` under the same condition, else the account's only tenant, else
none (the row is then the operator's alone, and nothing is published about it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from providers_svc.domain.stripe_events import VerifiedStripeEvent

# The kinds projected, by Stripe's ``object`` value, with the path segment of their API.
KINDS: dict[str, str] = {
    "charge": "charges",
    "refund": "refunds",
    "dispute": "disputes",
    "customer": "customers",
    "subscription": "subscriptions",
    "invoice": "invoices",
    "product": "products",
}
KIND_OF_PATH: dict[str, str] = {path: kind for kind, path in KINDS.items()}

# The Stripe event types whose ``data.object`` is of a projected kind (Stripe's list of event types, as
# in stripe-python 16.1): what a webhook endpoint must send for the projections to be complete. The
# follower goes by the object's kind, not by the event's type; these are what carries each kind. Left
# out: ``invoice.upcoming`` (its invoice has no id: nothing to store) and the ``customer.*`` events of
# other objects (``customer.discount.*``, ``customer.source.*``, ``customer.tax_id.*``).
EVENT_TYPES: dict[str, frozenset[str]] = {
    "charge": frozenset(
        f"charge.{name}" for name in ("captured", "expired", "failed", "pending", "refunded", "succeeded", "updated")
    ),
    "refund": frozenset({"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"}),
    "dispute": frozenset(
        f"charge.dispute.{name}" for name in ("created", "updated", "closed", "funds_withdrawn", "funds_reinstated")
    ),
    "customer": frozenset({"customer.created", "customer.updated", "customer.deleted"}),
    "subscription": frozenset(
        f"customer.subscription.{name}"
        for name in (
            "created",
            "updated",
            "deleted",
            "paused",
            "resumed",
            "pending_update_applied",
            "pending_update_expired",
            "trial_will_end",
        )
    ),
    "invoice": frozenset(
        f"invoice.{name}"
        for name in (
            "created",
            "updated",
            "deleted",
            "finalized",
            "finalization_failed",
            "sent",
            "paid",
            "payment_succeeded",
            "payment_failed",
            "payment_action_required",
            "payment_attempt_required",
            "marked_uncollectible",
            "overdue",
            "overpaid",
            "will_be_due",
            "voided",
        )
    ),
    "product": frozenset({"product.created", "product.updated", "product.deleted"}),
}
PROJECTED_EVENTS: frozenset[str] = frozenset().union(*EVENT_TYPES.values())

# Kinds Stripe deletes (or, for subscriptions, ends with a ``.deleted`` event): the others never are.
DELETABLE = frozenset({"customer", "subscription", "invoice", "product"})

# Where a status sits in its object's life; a status not listed (one Stripe adds later) ranks 0.
RANKS: dict[str, dict[str, int]] = {
    "charge": {"pending": 0, "failed": 1, "succeeded": 1},
    # A refund may fail after it succeeded (refund.failed), so failed ranks above succeeded.
    "refund": {"pending": 0, "requires_action": 0, "succeeded": 1, "canceled": 2, "failed": 2},
    "dispute": {
        "warning_needs_response": 0,
        "needs_response": 0,
        "warning_under_review": 1,
        "under_review": 1,
        "warning_closed": 2,
        "won": 2,
        "lost": 2,
        "prevented": 2,
        "charge_refunded": 2,
    },
    "subscription": {"incomplete_expired": 1, "canceled": 1},
    # An uncollectible invoice may still be paid or voided.
    "invoice": {"draft": 0, "open": 1, "uncollectible": 2, "paid": 3, "void": 3},
}

_ID = re.compile(r"^[A-Za-z0-9_]{1,255}$")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
_MAX_BIGINT = 2**63 - 1


@dataclass(frozen=True)
class Version:
    """What orders two states of one object (module docstring)."""

    time: datetime
    rank: int
    progress: int
    event_id: str


@dataclass(frozen=True)
class ObjectState:
    """One state of one Stripe object, as the projection stores it."""

    kind: str
    stripe_id: str
    account_id: str
    stripe_account: str | None
    livemode: bool
    deleted: bool
    created: datetime
    customer: str | None
    status: str | None
    amount: int | None
    currency: str | None
    metadata: dict[str, str]
    # Invoices: the subscription they bill; charges: the invoice they pay (mirroring follows these).
    subscription: str | None
    invoice: str | None
    # Charges: their PaymentIntent, by which an ``invoice_payment`` links them to their invoice in API
    # versions from 2025-03-31 (which name no invoice on the charge).
    payment_intent: str | None
    # The metadata of its subscription that an invoice carries itself (Stripe's newer API versions:
    # ``parent.subscription_details.metadata``), used until the subscription's own projection exists.
    own_subscription_metadata: dict[str, str] | None
    version: Version
    event_type: str
    stripe_object: dict[str, Any]


def sole_tenant(tenant_ids: tuple[str, ...]) -> str | None:
    """The account's tenant when it has exactly one (the attribution rule's last resort)."""
    return tenant_ids[0] if len(tenant_ids) == 1 else None


def state_of(event: VerifiedStripeEvent) -> ObjectState | None:
    """The state ``event`` carries, or None when its object is not projected (another kind, such as a
    ``customer.discount.*`` event's discount) or cannot be stored (no usable id, a NUL anywhere)."""
    obj = event.object
    kind = event.object_type
    stripe_id = obj.get("id")
    if kind not in KINDS or not isinstance(stripe_id, str) or not _ID.fullmatch(stripe_id):
        return None
    stripe_object = dict(obj)
    # PostgreSQL's text and jsonb cannot hold a NUL; json.dumps writes one as the escape below.
    if "\\u0000" in json.dumps(stripe_object):
        return None
    deleted = kind in DELETABLE and (event.type.endswith(".deleted") or obj.get("deleted") is True)
    status = _status(kind, obj)
    created = _time(obj.get("created")) or event.created
    subscription = _subscription_of(obj) if kind == "invoice" else None
    return ObjectState(
        kind=kind,
        stripe_id=stripe_id,
        account_id=event.account_id,
        stripe_account=event.stripe_account,
        livemode=event.livemode,
        deleted=deleted,
        created=created,
        customer=stripe_id if kind == "customer" else _ref(obj.get("customer")),
        status=status,
        amount=_amount(kind, obj),
        currency=_currency(obj.get("currency")),
        metadata=_metadata(obj.get("metadata")),
        subscription=subscription,
        invoice=_ref(obj.get("invoice")) if kind == "charge" else None,
        payment_intent=_ref(obj.get("payment_intent")) if kind == "charge" else None,
        own_subscription_metadata=_invoice_subscription_metadata(obj) if kind == "invoice" else None,
        version=Version(
            time=_time(obj.get("updated")) or event.created,
            rank=RANKS.get(kind, {}).get(status or "", 0),
            progress=_progress(kind, obj),
            event_id=event.event_id,
        ),
        event_type=event.type,
        stripe_object=stripe_object,
    )


def _status(kind: str, obj: Mapping[str, Any]) -> str | None:
    if kind == "product":
        active = obj.get("active")
        return None if not isinstance(active, bool) else ("active" if active else "inactive")
    status = obj.get("status")
    return status if isinstance(status, str) and 0 < len(status) <= 64 else None


def _amount(kind: str, obj: Mapping[str, Any]) -> int | None:
    field = {"charge": "amount", "refund": "amount", "dispute": "amount", "invoice": "amount_due"}.get(kind)
    return _int(obj.get(field)) if field else None


def _progress(kind: str, obj: Mapping[str, Any]) -> int:
    if kind == "charge":
        captured = _int(obj.get("amount_captured")) or 0
        return min(captured + (_int(obj.get("amount_refunded")) or 0), _MAX_BIGINT)
    if kind == "invoice":
        return _int(obj.get("amount_paid")) or 0
    if kind == "dispute":
        transactions = obj.get("balance_transactions")
        return len(transactions) if isinstance(transactions, list) else 0
    return 0


def _int(value: object) -> int | None:
    # bool is an int in Python, never an amount in Stripe's JSON.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_BIGINT:
        return value
    return None


def _time(value: object) -> datetime | None:
    seconds = _int(value)
    if seconds is None or seconds > 253_402_300_799:  # 9999-12-31T23:59:59Z
        return None
    return datetime.fromtimestamp(seconds, UTC)


def _currency(value: object) -> str | None:
    return value.upper() if isinstance(value, str) and _CURRENCY.fullmatch(value) else None


def _ref(value: object) -> str | None:
    """An id, or an expanded object's id."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and _ID.fullmatch(value) else None


def _metadata(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def _subscription_details(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    parent = obj.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
    return details if isinstance(details, Mapping) else {}


def _subscription_of(obj: Mapping[str, Any]) -> str | None:
    # ``invoice.subscription`` until API version 2025-03-31, ``parent.subscription_details`` after.
    return _ref(obj.get("subscription")) or _ref(_subscription_details(obj).get("subscription"))


def _invoice_subscription_metadata(obj: Mapping[str, Any]) -> dict[str, str] | None:
    details = _subscription_details(obj)
    if "metadata" in details:
        return _metadata(details.get("metadata"))
    legacy = obj.get("subscription_details")
    if isinstance(legacy, Mapping) and "metadata" in legacy:
        return _metadata(legacy.get("metadata"))
    return None


def action_of(*, inserted: bool, deleted: bool) -> str:
    """The bus action of a stored change: ``deleted`` when it marked the object deleted, ``created``
    when it is the first state of the object stored, else ``updated``."""
    if deleted:
        return "deleted"
    return "created" if inserted else "updated"
