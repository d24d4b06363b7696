"""Events published by providers-svc about its projections of Stripe objects (charges, refunds,
disputes, customers, subscriptions, invoices, products of every connected or direct Stripe account).

``stripe.<object>.<action>``: ``created`` when the projection first stores the object, ``updated`` for
every later change, ``deleted`` when Stripe deleted it (customers, invoices, products) or ended it
(subscriptions: ``customer.subscription.deleted``). Charges, refunds and disputes are never deleted.
An event is published only for an object attributed to a tenant (``tenant_id`` is the envelope's).

Deliveries may repeat and arrive out of order: ``data.sequence`` grows with every change of one
projected object, so a follower drops an event whose sequence is not above the last it applied.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from billing_contracts.config import CONTRACT
from billing_contracts.envelope import EventBase


class StripeObjectChange(BaseModel):
    """One projected Stripe object as stored after the change."""

    model_config = CONTRACT

    # Stripe's id and ``object`` (``ch_...`` and ``charge``).
    id: str
    object: str
    # Our provider account (``pac_...``) whose webhook brought it, and the Connect account (``acct_...``)
    # it lives in (None: the provider account's own Stripe account).
    account_id: str
    stripe_account: str | None = None
    livemode: bool = False
    deleted: bool = False
    # The object's own ``created``.
    created: datetime
    customer: str | None = None
    status: str | None = None
    # Minor units; ``currency`` upper case (ISO 4217). A charge's, refund's or dispute's amount, an
    # invoice's ``amount_due``; None for the other kinds.
    amount: int | None = None
    currency: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    # Invoices and charges: the metadata of the subscription they bill (mirrored), None when unknown.
    subscription_metadata: dict[str, str] | None = None
    sequence: int
    # The Stripe event whose state this is (``evt_...``) and its type.
    stripe_event_id: str
    stripe_event_type: str
    # The object exactly as Stripe last described it (Stripe's JSON: unix times, lower-case currency).
    stripe_object: dict[str, Any] = Field(default_factory=dict)


class StripeObjectEvent(EventBase):
    source: str = "providers"
    data: StripeObjectChange


class StripeChargeCreatedV1(StripeObjectEvent):
    event_type: Literal["stripe.charge.created"] = "stripe.charge.created"


class StripeChargeUpdatedV1(StripeObjectEvent):
    event_type: Literal["stripe.charge.updated"] = "stripe.charge.updated"


class StripeRefundCreatedV1(StripeObjectEvent):
    event_type: Literal["stripe.refund.created"] = "stripe.refund.created"


class StripeRefundUpdatedV1(StripeObjectEvent):
    event_type: Literal["stripe.refund.updated"] = "stripe.refund.updated"


class StripeDisputeCreatedV1(StripeObjectEvent):
    event_type: Literal["stripe.dispute.created"] = "stripe.dispute.created"


class StripeDisputeUpdatedV1(StripeObjectEvent):
    event_type: Literal["stripe.dispute.updated"] = "stripe.dispute.updated"


class StripeCustomerCreatedV1(StripeObjectEvent):
    event_type: Literal["stripe.customer.created"] = "stripe.customer.created"


class StripeCustomerUpdatedV1(StripeObjectEvent):
    event_type: Literal["stripe.customer.updated"] = "stripe.customer.updated"


class StripeCustomerDeletedV1(StripeObjectEvent):
    event_type: Literal["stripe.customer.deleted"] = "stripe.customer.deleted"


class StripeSubscriptionCreatedV1(StripeObjectEvent):
    event_type: Literal["stripe.subscription.created"] = "stripe.subscription.created"


class StripeSubscriptionUpdatedV1(StripeObjectEvent):
    event_type: Literal["stripe.subscription.updated"] = "stripe.subscription.updated"


class StripeSubscriptionDeletedV1(StripeObjectEvent):
    event_type: Literal["stripe.subscription.deleted"] = "stripe.subscription.deleted"


class StripeInvoiceCreatedV1(StripeObjectEvent):
    event_type: Literal["stripe.invoice.created"] = "stripe.invoice.created"


class StripeInvoiceUpdatedV1(StripeObjectEvent):
    event_type: Literal["stripe.invoice.updated"] = "stripe.invoice.updated"


class StripeInvoiceDeletedV1(StripeObjectEvent):
    event_type: Literal["stripe.invoice.deleted"] = "stripe.invoice.deleted"


class StripeProductCreatedV1(StripeObjectEvent):
    event_type: Literal["stripe.product.created"] = "stripe.product.created"


class StripeProductUpdatedV1(StripeObjectEvent):
    event_type: Literal["stripe.product.updated"] = "stripe.product.updated"


class StripeProductDeletedV1(StripeObjectEvent):
    event_type: Literal["stripe.product.deleted"] = "stripe.product.deleted"


StripeEvent = (
    StripeChargeCreatedV1
    | StripeChargeUpdatedV1
    | StripeRefundCreatedV1
    | StripeRefundUpdatedV1
    | StripeDisputeCreatedV1
    | StripeDisputeUpdatedV1
    | StripeCustomerCreatedV1
    | StripeCustomerUpdatedV1
    | StripeCustomerDeletedV1
    | StripeSubscriptionCreatedV1
    | StripeSubscriptionUpdatedV1
    | StripeSubscriptionDeletedV1
    | StripeInvoiceCreatedV1
    | StripeInvoiceUpdatedV1
    | StripeInvoiceDeletedV1
    | StripeProductCreatedV1
    | StripeProductUpdatedV1
    | StripeProductDeletedV1
)

STRIPE_EVENTS: tuple[type[StripeEvent], ...] = (
    StripeChargeCreatedV1,
    StripeChargeUpdatedV1,
    StripeRefundCreatedV1,
    StripeRefundUpdatedV1,
    StripeDisputeCreatedV1,
    StripeDisputeUpdatedV1,
    StripeCustomerCreatedV1,
    StripeCustomerUpdatedV1,
    StripeCustomerDeletedV1,
    StripeSubscriptionCreatedV1,
    StripeSubscriptionUpdatedV1,
    StripeSubscriptionDeletedV1,
    StripeInvoiceCreatedV1,
    StripeInvoiceUpdatedV1,
    StripeInvoiceDeletedV1,
    StripeProductCreatedV1,
    StripeProductUpdatedV1,
    StripeProductDeletedV1,
)

_BY_TYPE: dict[str, type[StripeEvent]] = {cls.model_fields["event_type"].default: cls for cls in STRIPE_EVENTS}


def stripe_event_class(object_: str, action: str) -> type[StripeEvent] | None:
    """The class of ``stripe.<object_>.<action>``, None when there is none (a charge is never deleted)."""
    event_type = f"stripe.{object_}.{action}"
    return _BY_TYPE.get(event_type)
