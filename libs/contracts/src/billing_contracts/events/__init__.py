"""Every event type, and one adapter that parses any of them by ``event_type``."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Discriminator, TypeAdapter

from billing_contracts.events.anomalies import (
    ANOMALY_EVENTS,
    Anomaly,
    AnomalyKind,
    PaymentAnomalyRecordedV1,
    ProviderAnomalyRecordedV1,
)
from billing_contracts.events.disputes import (
    DISPUTE_EVENTS,
    TENANT_DISPUTE_EVENTS,
    DisputeClosedV1,
    DisputeCreatedV1,
    DisputeData,
    ProviderDispute,
    ProviderDisputeUpdatedV1,
)
from billing_contracts.events.payments import (
    PAYMENT_EVENTS,
    Customer,
    DisputeSnapshot,
    PaymentAttemptData,
    PaymentAttemptFailedV1,
    PaymentAttemptSnapshot,
    PaymentAuthorizedV1,
    PaymentCancelledV1,
    PaymentCreatedV1,
    PaymentData,
    PaymentExpiredV1,
    PaymentFailedV1,
    PaymentPendingV1,
    PaymentSnapshot,
    PaymentSucceededV1,
)
from billing_contracts.events.providers import (
    PROVIDER_EVENTS,
    ProviderPaymentAuthorizedV1,
    ProviderPaymentFailedV1,
    ProviderPaymentOutcome,
    ProviderPaymentSucceededV1,
)
from billing_contracts.events.refunds import (
    PROVIDER_REFUND_EVENTS,
    REFUND_EVENTS,
    ProviderRefund,
    ProviderRefundUpdatedV1,
    RefundCreatedV1,
    RefundData,
    RefundFailedV1,
    RefundSnapshot,
    RefundSucceededV1,
)
from billing_contracts.events.stripe import (
    STRIPE_EVENTS,
    StripeEvent,
    StripeObjectChange,
    StripeObjectEvent,
    stripe_event_class,
)
from billing_contracts.events.webhooks import (
    WEBHOOK_EVENTS,
    DisabledEndpoint,
    EndpointDisabledData,
    EndpointDisabledV1,
)

AnyEvent = Annotated[
    PaymentCreatedV1
    | PaymentPendingV1
    | PaymentAuthorizedV1
    | PaymentSucceededV1
    | PaymentFailedV1
    | PaymentExpiredV1
    | PaymentCancelledV1
    | PaymentAttemptFailedV1
    | ProviderPaymentSucceededV1
    | ProviderPaymentFailedV1
    | ProviderPaymentAuthorizedV1
    | EndpointDisabledV1
    | ProviderAnomalyRecordedV1
    | PaymentAnomalyRecordedV1
    | ProviderDisputeUpdatedV1
    | DisputeCreatedV1
    | DisputeClosedV1
    | RefundCreatedV1
    | RefundSucceededV1
    | RefundFailedV1
    | ProviderRefundUpdatedV1
    | StripeEvent,
    Discriminator("event_type"),
]

# Built by the first parse (billing_contracts.config): a process that never consumes an event (the
# gateway, an api process) never builds the validator of the union of every event.
ANY_EVENT: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent, config=ConfigDict(defer_build=True))

EVENT_CLASSES = {
    cls.model_fields["event_type"].default: cls
    for cls in (
        *PAYMENT_EVENTS,
        *PROVIDER_EVENTS,
        *WEBHOOK_EVENTS,
        *ANOMALY_EVENTS,
        *DISPUTE_EVENTS,
        *TENANT_DISPUTE_EVENTS,
        *REFUND_EVENTS,
        *PROVIDER_REFUND_EVENTS,
        *STRIPE_EVENTS,
    )
}


def parse_event(raw: bytes | str) -> AnyEvent:
    """Parse a JSON event of any known type; raise ``pydantic.ValidationError`` otherwise."""
    return ANY_EVENT.validate_json(raw)


__all__ = [
    "ANY_EVENT",
    "DISPUTE_EVENTS",
    "EVENT_CLASSES",
    "PAYMENT_EVENTS",
    "PROVIDER_REFUND_EVENTS",
    "REFUND_EVENTS",
    "STRIPE_EVENTS",
    "TENANT_DISPUTE_EVENTS",
    "Anomaly",
    "AnomalyKind",
    "AnyEvent",
    "Customer",
    "DisabledEndpoint",
    "DisputeClosedV1",
    "DisputeCreatedV1",
    "DisputeData",
    "DisputeSnapshot",
    "EndpointDisabledData",
    "EndpointDisabledV1",
    "PaymentAnomalyRecordedV1",
    "PaymentAttemptData",
    "PaymentAttemptFailedV1",
    "PaymentAttemptSnapshot",
    "PaymentAuthorizedV1",
    "PaymentCancelledV1",
    "PaymentCreatedV1",
    "PaymentData",
    "PaymentExpiredV1",
    "PaymentFailedV1",
    "PaymentPendingV1",
    "PaymentSnapshot",
    "PaymentSucceededV1",
    "ProviderAnomalyRecordedV1",
    "ProviderDispute",
    "ProviderDisputeUpdatedV1",
    "ProviderPaymentAuthorizedV1",
    "ProviderPaymentFailedV1",
    "ProviderPaymentOutcome",
    "ProviderPaymentSucceededV1",
    "ProviderRefund",
    "ProviderRefundUpdatedV1",
    "RefundCreatedV1",
    "RefundData",
    "RefundFailedV1",
    "RefundSnapshot",
    "RefundSucceededV1",
    "StripeEvent",
    "StripeObjectChange",
    "StripeObjectEvent",
    "parse_event",
    "stripe_event_class",
]
