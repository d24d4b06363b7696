"""The tenant's capture of an authorized payment: ``POST /v1/payments/{id}/capture``.

An AUTHORIZED payment (manual capture) holds ``amount_capturable`` at its provider. The tenant captures
all or part of it: payments-svc asks providers-svc, which captures at the provider with a key derived
from the payment (a repeat is the same capture there) and answers once the provider confirmed; the
payment then becomes SUCCEEDED with ``amount_captured`` in the same request (PAY-2: a capture the
provider confirmed). No transaction is open during that call, and nothing is written before it: a
provider that cannot be reached leaves everything as it was (503), and a retry asks again.

providers-svc publishes the same capture as ``provider.payment.succeeded`` too: whichever of the two
lands first moves the payment, and the other finds it captured for the same amount and changes
nothing (``services/anomalies.refusal`` absorbs it). A crash between the provider's capture and our
commit heals the same way (that event, the provider's own webhook, or reconciliation's sync).
"""

from __future__ import annotations

from billing_contracts.problems import FieldError
from billing_runtime.errors import ProblemError

from payments_svc.db.attempts import end_active_attempt
from payments_svc.db.models import Payment
from payments_svc.db.repositories import PaymentRepository, payment_snapshot
from payments_svc.domain.attempts import AttemptStatus
from payments_svc.domain.commands import CaptureCreate
from payments_svc.domain.errors import InvalidState, NotFound
from payments_svc.domain.payment import CAPTURED, PaymentStatus
from payments_svc.services.lifecycle import LifecycleDeps
from payments_svc.services.payments import Actor, record_status
from payments_svc.services.providers import CaptureRequest
from payments_svc.services.uow import PaymentsUnitOfWork


async def capture_payment(
    deps: LifecycleDeps, uow: PaymentsUnitOfWork, tenant_id: str, payment_id: str, cmd: CaptureCreate
) -> tuple[Payment, bool]:
    """Capture the tenant's AUTHORIZED payment; queue its move to SUCCEEDED on ``uow``. The payment,
    and whether this request moved it (False: the provider's own word had already applied it).

    404 for a payment that is not the tenant's; 409 ``invalid_state`` unless AUTHORIZED; 422
    ``amount_exceeds_capturable`` (with ``amount_capturable``) for more than the hold; providers-svc's
    own 409/422 unchanged; 503 when it cannot say the provider captured."""
    payment = await payment_snapshot(uow, tenant_id, payment_id)
    if payment is None:
        raise NotFound()
    if payment.status != PaymentStatus.AUTHORIZED:
        raise InvalidState(f"A payment in status {payment.status} cannot be captured (only AUTHORIZED).")
    amount = _amount(payment, cmd)
    assert payment.provider is not None  # an authorized payment was started at one
    captured = await deps.providers.capture(
        tenant_id,
        CaptureRequest(payment.id, payment.provider, amount, payment.currency),
        livemode=payment.livemode,
    )
    locked = await PaymentRepository(uow.session, tenant_id).get(payment_id, for_update=True)
    assert locked is not None
    if locked.status in CAPTURED and locked.amount_captured == captured.amount:
        # The provider's event of this very capture was applied while we asked: the same money.
        return locked, False
    if locked.status != PaymentStatus.AUTHORIZED:
        # Released or expired meanwhile, yet the provider says it captured: its event will be
        # recorded as an anomaly (evidence for reconciliation); this request changes nothing.
        raise InvalidState(f"The payment became {locked.status} while it was being captured.")
    locked.amount_captured = captured.amount
    locked.amount_capturable = 0
    locked.provider_reference = captured.provider_reference or locked.provider_reference
    # The attempt that held the funds took them (ATT-1: a paid payment has no pending attempt); the
    # provider's own event of this capture, absorbed later, ends nothing.
    await end_active_attempt(uow.session, locked, AttemptStatus.SUCCEEDED)
    actor = Actor(f"provider:{locked.provider}", f"captured {captured.amount} {locked.currency}")
    record_status(uow, locked, PaymentStatus.SUCCEEDED, actor, deps.checkout_base_url)
    return locked, True


def _amount(payment: Payment, cmd: CaptureCreate) -> int:
    capturable = payment.amount_capturable
    if cmd.amount is None:
        return capturable
    if cmd.amount > capturable:
        raise ProblemError(
            422,
            "amount_exceeds_capturable",
            f"amount {cmd.amount} exceeds the {capturable} {payment.currency} authorized for capture.",
            errors=[FieldError(field="amount", message=f"must be at most {capturable}")],
            extensions={"amount_capturable": capturable},
        )
    return cmd.amount
