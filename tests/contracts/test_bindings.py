"""Every queue binding a consumer declares matches at least one event the contracts define, so a
renamed event cannot silently leave a consumer listening to nothing."""

import pytest
from billing_contracts import EVENT_CLASSES, routing_key
from billing_runtime.bus import topic_matches
from payments_svc.events.consumers import PROVIDER_EVENT_KEYS

KNOWN_KEYS = [
    routing_key(cls.model_fields["source"].default, event_type, 1) for event_type, cls in EVENT_CLASSES.items()
]

BINDINGS = {"payments-svc": PROVIDER_EVENT_KEYS}


@pytest.mark.parametrize(("consumer", "binding"), [(c, b) for c, keys in BINDINGS.items() for b in keys])
def test_binding_matches_a_contract_event(consumer: str, binding: str) -> None:
    assert any(topic_matches(binding, key) for key in KNOWN_KEYS), f"{consumer} binds {binding}: no such event"


def test_payments_receives_both_provider_outcomes() -> None:
    wanted = {"providers.provider.payment.succeeded.v1", "providers.provider.payment.failed.v1"}
    assert {k for k in KNOWN_KEYS if any(topic_matches(b, k) for b in PROVIDER_EVENT_KEYS)} == wanted
