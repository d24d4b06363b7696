"""Which advisory locks a Stripe event's projection takes before its reads and writes, and their keys.

Mirroring copies metadata between rows that different events write (a subscription's onto its invoices
and their charges, an invoice's onto its charges), and an ``invoice_payment`` links charges to their
invoice. Two such events committed at the same moment would each miss the other's uncommitted row
(READ COMMITTED) and leave a copy missing or stale, so every two events that can meet share a lock:

- a subscription, an invoice and a charge of one customer: the customer's (all three name it);
- a link and a charge of one payment: the payment's (its PaymentIntent, or the charge's own id when it
  has none: Stripe's ``payment.type = charge``);
- a link and its invoice: the invoice's;
- a link and a subscription: the customer of the link's invoice, taken in a second statement once the
  invoice is read (an ``invoice_payment`` names no customer). If the invoice is not stored yet, the
  subscription has nothing of it to mirror, and the invoice, when it comes, meets both.

The one that waited runs its next statement with a fresh snapshot and sees the other's committed rows.
The webhook takes an event's first locks with its inbox claim (``first_lock_keys``), before anything
else of its unit; the projection takes what its unit does not hold yet.
Every event takes its keys in one order, payments, then invoices, then customers, each class in
ascending key order (a link's invoice customer last, in its second statement), so no two events can
wait on each other in a cycle. Keys are 64-bit hashes stable across processes (not Python's ``hash``):
a collision only makes two unrelated objects wait for each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from providers_svc.domain.stripe_events import VerifiedStripeEvent
from providers_svc.domain.stripe_invoice_payments import InvoiceLink, links_of
from providers_svc.domain.stripe_objects import ObjectState, state_of

# The kinds whose rows mirroring reads or writes, all of which name their customer.
MIRRORING_KINDS = frozenset({"subscription", "invoice", "charge"})


@dataclass(frozen=True)
class Locks:
    """The ids whose locks an event takes in its first statement."""

    payments: tuple[str, ...] = ()
    invoices: tuple[str, ...] = ()
    customers: tuple[str, ...] = ()

    def keys(self, account_id: str) -> list[int]:
        """The lock keys in the order they are taken."""
        return (
            _keys(account_id, "payment", self.payments)
            + _keys(account_id, "invoice", self.invoices)
            + _keys(account_id, "customer", self.customers)
        )


def locks_of(links: list[InvoiceLink], state: ObjectState | None) -> Locks:
    """The locks of an event that records ``links`` and projects ``state``."""
    payments = [link.payment for link in links] + linkable(state)
    invoices = [link.invoice for link in links] + (
        [state.stripe_id] if state is not None and state.kind == "invoice" else []
    )
    customers = [state.customer] if state is not None and state.kind in MIRRORING_KINDS and state.customer else []
    return Locks(*(tuple(dict.fromkeys(ids)) for ids in (payments, invoices, customers)))


def first_lock_keys(event: VerifiedStripeEvent) -> list[int]:
    """The keys of the locks ``event`` takes first (its tenants play no part), in the order taken: the
    webhook takes them with its inbox claim, one statement fewer."""
    return locks_of(links_of(event), state_of(event)).keys(event.account_id)


def later_invoices(links: list[InvoiceLink], state: ObjectState | None) -> list[str]:
    """The invoices whose stored customer's lock the event takes in a second statement: those it links
    payments to, unless it is that invoice itself (which named its customer in the first)."""
    own = state.stripe_id if state is not None and state.kind == "invoice" else None
    return sorted({link.invoice for link in links if link.invoice != own})


def linkable(state: ObjectState | None) -> list[str]:
    """The payments a link could name for this charge (its PaymentIntent, or the charge itself when it
    has none); none for a charge that names its invoice itself (it keeps it: no link changes it) or for
    another object."""
    if state is None or state.kind != "charge" or state.invoice is not None:
        return []
    return [p for p in (state.payment_intent, state.stripe_id) if p is not None]


def customer_keys(account_id: str, customers: Iterable[str]) -> list[int]:
    return _keys(account_id, "customer", customers)


def _keys(account_id: str, kind: str, ids: Iterable[str]) -> list[int]:
    keys = set()
    for id_ in ids:
        digest = hashlib.blake2b(f"stripe-{kind}:{account_id}:{id_}".encode(), digest_size=8).digest()
        keys.add(int.from_bytes(digest, "big", signed=True))
    return sorted(keys)
