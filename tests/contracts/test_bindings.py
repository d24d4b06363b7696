"""Every queue binding a consumer declares matches at least one event the contracts define, so a
renamed event cannot silently leave a consumer listening to nothing."""

import pytest
from billing_contracts import EVENT_CLASSES, routing_key
from billing_runtime.bus import topic_matches
from payments_svc.events.consumers import LOGGED_EVENT_KEYS, PROVIDER_EVENT_KEYS
from providers_svc.events.consumers import REFUND_REQUEST_KEYS
from reconciliation_svc.events.consumers import EVENT_BINDING_KEYS as RECONCILIATION_KEYS
from webhook_dispatcher.domain.event_types import PUBLIC_EVENT_TYPES
from webhook_dispatcher.events.consumers import EVENT_BINDING_KEYS

KNOWN_KEYS = [
    routing_key(cls.model_fields["source"].default, event_type, 1) for event_type, cls in EVENT_CLASSES.items()
]

BINDINGS = {
    "payments-svc": [*PROVIDER_EVENT_KEYS, *LOGGED_EVENT_KEYS],
    "webhook-dispatcher": EVENT_BINDING_KEYS,
    "providers-svc": REFUND_REQUEST_KEYS,
    "reconciliation-svc": RECONCILIATION_KEYS,
}


@pytest.mark.parametrize(("consumer", "binding"), [(c, b) for c, keys in BINDINGS.items() for b in keys])
def test_binding_matches_a_contract_event(consumer: str, binding: str) -> None:
    assert any(topic_matches(binding, key) for key in KNOWN_KEYS), f"{consumer} binds {binding}: no such event"


def test_payments_receives_provider_outcomes_disputes_and_refund_verdicts() -> None:
    wanted = {
        "providers.provider.payment.succeeded.v1",
        "providers.provider.payment.failed.v1",
        "providers.provider.payment.authorized.v1",
        "providers.provider.dispute.updated.v1",
        "providers.provider.refund.updated.v1",
    }
    assert {k for k in KNOWN_KEYS if any(topic_matches(b, k) for b in PROVIDER_EVENT_KEYS)} == wanted


def test_the_dispatcher_receives_every_public_event_of_another_service_and_none_of_its_own() -> None:
    """A new public event contract (refund.*, dispute.*) reaches tenants' endpoints with no dispatcher
    change; ``endpoint.disabled`` it fans out itself, so it must not come back from the bus."""
    public = {
        routing_key(cls.model_fields["source"].default, event_type, 1)
        for event_type, cls in EVENT_CLASSES.items()
        if event_type in PUBLIC_EVENT_TYPES
    }
    received = {k for k in KNOWN_KEYS if any(topic_matches(b, k) for b in EVENT_BINDING_KEYS)}
    assert received == {k for k in public if not k.startswith("webhooks.")}
    assert "payments.payment.succeeded.v1" in received
    assert "payments.payment.authorized.v1" in received
    assert {"payments.dispute.created.v1", "payments.dispute.closed.v1"} <= received
    assert {"payments.refund.created.v1", "payments.refund.succeeded.v1", "payments.refund.failed.v1"} <= received


def test_providers_receives_only_refund_requests() -> None:
    assert {k for k in KNOWN_KEYS if any(topic_matches(b, k) for b in REFUND_REQUEST_KEYS)} == {
        "payments.refund.created.v1"
    }


def test_the_event_log_receives_endpoint_disabled() -> None:
    assert any(topic_matches(b, "webhooks.endpoint.disabled.v1") for b in LOGGED_EVENT_KEYS)


def test_the_stripe_projections_events_are_consumed_by_nobody_yet() -> None:
    """``stripe.<object>.<action>`` is for later followers (CRM, support, reconciliation): no queue of
    today's consumers takes them, and none of them is a webhook to tenants."""
    stripe_keys = [k for k in KNOWN_KEYS if k.startswith("providers.stripe.")]
    assert len(stripe_keys) == 18
    bound = [b for keys in BINDINGS.values() for b in keys]
    assert not [k for k in stripe_keys if any(topic_matches(b, k) for b in bound)]


def test_reconciliation_receives_our_payments_refunds_the_providers_verdicts_disputes_and_every_anomaly() -> None:
    received = {k for k in KNOWN_KEYS if any(topic_matches(b, k) for b in RECONCILIATION_KEYS)}
    assert received == {
        "payments.payment.created.v1",
        "payments.payment.pending.v1",
        "payments.payment.authorized.v1",
        "payments.payment.succeeded.v1",
        "payments.payment.failed.v1",
        "payments.payment.expired.v1",
        "payments.payment.cancelled.v1",
        "payments.payment.attempt_failed.v1",
        "payments.refund.created.v1",
        "payments.refund.succeeded.v1",
        "payments.refund.failed.v1",
        "providers.provider.payment.succeeded.v1",
        "providers.provider.payment.failed.v1",
        "providers.provider.payment.authorized.v1",
        "providers.provider.refund.updated.v1",
        "providers.provider.dispute.updated.v1",
        "providers.provider.anomaly.recorded.v1",
        "payments.payment.anomaly.recorded.v1",
    }
