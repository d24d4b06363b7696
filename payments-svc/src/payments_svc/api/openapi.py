"""The public operations payments-svc serves behind the gateway (every one of ``api/routes.py`` but
the internal ``/internal/events``), declared for the OpenAPI document."""

from __future__ import annotations

from billing_contracts.events import PaymentSnapshot, RefundSnapshot
from billing_contracts.openapi import Auth, Operation, Reply, path_param, query_choice, query_int, query_text
from billing_runtime.paging import MAX_OFFSET

from payments_svc.api.responses import (
    AttemptList,
    CheckoutRedirect,
    CheckoutView,
    EventList,
    PaymentHistory,
    PaymentList,
    RefundList,
)
from payments_svc.domain.commands import CaptureCreate, CheckoutPay, PaymentCreate, RefundCreate
from payments_svc.domain.payment import PaymentStatus

PAYMENTS = "Payments"
REFUNDS = "Refunds"
EVENTS = "Events"
CHECKOUT = "Checkout"

_ID = "^[a-z]{2,8}_[0-9a-z]{1,40}$"
PAYMENT_ID = path_param("payment_id", "The payment's id (`pay_…`).", pattern=_ID)
REFUND_ID = path_param("refund_id", "The refund's id (`rfnd_…`).", pattern=_ID)
TOKEN = path_param("token", "The payment's checkout token.", pattern="^[A-Za-z0-9_\\-]{16,128}$")
LIMIT = query_int("limit", "Page size.", default=20, lo=1, hi=100)
OFFSET = query_int("offset", "Rows to skip (capped; cursors page any depth).", default=0, lo=0, hi=MAX_OFFSET)


STARTING_AFTER = query_text("starting_after", "Older than this object (an id).", max_length=49, pattern=_ID)
ENDING_BEFORE = query_text("ending_before", "Newer than this object (an id).", max_length=49, pattern=_ID)

OPERATIONS = (
    Operation(
        "POST",
        "/v1/payments",
        "Create a payment",
        PAYMENTS,
        Auth.TENANT,
        (Reply(201, "The payment, `CREATED`.", PaymentSnapshot, headers=("Idempotent-Replayed",)),),
        "createPayment",
        body=PaymentCreate,
        idempotency_key=True,
    ),
    Operation(
        "GET",
        "/v1/payments",
        "List payments, newest first",
        PAYMENTS,
        Auth.TENANT,
        (Reply(200, "A page of payments.", PaymentList),),
        "listPayments",
        params=(
            LIMIT,
            OFFSET,
            query_choice("status", PaymentStatus, "Only payments in this status."),
            query_text("order_id", "Only payments of this order reference.", max_length=128),
            STARTING_AFTER,
            ENDING_BEFORE,
        ),
    ),
    Operation(
        "GET",
        "/v1/payments/{payment_id}",
        "Retrieve a payment",
        PAYMENTS,
        Auth.TENANT,
        (Reply(200, "The payment.", PaymentSnapshot),),
        "getPayment",
        params=(PAYMENT_ID,),
    ),
    Operation(
        "POST",
        "/v1/payments/{payment_id}/cancel",
        "Cancel a payment not yet paid",
        PAYMENTS,
        Auth.TENANT,
        (Reply(200, "The payment, `CANCELLED`.", PaymentSnapshot),),
        "cancelPayment",
        params=(PAYMENT_ID,),
        errors=(409,),
    ),
    Operation(
        "POST",
        "/v1/payments/{payment_id}/capture",
        "Capture an AUTHORIZED payment (all of what is held, or part; the rest is released)",
        PAYMENTS,
        Auth.TENANT,
        (
            Reply(
                200,
                "The payment, `SUCCEEDED`, with `amount_captured`.",
                PaymentSnapshot,
                headers=("Idempotent-Replayed",),
            ),
        ),
        "capturePayment",
        params=(PAYMENT_ID,),
        body=CaptureCreate,
        body_required=False,
        idempotency_key=True,
        errors=(409,),
    ),
    Operation(
        "GET",
        "/v1/payments/{payment_id}/history",
        "A payment's status history",
        PAYMENTS,
        Auth.TENANT,
        (Reply(200, "Every status change, oldest first.", PaymentHistory),),
        "getPaymentHistory",
        params=(PAYMENT_ID,),
    ),
    Operation(
        "GET",
        "/v1/payments/{payment_id}/attempts",
        "List a payment's attempts (one per start at a provider), oldest first",
        PAYMENTS,
        Auth.TENANT,
        (Reply(200, "Every attempt of the payment.", AttemptList),),
        "listPaymentAttempts",
        params=(PAYMENT_ID,),
    ),
    Operation(
        "POST",
        "/v1/payments/{payment_id}/refunds",
        "Refund (part of) a payment",
        REFUNDS,
        Auth.TENANT,
        (Reply(201, "The refund, `PENDING`.", RefundSnapshot, headers=("Idempotent-Replayed",)),),
        "createRefund",
        params=(PAYMENT_ID,),
        body=RefundCreate,
        body_required=False,
        idempotency_key=True,
        errors=(409,),
    ),
    Operation(
        "GET",
        "/v1/payments/{payment_id}/refunds",
        "List a payment's refunds, newest first",
        REFUNDS,
        Auth.TENANT,
        (Reply(200, "A page of refunds.", RefundList),),
        "listRefunds",
        params=(PAYMENT_ID, LIMIT, OFFSET, STARTING_AFTER, ENDING_BEFORE),
    ),
    Operation(
        "GET",
        "/v1/refunds/{refund_id}",
        "Retrieve a refund",
        REFUNDS,
        Auth.TENANT,
        (Reply(200, "The refund.", RefundSnapshot),),
        "getRefund",
        params=(REFUND_ID,),
    ),
    Operation(
        "GET",
        "/v1/events",
        "The tenant's event log, oldest first",
        EVENTS,
        Auth.TENANT,
        (Reply(200, "A page of events.", EventList),),
        "listEvents",
        params=(
            query_text(
                "after", "Events after this one (an event id).", max_length=64, pattern="^evt_[A-Za-z0-9_\\-]{1,60}$"
            ),
            LIMIT,
            query_text("type", "Only events of this type.", max_length=64),
            query_text(
                "payment_id",
                "Only this payment's events (its status history).",
                max_length=64,
                pattern="^pay_[A-Za-z0-9_\\-]{1,60}$",
            ),
        ),
        errors=(404,),  # `after` names no event of the tenant
    ),
    Operation(
        "GET",
        "/v1/checkout/{token}",
        "The payer's view of a payment",
        CHECKOUT,
        Auth.CHECKOUT,
        (Reply(200, "What the payer may see and the providers they may choose.", CheckoutView),),
        "getCheckout",
        params=(TOKEN,),
    ),
    Operation(
        "POST",
        "/v1/checkout/{token}/pay",
        "Start paying with a provider",
        CHECKOUT,
        Auth.CHECKOUT,
        (Reply(200, "Where to send the payer (the provider's page).", CheckoutRedirect),),
        "payCheckout",
        params=(TOKEN,),
        body=CheckoutPay,
        errors=(409,),
    ),
)
