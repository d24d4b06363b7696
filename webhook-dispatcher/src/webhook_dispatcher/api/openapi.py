"""The public operations of the webhook API (every route of ``api/routes.py``), declared for the
OpenAPI document."""

from __future__ import annotations

from billing_contracts.openapi import Auth, Operation, Reply, path_param, query_choice, query_int, query_text
from billing_runtime.paging import MAX_OFFSET
from pydantic import BaseModel

from webhook_dispatcher.api.deliveries import STATUSES
from webhook_dispatcher.api.responses import (
    DeletedWebhookEndpoint,
    DisputeWebhook,
    NoticeWebhook,
    PaymentWebhook,
    RefundWebhook,
    WebhookDelivery,
    WebhookDeliveryDetail,
    WebhookDeliveryList,
    WebhookEndpoint,
    WebhookEndpointList,
    WebhookEndpointWithSecret,
    WebhookReplay,
)
from webhook_dispatcher.domain.commands import EndpointCreate, EndpointUpdate, Replay
from webhook_dispatcher.domain.event_types import PUBLIC_EVENT_TYPES

ENDPOINTS = "Webhook endpoints"
DELIVERIES = "Webhook deliveries"

_ID = "^[a-z]{2,8}_[0-9a-z]{1,40}$"
ENDPOINT_ID = path_param("endpoint_id", "The endpoint's id (`we_…`).", pattern=_ID)
DELIVERY_ID = path_param("delivery_id", "The delivery's id (`wd_…`).", pattern=_ID)
PAGING = (
    query_int("limit", "Page size.", default=20, lo=1, hi=100),
    query_int("offset", "Rows to skip (capped; not with a cursor).", default=0, lo=0, hi=MAX_OFFSET),
    query_text("starting_after", "Older than this object (an id).", max_length=49, pattern=_ID),
    query_text("ending_before", "Newer than this object (an id).", max_length=49, pattern=_ID),
)

OPERATIONS = (
    Operation(
        "POST",
        "/v1/webhook-endpoints",
        "Register a webhook endpoint",
        ENDPOINTS,
        Auth.TENANT,
        (Reply(201, "The endpoint with its signing secret (shown once).", WebhookEndpointWithSecret),),
        "createWebhookEndpoint",
        body=EndpointCreate,
    ),
    Operation(
        "GET",
        "/v1/webhook-endpoints",
        "List webhook endpoints",
        ENDPOINTS,
        Auth.TENANT,
        (Reply(200, "A page of endpoints.", WebhookEndpointList),),
        "listWebhookEndpoints",
        params=PAGING,
    ),
    Operation(
        "GET",
        "/v1/webhook-endpoints/{endpoint_id}",
        "Retrieve a webhook endpoint",
        ENDPOINTS,
        Auth.TENANT,
        (Reply(200, "The endpoint.", WebhookEndpoint),),
        "getWebhookEndpoint",
        params=(ENDPOINT_ID,),
    ),
    Operation(
        "PATCH",
        "/v1/webhook-endpoints/{endpoint_id}",
        "Change a webhook endpoint",
        ENDPOINTS,
        Auth.TENANT,
        (Reply(200, "The endpoint.", WebhookEndpoint),),
        "updateWebhookEndpoint",
        params=(ENDPOINT_ID,),
        body=EndpointUpdate,
    ),
    Operation(
        "DELETE",
        "/v1/webhook-endpoints/{endpoint_id}",
        "Delete a webhook endpoint",
        ENDPOINTS,
        Auth.TENANT,
        (Reply(200, "Deleted.", DeletedWebhookEndpoint),),
        "deleteWebhookEndpoint",
        params=(ENDPOINT_ID,),
    ),
    Operation(
        "POST",
        "/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
        "Rotate an endpoint's signing secret",
        ENDPOINTS,
        Auth.TENANT,
        (Reply(200, "The endpoint with its new secret (shown once).", WebhookEndpointWithSecret),),
        "rotateWebhookEndpointSecret",
        params=(ENDPOINT_ID,),
    ),
    Operation(
        "POST",
        "/v1/webhook-endpoints/{endpoint_id}/test",
        "Send a `webhook.test` event",
        ENDPOINTS,
        Auth.TENANT,
        (Reply(202, "The test delivery, queued.", WebhookDelivery),),
        "testWebhookEndpoint",
        params=(ENDPOINT_ID,),
        errors=(409,),
    ),
    Operation(
        "POST",
        "/v1/webhook-endpoints/{endpoint_id}/replay",
        "Send an endpoint's past events again",
        ENDPOINTS,
        Auth.TENANT,
        (Reply(202, "How many deliveries were queued again.", WebhookReplay),),
        "replayWebhookEndpoint",
        params=(ENDPOINT_ID,),
        body=Replay,
        errors=(409,),
    ),
    Operation(
        "GET",
        "/v1/webhook-deliveries",
        "List webhook deliveries",
        DELIVERIES,
        Auth.TENANT,
        (Reply(200, "A page of deliveries, newest first.", WebhookDeliveryList),),
        "listWebhookDeliveries",
        params=(
            *PAGING,
            query_text("endpoint_id", "Only this endpoint's deliveries.", max_length=64),
            query_choice("status", STATUSES, "Only deliveries in this status."),
            query_choice("event_type", PUBLIC_EVENT_TYPES, "Only deliveries of this event type."),
            query_text("event_id", "Only this event's deliveries (an event id).", max_length=64),
        ),
    ),
    Operation(
        "GET",
        "/v1/webhook-deliveries/{delivery_id}",
        "Retrieve a delivery with every attempt",
        DELIVERIES,
        Auth.TENANT,
        (Reply(200, "The delivery, the event as sent and its attempts.", WebhookDeliveryDetail),),
        "getWebhookDelivery",
        params=(DELIVERY_ID,),
    ),
    Operation(
        "POST",
        "/v1/webhook-deliveries/{delivery_id}/retry",
        "Attempt a delivery once more, now",
        DELIVERIES,
        Auth.TENANT,
        (Reply(202, "The delivery, its attempt queued.", WebhookDelivery),),
        "retryWebhookDelivery",
        params=(DELIVERY_ID,),
        errors=(409,),
    ),
)

# The calls the platform makes to tenants' endpoints: the document's ``webhooks``.
_PAYMENT_EVENTS = ("created", "pending", "succeeded", "failed", "expired", "cancelled")
WEBHOOKS: tuple[tuple[str, str, type[BaseModel]], ...] = (
    *(
        (f"payment.{e}", f"A payment was {e}" if e != "pending" else "A payment is pending", PaymentWebhook)
        for e in _PAYMENT_EVENTS
    ),
    *((f"refund.{e}", f"A refund was {e}", RefundWebhook) for e in ("created", "succeeded", "failed")),
    ("dispute.created", "A dispute was opened", DisputeWebhook),
    ("dispute.closed", "A dispute was closed", DisputeWebhook),
    ("endpoint.disabled", "This endpoint was disabled after failing too long", NoticeWebhook),
    ("webhook.test", "Sent by POST /v1/webhook-endpoints/{id}/test", NoticeWebhook),
)
