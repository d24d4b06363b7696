"""Which advisory locks a Stripe event's projection takes (domain/stripe_locks.py): every two events
that can race share one, and every event takes its keys in one global order: pure rules."""

from __future__ import annotations

from typing import Any

from providers_svc.domain.stripe_invoice_payments import links_of
from providers_svc.domain.stripe_locks import Locks, customer_keys, later_invoices, locks_of
from providers_svc.domain.stripe_objects import state_of

from .test_stripe_objects import verified

ACCOUNT = "pac_a"


def _locks(obj: dict[str, Any], type_: str) -> tuple[Locks, list[str]]:
    event = verified(obj, type_)
    links, state = links_of(event), state_of(event)
    return locks_of(links, state), later_invoices(links, state)


def test_a_subscription_takes_its_customers_lock() -> None:
    obj = {"id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "active", "created": 1}
    assert _locks(obj, "customer.subscription.updated") == (Locks(customers=("cus_1",)), [])


def test_an_invoice_takes_its_own_and_its_customers_and_those_of_the_payments_it_names() -> None:
    obj = {"id": "in_1", "object": "invoice", "customer": "cus_1", "status": "paid", "created": 1}
    obj["payment_intent"] = "pi_1"
    # Its own customer is taken in the first statement: nothing later.
    assert _locks(obj, "invoice.paid") == (Locks(("pi_1",), ("in_1",), ("cus_1",)), [])


def test_an_invoice_naming_no_payment_takes_its_own_lock_too() -> None:
    # API versions from 2025-03-31: the invoice names no payment; it still meets its invoice_payment.
    obj = {"id": "in_1", "object": "invoice", "customer": "cus_1", "status": "paid", "created": 1}
    assert _locks(obj, "invoice.paid") == (Locks((), ("in_1",), ("cus_1",)), [])


def test_a_charge_without_its_invoice_takes_its_payments_and_its_customers() -> None:
    obj = {"id": "ch_1", "object": "charge", "customer": "cus_1", "payment_intent": "pi_1", "created": 1}
    assert _locks(obj, "charge.succeeded") == (Locks(("pi_1", "ch_1"), (), ("cus_1",)), [])


def test_a_charge_naming_its_invoice_takes_only_its_customers() -> None:
    # It keeps its invoice (no link changes it), so it meets no link; it still meets that invoice.
    obj = {"id": "ch_1", "object": "charge", "customer": "cus_1", "payment_intent": "pi_1", "invoice": "in_1"}
    obj["created"] = 1
    assert _locks(obj, "charge.succeeded") == (Locks(customers=("cus_1",)), [])


def test_an_invoice_payment_takes_its_payment_and_invoice_then_the_invoices_customer() -> None:
    obj = {"id": "inpay_1", "object": "invoice_payment", "invoice": "in_1"}
    obj["payment"] = {"type": "payment_intent", "payment_intent": "pi_1"}
    assert _locks(obj, "invoice_payment.paid") == (Locks(("pi_1",), ("in_1",)), ["in_1"])


def test_objects_nothing_is_mirrored_between_take_no_lock() -> None:
    customer = {"id": "cus_1", "object": "customer", "created": 1}
    product = {"id": "prod_1", "object": "product", "created": 1}
    assert _locks(customer, "customer.updated") == (Locks(), [])
    assert _locks(product, "product.updated") == (Locks(), [])
    assert Locks().keys(ACCOUNT) == []


def test_keys_go_payments_then_invoices_then_customers_each_ascending() -> None:
    # One global order: a link's later customer lock comes after everything any event takes first.
    locks = Locks(payments=("pi_2", "pi_1", "pi_2"), invoices=("in_1",), customers=("cus_2", "cus_1"))
    keys = locks.keys(ACCOUNT)
    payments, invoices, customers = keys[:2], keys[2:3], keys[3:]
    assert payments == sorted(payments) == Locks(payments=("pi_1", "pi_2")).keys(ACCOUNT)
    assert invoices == Locks(invoices=("in_1",)).keys(ACCOUNT)
    assert customers == sorted(customers) == customer_keys(ACCOUNT, ["cus_1", "cus_2"])
    assert all(-(2**63) <= key < 2**63 for key in keys)


def test_keys_are_stable_and_of_their_account_and_kind() -> None:
    # The same in every process (not Python's salted hash); another account's or kind's is another key.
    assert Locks(payments=("pi_1",)).keys(ACCOUNT) == [2725697391991252887]
    assert Locks(payments=("pi_1",)).keys("pac_b") != [2725697391991252887]
    assert Locks(customers=("pi_1",)).keys(ACCOUNT) != [2725697391991252887]
