"""The Stripe billing projections' follower: each verified Stripe event's object (charges, refunds,
disputes, customers, subscriptions, invoices, products) upserted on (provider account, object, Stripe
id) so that repeated and reordered deliveries converge to its newest state, subscription metadata
mirrored onto invoices and charges (through ``charge.invoice``, or, in API versions from 2025-03-31,
the ``invoice_payment`` linking the charge's PaymentIntent to its invoice), and every change published
as ``stripe.<object>.<action>``.

It runs inside the webhook's unit of work (``StripeEventFollower``), the transaction that records
the event in the inbox: its writes and its outbox rows commit with it or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from billing_contracts.envelope import utcnow
from billing_contracts.events.stripe import StripeObjectChange, stripe_event_class

from providers_svc.db.stripe_links import invoice_customers, record_links, take_locks
from providers_svc.db.stripe_writes import mirror_invoice, mirror_invoice_by_id, mirror_subscription, upsert
from providers_svc.domain.stripe_events import VerifiedStripeEvent
from providers_svc.domain.stripe_invoice_payments import links_of
from providers_svc.domain.stripe_locks import customer_keys, later_invoices, locks_of
from providers_svc.domain.stripe_objects import KINDS, action_of, state_of
from providers_svc.services.uow import ProvidersUnitOfWork

log = logging.getLogger(__name__)


async def project_event(uow: ProvidersUnitOfWork, event: VerifiedStripeEvent) -> None:
    """Project ``event``'s object, if it is one of the projected kinds; a state older than the
    stored one (or any state of a deleted object) changes nothing and publishes nothing.

    One statement for the object (none when the webhook ran it with its inbox claim: ``upserted``), and
    at most one more to mirror a subscription's metadata onto its invoices and their charges, or an
    invoice's onto its charges; an event that links payments to an invoice (an ``invoice_payment``, an
    invoice naming its payments) two more before: the links, and the charges they give that invoice.
    Before all of it, for a subscription, an invoice, a charge or a link, the locks it shares with every
    event it could race (``domain/stripe_locks.py``): taken by the webhook with its inbox claim
    (``event.locked``), else here in one more statement; and for a link two more (its invoice's stored
    customer, and that customer's lock), so that two events projected at once still see each other's
    rows."""
    now = utcnow()
    # An invoice_payment (API versions from 2025-03-31), or an invoice, links payments to the invoice:
    # recorded whatever the state's age (a link is a fact, not a state), before the invoice's upsert so
    # that its mirroring reaches the charges just linked.
    links = links_of(event)
    state = state_of(event)
    keys = locks_of(links, state).keys(event.account_id)
    await take_locks(uow.statements, [k for k in keys if k not in event.locked])
    if invoices := later_invoices(links, state):
        customers = await invoice_customers(uow.statements, event.account_id, invoices)
        await take_locks(uow.statements, customer_keys(event.account_id, customers))
    attached = await record_links(uow.statements, event.account_id, links, now) if links else False
    if state is None:
        if event.object_type in KINDS:
            # Verified, so Stripe's: but not storable (no usable id, a NUL). Never fails the webhook.
            log.warning("stripe event %s (%s): object not projected", event.event_id, event.type)
        if attached:
            await _mirror_linked(uow, event, links[0].invoice, now)
        return
    if event.upserted is None:
        change = await upsert(uow.statements, state, event.tenant_ids, now)
    else:
        # Upserted by the webhook with its inbox claim (an event with no lock to take, so no link).
        change = event.upserted.change
    if change is None:
        if attached:
            await _mirror_linked(uow, event, state.stripe_id, now)
        return
    _publish(uow, change.row, action_of(inserted=change.inserted, deleted=state.deleted), event)
    if state.kind == "subscription":
        mirrored = await mirror_subscription(uow.statements, change, event.tenant_ids, now)
    elif state.kind == "invoice":
        mirrored = await mirror_invoice(uow.statements, change, event.tenant_ids, now)
    else:
        return
    for row in mirrored:
        _publish(uow, row, "updated", event)


async def _mirror_linked(uow: ProvidersUnitOfWork, event: VerifiedStripeEvent, invoice: str, now: datetime) -> None:
    """The projected invoice's subscription metadata onto the charges just linked to it."""
    for row in await mirror_invoice_by_id(uow.statements, event.account_id, invoice, event.tenant_ids, now):
        _publish(uow, row, "updated", event)


def change_of(row: Mapping[str, Any]) -> StripeObjectChange:
    """The published form of a stored row."""
    return StripeObjectChange(
        id=row["stripe_id"],
        object=row["object"],
        account_id=row["account_id"],
        stripe_account=row["stripe_account"],
        livemode=row["livemode"],
        deleted=row["deleted"],
        created=row["created"],
        customer=row["customer"],
        status=row["status"],
        amount=row["amount"],
        currency=row["currency"],
        metadata=row["object_metadata"],
        subscription_metadata=row["subscription_metadata"],
        sequence=row["sequence"],
        stripe_event_id=row["event_id"],
        stripe_event_type=row["event_type"],
        stripe_object=row["data"],
    )


def _publish(uow: ProvidersUnitOfWork, row: Mapping[str, Any], action: str, event: VerifiedStripeEvent) -> None:
    # Every event names its tenant (EventBase): a row attributed to none is the operator's alone.
    tenant_id = row["tenant_id"]
    cls = stripe_event_class(row["object"], action)
    if tenant_id is None or cls is None:
        return
    uow.emit(
        cls(
            tenant_id=tenant_id,
            livemode=row["livemode"],
            correlation_id=row["stripe_id"],
            causation_id=event.event_id,
            data=change_of(row),
        )
    )
