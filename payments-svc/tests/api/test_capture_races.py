"""Manual capture and attempts together: an API capture ends the attempt that held the funds, another
attempt's success is never absorbed as the captured money, and the sweeper closes a hold it released."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from billing_contracts.envelope import utcnow
from billing_contracts.events import (
    ProviderDispute,
    ProviderDisputeUpdatedV1,
    ProviderPaymentAuthorizedV1,
    ProviderPaymentOutcome,
    ProviderPaymentSucceededV1,
)
from billing_runtime.bus import Message
from billing_runtime.metrics import Metrics
from payments_svc.db.models import Payment
from payments_svc.events.consumers import provider_outcome_handler
from payments_svc.keys import lifecycle_deps_key
from payments_svc.services.lifecycle import expire_due
from sqlalchemy import update

EXPIRES = utcnow() + timedelta(days=7)


def _handler(app):  # type: ignore[no-untyped-def]
    return provider_outcome_handler(app[lifecycle_deps_key], Metrics("t"))


async def _send(
    handle, cls: Any, payment: dict[str, Any], provider: str, amount: int | None = None, **extra: Any
) -> None:  # type: ignore[no-untyped-def]
    outcome = ProviderPaymentOutcome(
        payment_id=payment["id"],
        provider=provider,
        provider_transaction_id=f"ptx_{payment['id']}_{provider}",
        amount=payment["amount"] if amount is None else amount,
        currency=payment["currency"],
        livemode=payment["livemode"],
        **extra,
    )
    event = cls(tenant_id="ten_a", livemode=payment["livemode"], data=outcome)
    await handle(Message(f"providers.{event.event_type}.v1", event.model_dump_json().encode(), event.event_id))


async def _get(client, auth, path: str) -> Any:  # type: ignore[no-untyped-def]
    return await (await client.get(path, headers=auth())).json()


async def _pay(client, auth, payment: dict[str, Any], provider: str) -> None:  # type: ignore[no-untyped-def]
    response = await client.post(
        f"/v1/checkout/{payment['checkout_token']}/pay", json={"provider": provider}, headers=auth(None, None)
    )
    assert response.status == 200, await response.text()


async def test_api_capture_ends_the_active_attempt(app, client, auth, new_payment) -> None:
    """The API capture ends the attempt that held the funds (the provider's own event of the same
    capture, absorbed afterwards, ends nothing): a paid payment has no pending attempt."""
    handle = _handler(app)
    payment = await new_payment(capture_method="manual")
    await _pay(client, auth, payment, "sandbox")
    await _send(handle, ProviderPaymentAuthorizedV1, payment, "sandbox", authorization_expires_at=EXPIRES)
    response = await client.post(
        f"/v1/payments/{payment['id']}/capture", json={}, headers=auth(**{"Idempotency-Key": "cap"})
    )
    assert response.status == 200
    assert (await response.json())["status"] == "SUCCEEDED"
    # The provider's own word on the same capture (absorbed).
    await _send(handle, ProviderPaymentSucceededV1, payment, "sandbox")
    attempts = (await _get(client, auth, f"/v1/payments/{payment['id']}/attempts"))["data"]
    assert [a["status"] for a in attempts] == ["succeeded"], attempts


async def test_duplicate_success_of_an_abandoned_attempt_is_not_absorbed(
    app, client, auth, new_payment, providers, count
) -> None:
    """Only the capturing transaction's own success is absorbed as the captured money: an abandoned
    attempt's provider taking the same amount is a second charge, kept as an anomaly."""
    providers.names = ["sandbox", "stripe"]
    handle = _handler(app)
    payment = await new_payment(capture_method="manual")
    await _pay(client, auth, payment, "sandbox")
    await _pay(client, auth, payment, "stripe")  # switch: the sandbox attempt is voided, abandoned
    await _send(handle, ProviderPaymentAuthorizedV1, payment, "stripe", authorization_expires_at=EXPIRES)
    response = await client.post(
        f"/v1/payments/{payment['id']}/capture", json={}, headers=auth(**{"Idempotency-Key": "cap"})
    )
    assert (await response.json())["status"] == "SUCCEEDED"
    assert await count("anomalies") == 0
    # The abandoned sandbox attempt's provider took the same amount anyway: the payer paid twice.
    await _send(handle, ProviderPaymentSucceededV1, payment, "sandbox")
    assert await count("anomalies") == 1


async def test_sweeper_does_not_release_a_hold_it_will_not_expire(
    app, client, auth, new_payment, providers, clean_db
) -> None:
    """A pending payment claimed by the sweeper at its expires_at whose authorization lands while the
    sweeper cancels at the provider (which releases every hold of the payment) is closed, never left
    AUTHORIZED with a hold that is gone."""
    handle = _handler(app)
    payment = await new_payment(capture_method="manual")
    await _pay(client, auth, payment, "sandbox")
    past = utcnow() - timedelta(seconds=1)
    async with clean_db.begin() as conn:
        await conn.execute(
            update(Payment.__table__).where(Payment.id == payment["id"]).values(expires_at=past, sweep_at=past)
        )
    real_cancel = providers.cancel

    async def cancel_while_authorizing(tenant_id: str, payment_id: str, *, livemode: bool) -> bool:
        # The authorization is applied while the sweeper asks providers-svc to cancel.
        await _send(handle, ProviderPaymentAuthorizedV1, payment, "sandbox", authorization_expires_at=EXPIRES)
        return await real_cancel(tenant_id, payment_id, livemode=livemode)

    providers.cancel = cancel_while_authorizing  # type: ignore[method-assign]
    await expire_due(app[lifecycle_deps_key])
    got = await _get(client, auth, f"/v1/payments/{payment['id']}")
    released = payment["id"] in providers.cancelled
    # Either the hold was released and the payment closed, or it was kept and the payment AUTHORIZED.
    assert not (released and got["status"] == "AUTHORIZED"), (released, got["status"])


async def test_a_dispute_is_bounded_by_what_was_captured(app, client, auth, new_payment, count) -> None:
    """A partial capture took less than ``amount``: a dispute beyond what was captured is an anomaly."""
    handle = _handler(app)
    payment = await new_payment(capture_method="manual")
    await _pay(client, auth, payment, "sandbox")
    await _send(handle, ProviderPaymentAuthorizedV1, payment, "sandbox", authorization_expires_at=EXPIRES)
    response = await client.post(
        f"/v1/payments/{payment['id']}/capture", json={"amount": 3000}, headers=auth(**{"Idempotency-Key": "cap"})
    )
    assert (await response.json())["amount_captured"] == 3000
    dispute = ProviderDisputeUpdatedV1(
        tenant_id="ten_a",
        data=ProviderDispute(
            payment_id=payment["id"],
            provider="sandbox",
            provider_transaction_id=f"ptx_{payment['id']}_sandbox",
            provider_dispute_id="dp_1",
            status="needs_response",
            reason="fraudulent",
            amount=payment["amount"],
            currency=payment["currency"],
            funds_withdrawn=True,
            evidence_due_by=EXPIRES,
            provider_created_at=utcnow(),
            provider_updated_at=utcnow(),
            livemode=False,
        ),
    )
    await handle(Message(f"providers.{dispute.event_type}.v1", dispute.model_dump_json().encode(), dispute.event_id))
    assert await count("anomalies") == 1
    assert (await _get(client, auth, f"/v1/payments/{payment['id']}"))["amount_disputed"] == 0
