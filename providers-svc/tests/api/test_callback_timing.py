"""``billing_webhook_processing_duration_seconds{provider}``: every provider callback is timed under its
provider, whatever its answer; no other route is."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from providers_svc.api.callbacks.timing import callback_provider
from providers_svc.keys import metrics_key

NAME = "billing_webhook_processing_duration_seconds_count"


def _timed(client: Any, provider: str) -> float:
    registry = client.server.app[metrics_key].registry
    return registry.get_sample_value(NAME, {"provider": provider}) or 0.0


@pytest.mark.parametrize(
    ("route", "provider"),
    [
        ("/billing/sandbox", "sandbox"),
        ("/billing/click/prepare", "click"),
        ("/billing/payme", "payme"),
        ("/billing/", None),
        ("/internal/payments/start", None),
        ("/sandbox/pay/{transaction_id}", None),
        ("unmatched", None),
    ],
)
def test_the_provider_is_the_segment_after_billing(route: str, provider: str | None) -> None:
    assert callback_provider(route) == provider


async def test_callbacks_are_timed_whatever_their_answer(
    make_client: Any, start_payment: Callable[..., Awaitable[dict[str, Any]]], sandbox_callback: Any
) -> None:
    client = await make_client()
    payment = await start_payment(client)
    before = _timed(client, "sandbox")
    callback = sandbox_callback(payment["provider_transaction_id"])
    assert (await client.post("/billing/sandbox", data=callback.body, headers=callback.headers)).status == 200
    # A forged one is refused (400), and still took time to handle.
    assert (
        await client.post("/billing/sandbox", data=b"{}", headers={"Content-Type": "application/json"})
    ).status == 400
    assert _timed(client, "sandbox") == before + 2
    assert (await client.get("/internal/providers?currency=USD")).status in (200, 401)
    samples = {
        s.labels.get("provider")
        for m in client.server.app[metrics_key].registry.collect()
        for s in m.samples
        if s.name == NAME
    }
    assert samples <= {"sandbox"}
