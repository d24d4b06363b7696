"""Which payments paid which invoice, in every Stripe API version (pure: no I/O).

Until API version 2025-03-31 ("basil") a charge names its invoice (``charge.invoice``), and so does its
PaymentIntent; an invoice names them back (``invoice.charge``, ``invoice.payment_intent``). From
2025-03-31 none of these fields exist: the link is an ``InvoicePayment`` (``inpay_…``), sent as the
``invoice_payment.paid`` event and listed in the invoice's ``payments`` (when Stripe includes it), whose
``payment`` names a PaymentIntent (``payment.type = payment_intent``) or, for a charge made without
one, the charge (``type = charge``). Later preview versions put ``payment_intent`` / ``charge`` at the
InvoicePayment's top level; both are read.

A link is a fact, not a state: once Stripe says a payment went to an invoice it stays so, so links are
recorded from every event that carries one, whatever its order or age (``db/stripe_links.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from providers_svc.domain.stripe_events import VerifiedStripeEvent

# The events whose object is an InvoicePayment (Stripe sends only ``paid`` for it): not projected as
# objects of their own, only as the link they carry.
LINK_EVENT_TYPES: frozenset[str] = frozenset({"invoice_payment.paid"})

_ID = re.compile(r"^[A-Za-z0-9_]{1,255}$")


@dataclass(frozen=True)
class InvoiceLink:
    """One payment (``pi_…`` or ``ch_…``) of one invoice; ``invoice_payment`` when Stripe named it."""

    invoice: str
    payment: str
    invoice_payment: str | None = None


def links_of(event: VerifiedStripeEvent) -> list[InvoiceLink]:
    """The invoice↔payment links ``event``'s object carries: an InvoicePayment's one, or an invoice's
    (its ``payments`` list, and the fields of versions before 2025-03-31); none for other objects."""
    obj = event.object
    if event.object_type == "invoice_payment":
        link = _invoice_payment_link(obj)
        return [link] if link is not None else []
    if event.object_type != "invoice":
        return []
    invoice = _ref(obj.get("id"))
    if invoice is None:
        return []
    found: list[InvoiceLink] = []
    payments = obj.get("payments")
    items = payments.get("data") if isinstance(payments, Mapping) else None
    for item in items if isinstance(items, list) else []:
        if isinstance(item, Mapping):
            link = _invoice_payment_link({"invoice": invoice, **item})
            if link is not None:
                found.append(link)
    # Versions before 2025-03-31 (``charge.invoice`` links those charges already; the intent also
    # covers a charge stored before its ``invoice`` field was read).
    for field in ("payment_intent", "charge"):
        payment = _ref(obj.get(field))
        if payment is not None:
            found.append(InvoiceLink(invoice, payment))
    # One link per payment: a list and a legacy field may name the same one.
    unique: dict[str, InvoiceLink] = {}
    for link in found:
        unique.setdefault(link.payment, link)
    return list(unique.values())


def _invoice_payment_link(obj: Mapping[str, Any]) -> InvoiceLink | None:
    invoice = _ref(obj.get("invoice"))
    payment = obj.get("payment")
    details: Mapping[str, Any] = payment if isinstance(payment, Mapping) else {}
    # The PaymentIntent first: Stripe names the charge only when there is no intent.
    target = (
        _ref(details.get("payment_intent"))
        or _ref(details.get("charge"))
        or _ref(obj.get("payment_intent"))
        or _ref(obj.get("charge"))
    )
    if invoice is None or target is None:
        return None
    return InvoiceLink(invoice, target, _ref(obj.get("id")))


def _ref(value: object) -> str | None:
    """An id, or an expanded object's id."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and _ID.fullmatch(value) else None
