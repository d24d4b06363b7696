"""The tenant's refunds: ``POST /v1/payments/{id}/refunds``.

A refund is accepted in one transaction (REF-1): the guarded UPDATE that reserves its amount on the
payment (``db/refunds.reserve``: only while the payment is refundable and the reservation stays
within its amount; the CHECK ``refund_reserved_bounds`` backs it), the refund row PENDING,
``refund.created`` in the outbox and the tenant event log, and (``run_idempotent``) the idempotency
key's response. providers-svc consumes ``refund.created`` and asks the provider; its verdict comes back
as ``provider.refund.updated`` (``services/refund_verdicts.py``). A refund never becomes SUCCEEDED
here (REF-2).

Before reserving, providers-svc is asked whether the payment's provider can refund this at all
(read-only; docs/INTERNAL.md "Refunds (issue 13)"), so a refund the provider would refuse is never
accepted; its refusal reaches the tenant unchanged.
"""

from __future__ import annotations

from billing_contracts.envelope import utcnow
from billing_contracts.events import RefundCreatedV1
from billing_contracts.problems import FieldError
from billing_runtime.errors import ProblemError
from billing_runtime.ids import new_id

from payments_svc.db.models import Payment, Refund
from payments_svc.db.refunds import paid_at, refund_insert, reserve
from payments_svc.db.repositories import history_insert, payment_snapshot
from payments_svc.domain.commands import RefundCreate
from payments_svc.domain.errors import InvalidState, NotFound
from payments_svc.domain.refunds import REFUNDABLE, RefundOrigin, RefundStatus
from payments_svc.events.mapping import refund_event
from payments_svc.services.lifecycle import LifecycleDeps
from payments_svc.services.providers import RefundCheck
from payments_svc.services.uow import PaymentsUnitOfWork

# A refused reservation means the payment changed since it was read (another refund, a verdict): it
# is decided again on the payment as it is then. A payment changes a handful of times, so a few
# rounds settle it.
RESERVE_ATTEMPTS = 3


async def create_refund(
    deps: LifecycleDeps, uow: PaymentsUnitOfWork, tenant_id: str, payment_id: str, cmd: RefundCreate
) -> Refund:
    """Accept a refund of the tenant's payment; queue its rows and ``refund.created`` on ``uow``.

    404 for a payment that is not the tenant's; 409 ``invalid_state`` for one that cannot be refunded
    (not SUCCEEDED/PARTIALLY_REFUNDED, or nothing left once its pending refunds are counted); 422
    ``amount_exceeds_refundable`` (with ``amount_refundable``) for more than is left; providers-svc's
    own 409/422 refusal unchanged; 503 when providers-svc cannot answer. Nothing is written then."""
    payment = await payment_snapshot(uow, tenant_id, payment_id)
    for _ in range(RESERVE_ATTEMPTS):
        if payment is None:
            raise NotFound()
        amount = _amount(payment, cmd)
        assert payment.provider is not None  # a captured payment was paid through one
        check = RefundCheck(
            payment_id=payment.id,
            provider=payment.provider,
            amount=amount,
            payment_amount=payment.amount_captured,
            currency=payment.currency,
            amount_refunded=payment.amount_refunded,
            paid_at=await paid_at(uow, payment.id) or payment.updated_at,
        )
        await deps.providers.check_refund(tenant_id, check, livemode=payment.livemode)
        reserved = await reserve(uow.session, tenant_id, payment.id, amount)
        if reserved is not None:
            return _accept(uow, reserved, amount, cmd.reason, deps.checkout_base_url)
        # Nothing was written; end the transaction so none stays open through the next call out.
        await uow.rollback()
        payment = await payment_snapshot(uow, tenant_id, payment_id)
    raise InvalidState("The payment kept changing while the refund was being made; retry the request.")


def _amount(payment: Payment, cmd: RefundCreate) -> int:
    """The amount to refund (all that is left when none is given), or the tenant's error."""
    if payment.status not in REFUNDABLE:
        raise InvalidState(f"A payment in status {payment.status} cannot be refunded.")
    # What the provider captured is all that can go back (a partial capture released the rest).
    refundable = payment.amount_captured - payment.refund_reserved
    if refundable <= 0:
        raise InvalidState(
            "Nothing of this payment is left to refund: its refunds (pending ones included) hold all of it."
        )
    if cmd.amount is None:
        return refundable
    if cmd.amount > refundable:
        raise ProblemError(
            422,
            "amount_exceeds_refundable",
            f"amount {cmd.amount} exceeds the {refundable} {payment.currency} left to refund"
            " (pending refunds included).",
            errors=[FieldError(field="amount", message=f"must be at most {refundable}")],
            extensions={"amount_refundable": refundable},
        )
    return cmd.amount


def _accept(uow: PaymentsUnitOfWork, payment: Payment, amount: int, reason: str | None, base_url: str) -> Refund:
    now = utcnow()
    assert payment.provider is not None
    refund = Refund(
        id=new_id("rfnd"),
        tenant_id=payment.tenant_id,
        livemode=payment.livemode,
        payment_id=payment.id,
        provider=payment.provider,
        provider_refund_id=None,
        origin=RefundOrigin.TENANT,
        status=RefundStatus.PENDING,
        amount=amount,
        currency=payment.currency,
        reason=reason,
        failure_code=None,
        failure_message=None,
        sequence=1,
        provider_updated_at=None,
        created_at=now,
        updated_at=now,
    )
    uow.write(refund_insert(refund))
    event = refund_event(RefundCreatedV1, refund, payment, base_url)
    uow.emit(event)
    uow.write(
        history_insert(
            payment_id=payment.id,
            from_status=payment.status,
            to_status=payment.status,
            actor="tenant",
            reason=f"refund {refund.id}: {amount} {payment.currency} requested",
            event_id=event.event_id,
            created_at=now,
        )
    )
    return refund
