"""Which payments an event links to an invoice (domain/stripe_invoice_payments.py), in each shape
Stripe has sent: pure rules."""

from __future__ import annotations

from typing import Any

from providers_svc.domain.stripe_invoice_payments import InvoiceLink, links_of

from .test_stripe_objects import verified


def test_an_invoice_payment_names_its_payment_intent() -> None:
    obj = {"id": "inpay_1", "object": "invoice_payment", "invoice": "in_1"}
    obj["payment"] = {"type": "payment_intent", "payment_intent": "pi_1"}
    assert links_of(verified(obj, "invoice_payment.paid")) == [InvoiceLink("in_1", "pi_1", "inpay_1")]


def test_an_invoice_payment_of_a_charge_without_intent_names_the_charge() -> None:
    obj = {"id": "inpay_1", "object": "invoice_payment", "invoice": {"id": "in_1", "object": "invoice"}}
    obj["payment"] = {"type": "charge", "charge": {"id": "ch_1", "object": "charge"}}
    assert links_of(verified(obj, "invoice_payment.paid")) == [InvoiceLink("in_1", "ch_1", "inpay_1")]


def test_the_preview_shape_with_top_level_fields() -> None:
    obj = {"id": "inpay_1", "object": "invoice_payment", "invoice": "in_1", "charge": "ch_1", "payment_intent": None}
    assert links_of(verified(obj, "invoice_payment.paid")) == [InvoiceLink("in_1", "ch_1", "inpay_1")]


def test_an_invoice_payment_naming_nothing_links_nothing() -> None:
    obj: dict[str, Any] = {"id": "inpay_1", "object": "invoice_payment", "invoice": "in_1", "payment": {}}
    assert links_of(verified(obj, "invoice_payment.paid")) == []
    assert links_of(verified({**obj, "invoice": "bad id!"}, "invoice_payment.paid")) == []


def test_an_invoice_links_its_listed_payments_and_its_older_fields_once_each() -> None:
    listed = {
        "id": "inpay_1",
        "object": "invoice_payment",
        "payment": {"type": "payment_intent", "payment_intent": "pi_1"},
    }
    obj = {
        "id": "in_1",
        "object": "invoice",
        "payments": {"object": "list", "data": [listed]},
        "payment_intent": "pi_1",
        "charge": "ch_1",
    }
    assert links_of(verified(obj, "invoice.paid")) == [
        InvoiceLink("in_1", "pi_1", "inpay_1"),
        InvoiceLink("in_1", "ch_1", None),
    ]


def test_other_objects_link_nothing() -> None:
    assert links_of(verified({"id": "ch_1", "object": "charge", "invoice": "in_1"}, "charge.succeeded")) == []
